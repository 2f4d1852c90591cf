"""The words a readout adds to what members wrote ("link", "and so on", "Ada said"), in the clip's language.

PRODUCT.md, Languages: the language the clip is synthesised in, matched to a shipped language by its full tag, then
its primary subtag (de-AT is German, pt-PT Brazilian Portuguese), else the server's preferred locale, else en-US.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bot.i18n.language import SOURCE, Language, language, match_locale
from bot.i18n.text import pgettext

_TEXT: Final = "{text}"


@dataclass(frozen=True, slots=True)
class ReadoutWords:
    """One language's readout words, rendered once: templates keep `{name}` and `{text}` for the values."""

    tag: str
    link: str
    cut: str  # text cut at max-length: "{text} and so on"
    said: str  # the announcement of an author: "{name} said, {text}"
    someone: str  # an unknown member mentioned
    someone_said: str  # the author when their name has nothing speakable: "Someone"
    a_role: str
    a_channel: str
    a_date: str
    sticker: str  # "sticker: {name}"
    sent_image: str
    sent_video: str
    sent_audio: str
    sent_file: str
    an_image: str
    a_video: str
    an_audio_file: str
    a_file: str
    # CLDR patterns of the dates and times a `<t:…>` timestamp reads as (in UTC).
    date: str
    time: str
    time_seconds: str
    date_time: str
    full_date_time: str
    language: Language

    @property
    def cut_suffix_length(self) -> int:
        """How many characters "and so on" adds to the text it follows."""
        return len(self.cut) - len(_TEXT)

    def cut_text(self, head: str) -> str:
        """The start of a cut text followed by "and so on"."""
        return self.cut.replace(_TEXT, head)

    def announce(self, name: str, text: str) -> str:
        """`text` announced by its author: "Ada said, hello"."""
        return self.said.replace("{name}", name).replace(_TEXT, text)

    def format_date(self, moment: datetime, pattern: str) -> str:
        """A date through one of the patterns above, with this language's month and day names."""
        return self.language.date_pattern(moment, pattern)


def _words(speaking: Language) -> ReadoutWords:
    def word(text: object) -> str:
        return speaking.value(text)

    return ReadoutWords(
        tag=speaking.tag,
        # Translators: what a voice says instead of reading out a web address.
        link=word(pgettext("readout", "link")),
        # Translators: {text} is the start of a message too long to read whole.
        cut=word(pgettext("readout", "{text} and so on")),
        # Translators: a readout announcing who wrote the message {text}.
        said=word(pgettext("readout", "{name} said, {text}")),
        someone=word(pgettext("readout", "someone")),
        someone_said=word(pgettext("readout", "Someone")),
        a_role=word(pgettext("readout", "a role")),
        a_channel=word(pgettext("readout", "a channel")),
        a_date=word(pgettext("readout", "a date")),
        sticker=word(pgettext("readout", "sticker: {name}")),
        sent_image=word(pgettext("readout", "{name} sent an image")),
        sent_video=word(pgettext("readout", "{name} sent a video")),
        sent_audio=word(pgettext("readout", "{name} sent an audio file")),
        sent_file=word(pgettext("readout", "{name} sent a file")),
        an_image=word(pgettext("readout", "an image")),
        a_video=word(pgettext("readout", "a video")),
        an_audio_file=word(pgettext("readout", "an audio file")),
        a_file=word(pgettext("readout", "a file")),
        # Translators: CLDR date patterns (https://cldr.unicode.org/translation/date-time/date-time-patterns);
        # text in single quotes is kept as written. A timestamp in a message is read as this date, in UTC.
        date=word(pgettext("readout date pattern", "d MMMM y")),
        time=word(pgettext("readout date pattern", "HH:mm 'UTC'")),
        time_seconds=word(pgettext("readout date pattern", "HH:mm:ss 'UTC'")),
        date_time=word(pgettext("readout date pattern", "d MMMM y HH:mm 'UTC'")),
        full_date_time=word(pgettext("readout date pattern", "EEEE d MMMM y HH:mm 'UTC'")),
        language=speaking,
    )


_cache: dict[str, ReadoutWords] = {}


def readout_words(clip_language: str | None = None, server_locale: str | None = None) -> ReadoutWords:
    """The readout words for a clip synthesised in `clip_language` (a BCP 47 tag such as fr-FR or de-AT).

    A clip language no shipped language matches falls back to the server's preferred locale, then to en-US.
    """
    tag = match_locale(clip_language) or match_locale(server_locale) or SOURCE
    found = _cache.get(tag)
    if found is None:
        found = _cache[tag] = _words(language(tag))
    return found
