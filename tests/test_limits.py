"""bot.limits: whatever goes in, what comes out is accepted by the Discord stand-in's validator."""

from __future__ import annotations

import ast
from pathlib import Path

import discord
import pytest
from discord import app_commands
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import limits
from bot.storage import MAX_SPOKEN_LENGTH, MAX_WORD_LENGTH
from tests.fakes import discord_payloads as p
from tests.source_scan import parse_files

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=7000)
urls = st.sampled_from(
    ["https://cdn.example/a.png", "http://127.0.0.1:8/x.png", "/relative.png", "javascript:alert(1)", "ftp://x/y", ""]
)


def test_shorten_trims_like_discord_and_marks_the_cut() -> None:
    assert limits.shorten("  hello  ", 5) == "hello"
    assert limits.shorten("hello world", 8) == "hello w…"
    assert limits.shorten("hello     world", 8) == "hello…"
    assert len(limits.shorten("x" * 5000, 256)) == 256
    assert limits.shorten("abc", 1) == "…"


def test_fit_lines_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"line {n} " + "x" * 90 for n in range(50)]
    fitted = limits.fit_lines(lines, 2000, lambda left: f"… and {left} more")
    kept = fitted.splitlines()
    assert len(fitted) <= 2000
    assert kept[:-1] == lines[: len(kept) - 1]
    assert kept[-1] == f"… and {50 - (len(kept) - 1)} more"
    assert limits.fit_lines(["short", "lines"], 2000, lambda left: "never") == "short\nlines"
    one_huge = limits.fit_lines(["y" * 5000, "z"], 100, lambda left: f"+{left}")
    assert len(one_huge) <= 100 and one_huge.endswith("…\nz")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://unmixr.com/a.png", True),
        ("http://127.0.0.1:9000/avatars/x.png", True),
        ("/avatars/x.png", False),
        ("javascript:alert(1)", False),
        ("ftp://files.example/x.png", False),
        ("https://exa mple.com/x.png", False),
        ("https:///nohost", False),
        ("", False),
        (None, False),
    ],
)
def test_only_well_formed_web_urls_pass(url: str | None, allowed: bool) -> None:
    assert (limits.web_url(url) is not None) is allowed


def test_link_falls_back_to_text() -> None:
    assert limits.link("listen", "https://x.y/a.mp3") == "[listen](https://x.y/a.mp3)"
    assert limits.link("listen", "javascript:alert(1)") == "listen"


@settings(max_examples=60, deadline=None)
@given(
    title=texts,
    description=texts,
    fields=st.lists(st.tuples(texts, texts), max_size=30),
    footer=texts,
    author=texts,
    thumbnail=urls,
    image=urls,
)
def test_any_embed_fits_what_the_stand_in_accepts(
    title: str, description: str, fields: list[tuple[str, str]], footer: str, author: str, thumbnail: str, image: str
) -> None:
    embed = discord.Embed(title=title, description=description)
    for name, value in fields:
        embed.add_field(name=name, value=value)
    embed.set_footer(text=footer).set_author(name=author).set_thumbnail(url=thumbnail).set_image(url=image)
    fitted = limits.fit_embed(embed)
    assert p.message_errors({"embeds": [fitted.to_dict()]}, "data.") == {}
    assert limits.embed_size(fitted) <= limits.EMBED_TOTAL
    assert len(fitted.fields) == min(len(fields), limits.EMBED_FIELDS)


def test_the_6000_total_shortens_the_longest_texts_first() -> None:
    embed = discord.Embed(title="Voices", description="d" * 4096)
    for index in range(10):
        embed.add_field(name=f"Voice {index}", value="v" * 1024)
    fitted = limits.fit_embed(embed)
    assert limits.embed_size(fitted) <= limits.EMBED_TOTAL
    assert fitted.title == "Voices"
    assert [field.name for field in fitted.fields] == [f"Voice {index}" for index in range(10)]
    assert fitted.description is not None and fitted.description.endswith("…")
    assert all(field.value is not None and field.value.endswith("…") for field in fitted.fields)
    # The original is left as it was.
    assert embed.description == "d" * 4096


def test_several_embeds_share_the_6000() -> None:
    embeds = [discord.Embed(description="d" * 4000) for _ in range(12)]
    fitted = limits.fit_embeds(embeds)
    assert len(fitted) == limits.EMBEDS_PER_MESSAGE
    assert sum(limits.embed_size(embed) for embed in fitted) <= limits.EMBED_TOTAL
    assert p.message_errors({"embeds": [embed.to_dict() for embed in fitted]}) == {}


