"""Property tests: the text functions never raise and always keep their length and content promises."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text.chunking import split_text
from bot.text.cleaning import TRUNCATION_SUFFIX, CallbackResolver, clean_message, truncate

FAST = settings(max_examples=200, deadline=None)

# Pieces of Discord markup, whole and broken, so the generator reaches every cleaning rule.
_MARKUP = st.sampled_from(
    [
        "<@",
        "<@!",
        "<@&",
        "<#",
        "<:",
        "<a:",
        "<t:",
        ":R>",
        ":f>",
        ">",
        "<",
        ":",
        "123",
        "1700000000",
        "||",
        "```",
        "``",
        "`",
        "*",
        "**",
        "_",
        "__",
        "~~",
        "# ",
        "> ",
        ">>> ",
        "-# ",
        "- ",
        "\n",
        "\\",
        "https://",
        "http://x.y/",
        "www.",
        "[",
        "](",
        ")",
        "(",
        "@everyone",
        "</",
        "sooooooo",
        "!!!!!!",
        " ",
        "\u3000",
        "\U000f002a",
    ]
)
_TOKENS = st.one_of(
    st.integers(0, 10**22).map(lambda number: f"<@{number}>"),
    st.integers(0, 10**22).map(lambda number: f"<@&{number}>"),
    st.integers(0, 10**22).map(lambda number: f"<#{number}>"),
    st.tuples(st.sampled_from(["<:", "<a:"]), st.sampled_from(["party", "x_y", "é"]), st.integers(0, 10**21)).map(
        lambda parts: f"{parts[0]}{parts[1]}:{parts[2]}>"
    ),
    st.tuples(st.integers(-(10**21), 10**21), st.sampled_from(["", ":t", ":T", ":d", ":D", ":f", ":F", ":R"])).map(
        lambda pair: f"<t:{pair[0]}{pair[1]}>"
    ),
    st.sampled_from(["[docs](https://x.y)", "[a b](<https://x.y/(z)>)", "[https://a.b](https://a.b)"]),
)
_CONTENT = st.lists(st.one_of(st.text(max_size=12), _MARKUP, _TOKENS), max_size=40).map("".join)
_NAMES = st.one_of(st.none(), st.text(max_size=20))


@FAST
@given(content=_CONTENT, max_length=st.integers(1, 6000), name=_NAMES)
def test_clean_message_is_short_and_tidy(content: str, max_length: int, name: str | None) -> None:
    resolver = CallbackResolver(users=lambda _: name, roles=lambda _: name, channels=lambda _: name)
    result = clean_message(content, resolver, max_length=max_length)
    assert len(result) <= max_length
    assert result == result.strip()
    assert not re.search(r"\s\s", result)
    assert not re.search(r"(\D)\1{3}", result)


@FAST
@given(content=st.text(max_size=400), max_length=st.integers(1, 6000))
def test_clean_message_handles_arbitrary_text(content: str, max_length: int) -> None:
    result = clean_message(content, CallbackResolver(), max_length=max_length)
    assert len(result) <= max_length


@FAST
@given(text=st.text(max_size=200), max_length=st.integers(-5, 250))
def test_truncate_never_exceeds_and_keeps_a_prefix(text: str, max_length: int) -> None:
    result = truncate(text, max_length)
    assert len(result) <= max(max_length, 0)
    if len(text) <= max_length:
        assert result == text
    else:
        head = result.removesuffix(TRUNCATION_SUFFIX)
        assert text.strip().startswith(head)


# Words of at most 15 characters, including sentence and clause marks and CJK text without spaces.
_WORD = st.text(alphabet="abcXYZ0189.,!?;:—…'\"()。！？，、你好é", min_size=1, max_size=15)
_SPACE = st.text(alphabet=" \n\t\u3000", min_size=1, max_size=3)
_CUT_AFTER_ANYWHERE = "。！？，、；："
_CLOSERS = "\"')"


@FAST
@given(words=st.lists(st.tuples(_WORD, _SPACE), max_size=80), limit=st.integers(15, 120))
def test_split_text_cuts_only_between_words(words: list[tuple[str, str]], limit: int) -> None:
    text = "".join(word + space for word, space in words)
    chunks = split_text(text, limit)

    position = 0
    for index, chunk in enumerate(chunks):
        assert 0 < len(chunk) <= limit
        assert chunk == chunk.strip()
        start = position
        while text[start].isspace():
            start += 1
        # Each chunk is the next stretch of the text, so nothing is lost, reordered or altered.
        assert text.startswith(chunk, start)
        if index > 0 and start == position:
            # No whitespace at this cut: it must follow a full-width CJK mark (and any closing brackets).
            assert chunks[index - 1].rstrip(_CLOSERS)[-1:] in tuple(_CUT_AFTER_ANYWHERE)
        position = start + len(chunk)
    assert text[position:].strip() == ""


@FAST
@given(text=st.text(max_size=3000), limit=st.integers(1, 2500))
def test_split_text_keeps_every_character_within_the_limit(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert "".join("".join(chunk.split()) for chunk in chunks) == "".join(text.split())
