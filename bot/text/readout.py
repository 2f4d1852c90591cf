"""What a readout says besides a message's text: its stickers by name and its attachments by kind.

PRODUCT.md, Continuity, "What a readout says": a sticker is read as its name ("sticker: party parrot"); a message
with attachments and no text says who sent what kind ("Alex sent an image"), and with text the kinds follow it.
Every phrase is one whole sentence of the catalogue, in the clip's language (`bot.i18n.readout`), with its plural
forms, so each can be translated as it is.
"""

from __future__ import annotations

import mimetypes
from collections import Counter
from collections.abc import Sequence
from typing import Final

from bot.i18n import ReadoutWords, readout_words
from bot.i18n.readout import AttachmentKind
from bot.text.cleaning import is_speakable, speakable_author

KINDS: Final[tuple[AttachmentKind, ...]] = ("image", "video", "audio", "file")


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


def readout_text(
    text: str,
    stickers: Sequence[str],
    kinds: Sequence[AttachmentKind],
    author: str,
    words: ReadoutWords | None = None,
) -> tuple[str, bool]:
    """The words of a readout, in the language of `words` (English when not given), and whether they take the
    "<name> said" announcement.

    `text` is the message's cleaned text (empty when nothing speakable is left), `stickers` the stickers' names,
    `kinds` the kind of each attachment, `author` what the author is called aloud. A message of attachments alone
    names its author itself ("Alex sent an image. With a file."), so it takes no announcement. Empty words: nothing
    to read.
    """
    words = words or readout_words()
    said = [text] if is_speakable(text) else []
    said += [words.sticker.replace("{name}", speakable_author(name, words)) for name in stickers if is_speakable(name)]
    counts = Counter(kinds)
    present = [kind for kind in KINDS if counts[kind]]
    if said:
        return words.sentences([*said, *(words.with_(kind, counts[kind]) for kind in present)]), True
    if not present:
        return "", False
    # The first kind names the author, the others follow it: the name is said once.
    first, *others = present
    alone = words.sent(first, counts[first], speakable_author(author, words))
    return words.sentences([alone, *(words.with_(kind, counts[kind]) for kind in others)]), False
