"""Turning a Discord message into the plain text a voice should read (PRODUCT.md, "Readout cleaning")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from bot.i18n import ReadoutWords, readout_words

TRUNCATION_SUFFIX: Final = " and so on"
"""What text cut at `max-length` ends with, in English (each language has its own: `ReadoutWords.cut`)."""


class MentionResolver(Protocol):
    """Looks up the names that mentions stand for; each returns None when the id is unknown."""

    def user(self, user_id: int) -> str | None:
        """Return the member's nickname preference or display name."""
        ...

    def role(self, role_id: int) -> str | None:
        """Return the role's name."""
        ...

    def channel(self, channel_id: int) -> str | None:
        """Return the channel's name."""
        ...


def _unknown(_: int) -> str | None:
    """Resolve nothing."""
    return None


@dataclass(frozen=True, slots=True)
class CallbackResolver:
    """A `MentionResolver` built from three lookup callables (each defaults to knowing nobody)."""

    users: Callable[[int], str | None] = _unknown
    roles: Callable[[int], str | None] = _unknown
    channels: Callable[[int], str | None] = _unknown

    def user(self, user_id: int) -> str | None:
        """Return the member's nickname preference or display name."""
        return self.users(user_id)

    def role(self, role_id: int) -> str | None:
        """Return the role's name."""
        return self.roles(role_id)

    def channel(self, channel_id: int) -> str | None:
        """Return the channel's name."""
        return self.channels(channel_id)


NO_NAMES: Final = CallbackResolver()
"""A resolver that knows no names, so every mention reads as "someone", "a role" or "a channel"."""

# Escaped markdown characters ("\*") are parked on private-use code points while markdown is removed.
_PLACEHOLDER_BASE: Final = 0xF0000
_PLACEHOLDERS: Final = re.compile("[\U000f0000-\U000f007f]")

# One left-to-right pass, like Discord's own parser: at each position the first alternative that
# matches wins, so a spoiler inside a code block stays code and a URL inside a spoiler is skipped.
_TOKENS: Final = re.compile(
    r"(?P<escape>\\(?P<escaped>[!-/:-@\[-`{-~]))"
    r"|(?P<fence>```.*?```)"
    r"|``(?P<double_code>.+?)``"
    r"|`(?P<code>[^`]+)`"
    r"|(?P<spoiler>\|\|.+?\|\|)"
    r"|\[(?P<label>[^\[\]]+)\]\(\s*<?(?i:https?://)(?:[^\s()<>]|\([^\s()<>]*\))+>?(?:\s+\"[^\"]*\")?\s*\)"
    # A URL may hold balanced parentheses (Wikipedia) but does not end with the sentence's punctuation.
    r"|(?P<url><(?i:https?://|www\.)[^\s<>]+>"
    r"|(?<!\w)(?i:https?://|www\.)(?:[^\s<()]|\([^\s<()]*\))*(?:[^\s<().,;:!?\"'\]}*_~|`]|\([^\s<()]*\)))"
    r"|<@!?(?P<user>\d{1,20})>"
    r"|<@&(?P<role>\d{1,20})>"
    r"|<#(?P<channel>\d{1,20})>"
    r"|<a?:(?P<emoji>\w{1,32}):\d{1,20}>"
    r"|(?P<timestamp><t:(?P<seconds>-?\d{1,20})(?::(?P<style>[tTdDfFR]))?>)"
    r"|</(?P<command>[^\s:<>/][^:<>/]{0,100}):\d{1,20}>"
    r"|(?<!\w)@(?P<group>everyone|here)\b",
    re.DOTALL,
)

