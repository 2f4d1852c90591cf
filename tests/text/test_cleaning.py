"""Tests for readout cleaning, truncation and the "said" prefix."""

from __future__ import annotations

import pytest

from bot.text.cleaning import (
    NO_NAMES,
    CallbackResolver,
    clean_message,
    format_timestamp,
    is_speakable,
    truncate,
    with_said_prefix,
)

RESOLVER = CallbackResolver(
    users={111: "Ada", 222: "Grace Hopper"}.get,
    roles={333: "Moderators"}.get,
    channels={444: "general"}.get,
)


def clean(content: str, max_length: int = 6000) -> str:
    return clean_message(content, RESOLVER, max_length=max_length)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # PRODUCT.md, "Readout cleaning, by example".
        ("hi <@111>", "hi Ada"),
        ("hi <@!222>", "hi Grace Hopper"),
        ("ping <@&333>", "ping Moderators"),
        ("see <#444>", "see general"),
        ("<:party:123>", "party"),
        ("look https://x.y/z", "look link"),
        ("[docs](https://x.y)", "docs"),
        ("before ```code block``` after", "before after"),
        ("a ||spoiler|| b", "a b"),
        ("at <t:1700000000:f>", "at 14 November 2023 22:13 UTC"),
        ("soooooo good", "sooo good"),
        # Unknown ids.
        ("hi <@999>", "hi someone"),
        ("hi <@!999>", "hi someone"),
        ("ping <@&999>", "ping a role"),
        ("see <#999>", "see a channel"),
        # Emoji.
        ("<a:party:123> time", "party time"),
        ("<:party_parrot:123456789012345678>", "party_parrot"),
        ("plain 😀 emoji stays", "plain 😀 emoji stays"),
        # Links.
        ("http://example.com", "link"),
        ("go to www.example.com/page now", "go to link now"),
        ("HTTPS://EXAMPLE.COM/A", "link"),
        ("see https://x.y/z.", "see link."),
        ("see https://x.y/z, and more", "see link, and more"),
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", "(see link)"),
        ("quiet <https://x.y/z> link", "quiet link link"),
        ("https://x.y/a?b=c&d=e#frag", "link"),
        ("[the docs](<https://x.y/z>) here", "the docs here"),
        ('[docs](https://x.y "title")', "docs"),
        ("[https://a.b](https://a.b)", "link"),
        ("**https://x.y**", "link"),
        ("nothttps://x.y", "nothttps://x.y"),
        # Code.
        ("```python\nprint('hi')\n```", ""),
        ("a\n```\nmulti\nline\n```\nb", "a b"),
        ("use `/say` here", "use /say here"),
        ("use ``a `tick` b`` here", "use a tick b here"),
        ("`<@111>` too", "Ada too"),
        ("```||not a spoiler||```", ""),
        ("```unclosed fence", "unclosed fence"),
        # Spoilers.
        ("||whole message||", ""),
        ("||multi\nline||", ""),
        ("||https://x.y||", ""),
        ("a || b", "a || b"),
        # Timestamps in every style, in UTC.
        ("<t:1700000000>", "14 November 2023 22:13 UTC"),
        ("<t:1700000000:t>", "22:13 UTC"),
        ("<t:1700000000:T>", "22:13:20 UTC"),
        ("<t:1700000000:d>", "14 November 2023"),
        ("<t:1700000000:D>", "14 November 2023"),
        ("<t:1700000000:F>", "Tuesday 14 November 2023 22:13 UTC"),
        ("<t:1700000000:R>", "14 November 2023 22:13 UTC"),
        ("<t:0:D>", "1 January 1970"),
        ("<t:-86400:D>", "31 December 1969"),
        ("<t:99999999999999999999:f>", "a date"),
        ("<t:1700000000:x>", "<t:1700000000:x>"),
        # Repeated characters.
        ("!!!!!!", "!!!"),
        ("1111111", "1111111"),
        ("nooo", "nooo"),
        ("aaaabbbbb", "aaabbb"),
        ("........", "..."),
        ("----------", "---"),
        # Markdown emphasis, headings, quotes, lists.
        ("**bold** and *italic*", "bold and italic"),
        ("__underline__ and _italic_", "underline and italic"),
        ("~~struck~~ out", "struck out"),
        ("***both***", "both"),
        ("__**nested**__", "nested"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("**unclosed bold", "unclosed bold"),
        ("# Title\ntext", "Title text"),
        ("### Small title", "Small title"),
        ("#hashtag", "#hashtag"),
        ("-# subtext", "subtext"),
        ("> quoted\n>>> all of this", "quoted all of this"),
        ("> # quoted heading", "quoted heading"),
        ("- one\n- two\n* three", "one two three"),
        ("-5 degrees", "-5 degrees"),
        # Escapes show the character itself, as Discord does.
        (r"\*not italic\*", "*not italic*"),
        (r"\_\_init\_\_", "__init__"),
        # Other mentions.
        ("@everyone look", "everyone look"),
        ("hey @here", "hey here"),
        ("mail me@here.com", "mail me@here.com"),
        ("try </settings show:123>", "try settings show"),
        # Whitespace.
        ("  lots \n\n of\t\tspace  ", "lots of space"),
        ("", ""),
    ],
)
def test_clean_message(content: str, expected: str) -> None:
    assert clean(content) == expected


