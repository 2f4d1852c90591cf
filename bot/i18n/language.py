"""The shipped languages: their catalogues, read at start, and how each writes messages, numbers and dates."""

from __future__ import annotations

import gettext
import io
import logging
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from babel import Locale
from babel.dates import format_datetime, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from bot.i18n.text import Text

log = logging.getLogger(__name__)

SOURCE: Final = "en-US"
"""The language the messages are written in: it needs no catalogue."""
SHIPPED: Final = ("en-US", "de", "es-ES", "fr", "pt-BR", "ja")
"""Every language the bot speaks, as Discord's locale codes (reference.mdx, "Locales")."""
TRANSLATED: Final = tuple(tag for tag in SHIPPED if tag != SOURCE)

LOCALES_DIR: Final = Path(__file__).resolve().parent.parent / "locales"
DOMAIN: Final = "messages"

_FORMATTER: Final = string.Formatter()


def babel_id(tag: str) -> str:
    """A locale code as gettext and Babel name it: pt-BR is pt_BR."""
    return str(Locale.parse(tag, sep="-"))


def catalogue_path(tag: str, directory: Path = LOCALES_DIR) -> Path:
    """Where the catalogue of one shipped language lives."""
    return directory / babel_id(tag) / "LC_MESSAGES" / f"{DOMAIN}.po"


def match_locale(tag: str | None) -> str | None:
    """The shipped language for a locale tag: the same tag, else the same primary language (de-AT is de), or None.

    Case and `_` or `-` do not matter: pt_pt, pt-PT and PT-pt all find pt-BR.
    """
    if not tag:
        return None
    wanted = tag.strip().replace("_", "-").casefold()
    for shipped in SHIPPED:
        if shipped.casefold() == wanted:
            return shipped
    primary = wanted.split("-", 1)[0]
    for shipped in SHIPPED:
        if shipped.casefold().split("-", 1)[0] == primary:
            return shipped
    return None


@dataclass(frozen=True, slots=True)
class Language:
    """One shipped language: its catalogue, and how it writes numbers, dates and command mentions."""

    tag: str
    translations: gettext.NullTranslations
    locale: Locale
    # The id of a top-level command by its name, where known (for `</name:id>` mentions).
    command_ids: Callable[[str], int | None] = field(default=lambda _name: None)

    def with_commands(self, command_ids: Callable[[str], int | None]) -> Language:
        """This language, naming commands with mentions whose ids `command_ids` knows."""
        return Language(self.tag, self.translations, self.locale, command_ids)

    def text(self, text: Text) -> str:
        """A message in this language with its values filled in."""
        if text.plural is not None:
            count = text.count if text.count is not None else 0
            if text.context is not None:
                template = self.translations.npgettext(text.context, text.message, text.plural, count)
            else:
                template = self.translations.ngettext(text.message, text.plural, count)
        elif text.context is not None:
            template = self.translations.pgettext(text.context, text.message)
        else:
            template = self.translations.gettext(text.message)
        if not text.params:
            return template
        return template.format_map({name: self.value(value) for name, value in text.params.items()})

    def value(self, value: object) -> str:
        """A value of a message as this language writes it: messages translated, numbers with its separators."""
        render = getattr(value, "render", None)
        if render is not None:
            return str(render(self))
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int | float):
            return self.number(value)
        return str(value)

    def number(self, value: float, *, decimals: int | None = None) -> str:
        """A number with this language's separators (993,907 / 993.907 / 993 907); with `decimals`, a measure written
        with that many decimals and no grouping (7223.0 s, 1,5 MB)."""
        if decimals is None:
            return format_decimal(value, locale=self.locale)
        pattern = "0." + "0" * decimals if decimals > 0 else "0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def moment(self, value: datetime, skeleton: str) -> str:
        """A date or time through a CLDR skeleton, in this language's order and words."""
        return format_skeleton(skeleton, value, locale=self.locale)

    def date_pattern(self, value: datetime, pattern: str) -> str:
        """A date or time through a CLDR pattern (its words, such as month names, in this language)."""
        return format_datetime(value, pattern, locale=self.locale)

    def command(self, name: str) -> str:
        """A command to name in a reply: `</settings budget:id>` when its id is known, else the name in code."""
        command_id = self.command_ids(name.split(" ", 1)[0])
        if command_id is None:
            return f"`/{name}`"
        return f"</{name}:{command_id}>"


def placeholders(message: str) -> set[str]:
    """The `{name}` placeholders of a message (the catalogue's test compares them across languages)."""
    return {name for _text, name, _spec, _conversion in _FORMATTER.parse(message) if name is not None}


_languages: dict[str, Language] = {SOURCE: Language(SOURCE, gettext.NullTranslations(), Locale.parse("en_US"))}


def source_language() -> Language:
    """English as written in the source, which needs no catalogue."""
    return _languages[SOURCE]


def load_catalogues(directory: Path = LOCALES_DIR) -> None:
    """Read every shipped catalogue (at start: setup_hook); reading them again is a no-op."""
    if all(tag in _languages for tag in SHIPPED):
        return
    for tag in TRANSLATED:
        with catalogue_path(tag, directory).open("rb") as file:
            catalog = read_po(file, locale=babel_id(tag), domain=DOMAIN)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        _languages[tag] = Language(tag, Translations(compiled, domain=DOMAIN), Locale.parse(babel_id(tag)))
    log.debug("read the catalogues of %s", ", ".join(TRANSLATED))


def language(tag: str | None) -> Language:
    """The shipped language for a locale tag (matched by `match_locale`), English when none matches."""
    shipped = match_locale(tag) or SOURCE
    found = _languages.get(shipped)
    if found is None:
        raise RuntimeError(f"the catalogue of {shipped} is not loaded: call load_catalogues() at start")
    return found