# Headings, sub-text, block quotes and list bullets at the start of a line, possibly stacked ("> # Hi").
_LINE_MARKERS: Final = re.compile(
    r"^[^\S\n]*(?:(?:>>>|>|#{1,3}|-#|[*-])(?:[^\S\n]+|$))+",
    re.MULTILINE,
)
# Paired emphasis, outermost kinds first so "***bold italic***" and "__**both**__" unwrap fully. The
# text inside a pair never holds its own marker, which keeps every scan short: no quadratic blow-up
# on a message full of unpaired markers.
_EMPHASIS: Final = (
    re.compile(r"\*\*(?=\S)((?:(?!\*\*).)+?)(?<=\S)\*\*", re.DOTALL),
    re.compile(r"__(?=\S)((?:(?!__).)+?)(?<=\S)__", re.DOTALL),
    re.compile(r"~~((?:(?!~~).)+?)~~", re.DOTALL),
    re.compile(r"\*(?=[^\s*])([^*]+?)(?<=[^\s*])\*"),
    re.compile(r"(?<![^\W_])_(?=[^\s_])([^_]+?)(?<=[^\s_])_(?![^\W_])"),
)
# Markers left unpaired ("**wait", an unclosed fence) mean nothing to a listener.
_STRAY_MARKERS: Final = re.compile(r"\*{2,}|_{2,}|~{2,}|`+")
_REPEATS: Final = re.compile(r"(\D)\1{3,}")
_WHITESPACE: Final = re.compile(r"\s+")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def clean_message(
    content: str, resolver: MentionResolver, *, max_length: int, words: ReadoutWords | None = None
) -> str:
    """Return `content` as plain speakable text of at most `max_length` characters.

    What replaces links, unknown mentions and timestamps, and what ends cut text, is in the language of `words`
    (English when not given).
    """
    words = words or readout_words()
    text = _PLACEHOLDERS.sub("", content)
    text = _TOKENS.sub(lambda match: _replace_token(match, resolver, words), text)
    text = _remove_markdown(text)
    text = text.translate(_RESTORE_ESCAPES)
    text = _REPEATS.sub(r"\1\1\1", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return truncate(text, max_length, words)


def truncate(text: str, max_length: int, words: ReadoutWords | None = None) -> str:
    """Return `text`, or its start cut at a word boundary ending with " and so on", within `max_length`."""
    if len(text) <= max_length:
        return text
    if max_length <= 0:
        return ""
    text = text.strip()
    if len(text) <= max_length:
        return text
    words = words or readout_words()
    budget = max_length - words.cut_suffix_length
    if budget < 1:
        # No room for the suffix: the most that fits is a bare cut.
        return text[:max_length].rstrip()
    if text[budget].isspace():
        head = text[:budget]
    else:
        # Back up to the last whitespace so the final word is whole.
        cut = max((index for index in range(budget) if text[index].isspace()), default=0)
        head = text[:cut]
    head = head.rstrip().rstrip(",;:-–—").rstrip()
    if not head:
        # The first word alone is longer than the room left: cut inside it rather than say nothing.
        head = text[:budget].rstrip()
    return words.cut_text(head)


def is_speakable(text: str) -> bool:
    """Tell whether `text` contains at least one letter or digit (Unicode categories L* or N*)."""
    return any(unicodedata.category(character)[0] in "LN" for character in text)


def speakable_author(name: str, words: ReadoutWords | None = None) -> str:
    """Return an author's name as announced: repeats collapsed, "Someone" when nothing in it can be spoken."""
    spoken = _WHITESPACE.sub(" ", _REPEATS.sub(r"\1\1\1", name)).strip()
    return spoken if is_speakable(spoken) else (words or readout_words()).someone_said


def with_said_prefix(name: str, text: str, words: ReadoutWords | None = None) -> str:
    """Return `text` announced by its author, as in "Ada said, hello there" (in the language of `words`)."""
    words = words or readout_words()
    return words.announce(speakable_author(name, words), text)


def format_timestamp(seconds: int, style: str | None = None, words: ReadoutWords | None = None) -> str:
    """Return the UTC date or time that a Discord `<t:seconds:style>` timestamp shows, in words."""
    words = words or readout_words()
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return words.a_date
    if style == "t":
        pattern = words.time
    elif style == "T":
        pattern = words.time_seconds
    elif style in ("d", "D"):
        pattern = words.date
    elif style == "F":
        pattern = words.full_date_time
    else:
        # "f", no style and "R" (relative, which depends on when it is heard) all read as date and time.
        pattern = words.date_time
    return words.format_date(moment, pattern)


def _replace_token(match: re.Match[str], resolver: MentionResolver, words: ReadoutWords) -> str:
    """Return what one Discord markup token reads as."""
    if match["escape"] is not None:
        return chr(_PLACEHOLDER_BASE + ord(match["escaped"]))
    if match["fence"] is not None or match["spoiler"] is not None:
        # A space keeps the words on either side apart.
        return " "
    # Inline code is usually a word or a command worth hearing; only fenced blocks are skipped.
    for nested in (match["double_code"], match["code"], match["label"]):
        if nested is not None:
            return _TOKENS.sub(lambda inner: _replace_token(inner, resolver, words), nested)
    if match["url"] is not None:
        return words.link
    if match["user"] is not None:
        return _name(resolver.user(int(match["user"])), words.someone)
    if match["role"] is not None:
        return _name(resolver.role(int(match["role"])), words.a_role)
    if match["channel"] is not None:
        return _name(resolver.channel(int(match["channel"])), words.a_channel)
    if match["timestamp"] is not None:
        return format_timestamp(int(match["seconds"]), match["style"], words)
    # What is left is a custom emoji, a command mention or @everyone/@here: each reads as its name.
    return match["emoji"] or match["command"] or match["group"] or ""


def _name(name: str | None, fallback: str) -> str:
    """Return a looked-up name fit to be spoken, or `fallback` when there is none."""
    if name is None:
        return fallback
    name = _PLACEHOLDERS.sub("", name).strip()
    return name or fallback


def _remove_markdown(text: str) -> str:
    """Remove the line and emphasis markers of Discord markdown, keeping the text they mark."""
    text = _LINE_MARKERS.sub("", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    return _STRAY_MARKERS.sub("", text)


# Each placeholder back to the escaped character it stands for (str.translate: one pass in C).
_RESTORE_ESCAPES: Final = {_PLACEHOLDER_BASE + code: chr(code) for code in range(0x80)}
