"""The words a readout adds to what members wrote ("link", "and so on", "Ada said", "Alex sent an image."), in the
clip's language.

PRODUCT.md, Languages: the language the clip is synthesised in, matched to a shipped language by its full tag, then
its primary subtag (de-AT is German, pt-PT Brazilian Portuguese), else the server's preferred locale, else en-US.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from bot.i18n.language import SOURCE, Language, language, match_locale
from bot.i18n.text import Text, npgettext, pgettext

AttachmentKind = Literal["image", "video", "audio", "file"]
"""What a readout calls an attachment (PRODUCT.md, Continuity, "What a readout says")."""
# What ends a sentence in the shipped languages' scripts: no full stop is added after these.
SENTENCE_ENDS: Final = ".!?…。！？"

_TEXT: Final = "{text}"
_MORE: Final = "{more}"


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
    # A message of one attachment of a kind and no text ("{name} sent an image."), and one more kind after the
    # text ("With an image."); more than one of a kind is counted in the language's plural forms (`sent`, `with_`).
    sent_one: Mapping[AttachmentKind, str]
    with_one: Mapping[AttachmentKind, str]
    # A sentence after a text: "{text}. {more}", or "{text} {more}" when the text ends a sentence itself.
    then: str
    after: str
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

    def sent(self, kind: AttachmentKind, count: int, name: str) -> str:
        """Who sent `count` attachments of a kind, as a sentence: "Alex sent an image.", "Alex sent 2 images."."""
        if count == 1:
            return self.sent_one[kind].replace("{name}", name)
        return self.language.text(_sent_many(kind, count, name))

    def with_(self, kind: AttachmentKind, count: int) -> str:
        """`count` attachments of a kind after a message's text, as a sentence: "With an image.", "With 2 images."."""
        if count == 1:
            return self.with_one[kind]
        return self.language.text(_with_many(kind, count))

    def sentences(self, parts: Sequence[str]) -> str:
        """Sentences read one after another, a full stop added after a part that does not end one."""
        text = ""
        for part in parts:
            if not text:
                text = part
            else:
                template = self.after if text[-1] in SENTENCE_ENDS else self.then
                text = template.replace(_TEXT, text).replace(_MORE, part)
        return text


# Several attachments of a kind: whole sentences in every plural form of each language (only counts from 2 up are
# asked for; one is a sentence of its own in ReadoutWords, "an image" rather than "1 image").
def _sent_many(kind: AttachmentKind, count: int, name: str) -> Text:
    if kind == "image":
        return npgettext("readout", "{name} sent {count} images.", "{name} sent {count} images.", count, name=name)
    if kind == "video":
        return npgettext("readout", "{name} sent {count} videos.", "{name} sent {count} videos.", count, name=name)
    if kind == "audio":
        return npgettext(
            "readout", "{name} sent {count} audio files.", "{name} sent {count} audio files.", count, name=name
        )
    return npgettext("readout", "{name} sent {count} files.", "{name} sent {count} files.", count, name=name)


def _with_many(kind: AttachmentKind, count: int) -> Text:
    if kind == "image":
        return npgettext("readout", "With {count} images.", "With {count} images.", count)
    if kind == "video":
        return npgettext("readout", "With {count} videos.", "With {count} videos.", count)
    if kind == "audio":
        return npgettext("readout", "With {count} audio files.", "With {count} audio files.", count)
    return npgettext("readout", "With {count} files.", "With {count} files.", count)


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
        # Translators: a sticker in a message, read by its name.
        sticker=word(pgettext("readout", "sticker: {name}")),
        # Translators: a message with attachments and no text, read as who sent what.
        sent_one={
            "image": word(pgettext("readout", "{name} sent an image.")),
            "video": word(pgettext("readout", "{name} sent a video.")),
            "audio": word(pgettext("readout", "{name} sent an audio file.")),
            "file": word(pgettext("readout", "{name} sent a file.")),
        },
        # Translators: the attachments of a message, read after its text.
        with_one={
            "image": word(pgettext("readout", "With an image.")),
            "video": word(pgettext("readout", "With a video.")),
            "audio": word(pgettext("readout", "With an audio file.")),
            "file": word(pgettext("readout", "With a file.")),
        },
        # Translators: a sentence {more} read after a text {text} that does not end with a full stop.
        then=word(pgettext("readout", "{text}. {more}")),
        # Translators: a sentence {more} read after a text {text} that ends with a full stop, "!" or "?".
        after=word(pgettext("readout", "{text} {more}")),
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
