"""What a readout says besides a message's text: its stickers by name and its attachments by kind.

PRODUCT.md, Continuity, "What a readout says": a sticker is read as its name ("sticker: party parrot"); a message
with attachments and no text says who sent what kind ("Alex sent an image"), and with text the kinds follow it.
Every phrase is one whole sentence, in a singular and a plural form, so each can be translated as it is.
"""

from __future__ import annotations

import mimetypes
from collections import Counter
from collections.abc import Sequence
from typing import Final, Literal

from bot.text.cleaning import is_speakable, spoken_name
from bot.wording import number

AttachmentKind = Literal["image", "video", "audio", "file"]
KINDS: Final[tuple[AttachmentKind, ...]] = ("image", "video", "audio", "file")

# A message without text: who sent what.
SENT_ALONE: Final[dict[AttachmentKind, tuple[str, str]]] = {
    "image": ("{name} sent an image.", "{name} sent {count} images."),
    "video": ("{name} sent a video.", "{name} sent {count} videos."),
    "audio": ("{name} sent an audio file.", "{name} sent {count} audio files."),
    "file": ("{name} sent a file.", "{name} sent {count} files."),
}
# After a message's text (or sticker): the kinds follow it.
SENT_WITH: Final[dict[AttachmentKind, tuple[str, str]]] = {
    "image": ("With an image.", "With {count} images."),
    "video": ("With a video.", "With {count} videos."),
    "audio": ("With an audio file.", "With {count} audio files."),
    "file": ("With a file.", "With {count} files."),
}
STICKER: Final = "sticker: {name}"
_SENTENCE_ENDS: Final = ".!?…"


def attachment_kind(content_type: str | None, filename: str) -> AttachmentKind:
    """An attachment's kind from its media type (Discord sets it), else from its file name's extension."""
    media = (content_type or mimetypes.guess_type(filename)[0] or "").split(";", 1)[0].strip().lower()
    major = media.partition("/")[0]
    if major == "image":
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "file"


def _join(parts: Sequence[str]) -> str:
    text = ""
    for part in parts:
        if not text:
            text = part
        elif text[-1] in _SENTENCE_ENDS:
            text = f"{text} {part}"
        else:
            text = f"{text}. {part}"
    return text


def readout_words(text: str, stickers: Sequence[str], kinds: Sequence[AttachmentKind], author: str) -> tuple[str, bool]:
    """The words of a readout and whether they take the "<name> said" prefix.

    `text` is the message's cleaned text (empty when nothing speakable is left), `stickers` the stickers' names,
    `kinds` the kind of each attachment, `author` what the author is called aloud. A message of attachments alone
    names its author itself ("Alex sent an image. With a file."), so it takes no prefix. Empty words: nothing to read.
    """
    said = [text] if is_speakable(text) else []
    said += [STICKER.format(name=spoken_name(name)) for name in stickers if is_speakable(name)]
    counts = Counter(kinds)
    present = [kind for kind in KINDS if counts[kind]]
    if said:
        return _join([*said, *(_counted(SENT_WITH[kind], counts[kind]) for kind in present)]), True
    if not present:
        return "", False
    # The first kind names the author, the others follow it: the name is said once.
    first, *others = present
    alone = _counted(SENT_ALONE[first], counts[first], name=spoken_name(author))
    return _join([alone, *(_counted(SENT_WITH[kind], counts[kind]) for kind in others)]), False


def _counted(forms: tuple[str, str], count: int, **values: str) -> str:
    one, other = forms
    return (one if count == 1 else other).format(count=number(count), **values)
