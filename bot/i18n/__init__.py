"""Languages (PRODUCT.md, Languages): one gettext catalogue per shipped language, read at start.

Messages are written in English in the source with the markers of `bot.i18n.text` (`_`, `ngettext`, `counted`,
`pgettext`, `npgettext`), kept whole with their values, and put into the member's language where they are sent
(`bot.replies`). How to add a language: CONTRIBUTING.md.
"""

from __future__ import annotations

from bot.i18n.language import (
    LOCALES_DIR,
    SHIPPED,
    SOURCE,
    TRANSLATED,
    Language,
    catalogue_path,
    language,
    load_catalogues,
    match_locale,
    placeholders,
    source_language,
)
from bot.i18n.readout import ReadoutWords, readout_words
from bot.i18n.text import (
    Command,
    Fixed,
    Joined,
    Listing,
    Moment,
    Renderable,
    Text,
    _,
    command,
    counted,
    joined,
    listing,
    ngettext,
    npgettext,
    pgettext,
)

Message = Text | Joined | Listing | str
"""What an answer may carry: a message to render in the member's language, or text shown as it is."""

__all__ = [
    "LOCALES_DIR",
    "SHIPPED",
    "SOURCE",
    "TRANSLATED",
    "Command",
    "Fixed",
    "Joined",
    "Language",
    "Listing",
    "Message",
    "Moment",
    "ReadoutWords",
    "Renderable",
    "Text",
    "_",
    "catalogue_path",
    "command",
    "counted",
    "joined",
    "language",
    "listing",
    "load_catalogues",
    "match_locale",
    "ngettext",
    "npgettext",
    "pgettext",
    "placeholders",
    "readout_words",
    "source_language",
]