def test_select_options_are_unique_short_and_at_most_25() -> None:
    options = [discord.SelectOption(label="x" * 300, value=f"v{n}", description="d" * 300) for n in range(30)]
    options.insert(1, discord.SelectOption(label="duplicate", value="v0"))
    options.insert(2, discord.SelectOption(label="too long a value", value="u" * 101))
    fitted = limits.fit_select_options(options)
    assert [option.value for option in fitted] == [f"v{n}" for n in range(25)]
    assert all(len(option.label) == 100 and option.description and len(option.description) == 100 for option in fitted)


def test_a_view_is_fitted_and_an_empty_menu_disabled() -> None:
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="b" * 200))
    menu = discord.ui.Select[discord.ui.View](
        placeholder="p" * 300, options=[discord.SelectOption(label="bad", value="u" * 200)]
    )
    view.add_item(menu)
    limits.fit_view(view)
    payload = {"components": view.to_components()}
    assert p.message_errors(payload) == {}
    assert menu.disabled and len(menu.options) == 1


def test_choices_drop_values_that_cannot_fit() -> None:
    choices = [
        ("n" * 300, "ok"),
        ("short", "v" * 101),
        ("", "named-by-value"),
        *[(f"c{n}", f"c{n}") for n in range(40)],
    ]
    fitted = limits.fit_choices(choices)
    assert len(fitted) == limits.CHOICES
    assert fitted[0].name.endswith("…") and len(fitted[0].name) == 100
    assert fitted[1].name == "named-by-value"
    assert all(choice.value != "v" * 101 for choice in fitted)
    assert p.validate_choices([choice.to_dict() for choice in fitted]) == {}
    assert limits.fit_choices([app_commands.Choice(name="a", value="b")])[0].value == "b"


def test_upload_limit_keeps_a_margin_that_never_eats_a_small_limit() -> None:
    assert limits.upload_limit(10 * 1024 * 1024) == 10 * 1024 * 1024 - 16 * 1024
    assert limits.upload_limit(3200) == 3100


def test_option_bounds_match_storage_and_the_product() -> None:
    assert (limits.WORD_LENGTH, limits.SPOKEN_LENGTH) == (MAX_WORD_LENGTH, MAX_SPOKEN_LENGTH)
    bounds = {
        "language": limits.LanguageText,
        "query": limits.QueryText,
        "rate": limits.RateText,
        "pitch": limits.PitchText,
        "volume": limits.VolumeText,
        "name": limits.NameText,
        "description": limits.DescriptionText,
        "nickname": limits.NicknameText,
        "word": limits.WordText,
        "spoken": limits.SpokenText,
    }
    expected = {
        "language": 35,
        "query": 100,
        "rate": 16,
        "pitch": 16,
        "volume": 16,
        "name": 100,
        "description": 500,
        "nickname": 32,
        "word": 50,
        "spoken": 200,
    }
    assert {name: transformer.max_value for name, transformer in bounds.items()} == expected


SENDING_METHODS = {"send_message", "send", "edit_original_response", "edit_message", "edit"}
# Calls by those names that send no message: (file, call).
NOT_MESSAGES = {
    ("bot/audio/sessions.py", "me.edit"),  # Member.edit(suppress=False): a stage speaker's voice state
}


def test_every_message_the_bot_sends_goes_through_bot_replies() -> None:
    """bot/replies.py fits every message to Discord's limits; nothing else may send one.

    Except voice messages, which carry no text to fit: discord.py cannot send them, so bot/voice_message.py alone
    sends them with discord.py's HTTP client, and no other module may call that client's `request`.
    """
    root = Path(__file__).resolve().parent.parent
    found = []
    paths = sorted(path for path in [*(root / "bot").rglob("*.py"), *(root / "cogs").rglob("*.py")])
    paths = [path for path in paths if path != root / "bot" / "replies.py"]
    for path, tree in zip(paths, parse_files(paths), strict=True):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                responds = isinstance(receiver, ast.Attribute) and receiver.attr == "response"
                if (str(path.relative_to(root)), ast.unparse(node.func)) in NOT_MESSAGES:
                    continue
                raw = node.func.attr == "request" and _is_discord_http(receiver)
                if raw and path == root / "bot" / "voice_message.py":
                    continue
                if node.func.attr in SENDING_METHODS or (responds and node.func.attr == "autocomplete") or raw:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node.func)}")
    assert found == [], "send through bot.replies (answer, update, post) instead:\n" + "\n".join(found)


def _is_discord_http(receiver: ast.expr) -> bool:
    """Whether a call's receiver is discord.py's HTTP client (`http`, `client.http`, `bot.http`)."""
    return (isinstance(receiver, ast.Name) and receiver.id == "http") or (
        isinstance(receiver, ast.Attribute) and receiver.attr == "http"
    )