def test_mention_ids_too_long_for_a_snowflake_stay_as_text() -> None:
    content = "<@" + "1" * 25 + ">"
    assert clean(content) == content


def test_resolver_receives_integer_ids() -> None:
    seen: list[tuple[str, int]] = []

    def user(user_id: int) -> str:
        seen.append(("user", user_id))
        return "Ada"

    def role(role_id: int) -> str:
        seen.append(("role", role_id))
        return "Mods"

    def channel(channel_id: int) -> str:
        seen.append(("channel", channel_id))
        return "news"

    resolver = CallbackResolver(users=user, roles=role, channels=channel)
    text = clean_message("<@1> <@!2> <@&3> <#4>", resolver, max_length=100)

    assert text == "Ada Ada Mods news"
    assert seen == [("user", 1), ("user", 2), ("role", 3), ("channel", 4)]


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_names_fall_back_to_the_unknown_words(name: str) -> None:
    resolver = CallbackResolver(users=lambda _: name, roles=lambda _: name, channels=lambda _: name)
    assert clean_message("<@1> <@&2> <#3>", resolver, max_length=100) == "someone a role a channel"


def test_no_names_resolver_knows_nobody() -> None:
    assert clean_message("<@1> <@&2> <#3>", NO_NAMES, max_length=100) == "someone a role a channel"


def test_resolved_names_do_not_expand_again() -> None:
    resolver = CallbackResolver(users=lambda _: "<@2>")
    assert clean_message("<@1>", resolver, max_length=100) == "<@2>"


def test_long_message_is_cut_with_and_so_on() -> None:
    content = "word " * 100
    result = clean(content, max_length=50)
    assert result == "word " * 8 + "and so on"
    assert len(result) <= 50


def test_max_length_applies_after_cleaning() -> None:
    # The raw text is far longer than 30 characters, but it cleans to something short.
    content = "look at https://example.com/a/very/long/path/indeed ||a spoiler that is long||"
    assert clean(content, max_length=30) == "look at link"


@pytest.mark.parametrize(
    ("text", "max_length", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("hello world this is long", 20, "hello and so on"),
        ("hello world this is long", 21, "hello world and so on"),
        ("one, two, three, four", 19, "one, two and so on"),
        ("abcdefghijklmnopqrstuvwxyz", 15, "abcde and so on"),
        ("hello world", 5, "hello"),
        ("hello world", 7, "hello w"),
        ("hello world", 1, "h"),
        ("hello world", 0, ""),
        ("hello world", -3, ""),
        ("", 0, ""),
        ("  padded  ", 6, "padded"),
    ],
)
def test_truncate(text: str, max_length: int, expected: str) -> None:
    assert truncate(text, max_length) == expected


def test_truncate_cuts_at_word_boundary_exactly_at_the_budget() -> None:
    # The budget is 29 - 10 = 19 characters and the 20th is a space, so all 19 are kept.
    text = "aaaa bbbb cccc dddd eeee ffff gggg"
    assert truncate(text, 29) == "aaaa bbbb cccc dddd and so on"


@pytest.mark.parametrize(
    ("text", "speakable"),
    [
        ("hello", True),
        ("42", True),
        ("¿Qué?", True),
        ("日本", True),
        ("½", True),
        ("", False),
        ("   ", False),
        ("!!! ??? ...", False),
        ("😀🎉", False),
        ("* _ ~", False),
    ],
)
def test_is_speakable(text: str, speakable: bool) -> None:
    assert is_speakable(text) is speakable


def test_said_prefix_uses_the_name() -> None:
    assert with_said_prefix("Ada", "hi") == "Ada said, hi"
    assert with_said_prefix("  Grace   Hopper ", "hi") == "Grace Hopper said, hi"


def test_said_prefix_collapses_repeats_and_replaces_unspeakable_names() -> None:
    assert with_said_prefix("Zoooooe", "hi") == "Zoooe said, hi"
    assert with_said_prefix("🔥🔥", "hi") == "Someone said, hi"


def test_with_said_prefix_joins_name_and_text() -> None:
    assert with_said_prefix("Ada", "hello there") == "Ada said, hello there"


def test_format_timestamp_defaults_to_date_and_time() -> None:
    assert format_timestamp(1700000000) == "14 November 2023 22:13 UTC"
    assert format_timestamp(-(10**18), "D") == "a date"
