"""Messages kept whole until they are shown: the English source and its values, put into a language on the way out.

`_("... {name} ...", name=value)`, `ngettext(singular, plural, count)` and their kin are the markers that the
catalogue's extraction looks for (`bot/i18n/extract.py`); what they return is rendered in the member's language where
it is sent (`bot/replies.py`), and in English by `str()` (logs, the command line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.i18n.language import Language


class Renderable(Protocol):
    """A value that reads differently in each language (a message, a list of them, a date)."""

    def render(self, language: Language) -> str:
        """The value as `language` writes it."""
        ...


@dataclass(frozen=True, slots=True)
class Text:
    """A message of the catalogue with its values; `plural` and `count` make it choose its plural form."""

    message: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    count: int | None = None
    context: str | None = None

    def render(self, language: Language) -> str:
        """The message in `language`, its values filled in as that language writes them."""
        return language.text(self)

    def __str__(self) -> str:
        from bot.i18n.language import source_language

        return self.render(source_language())

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __add__(self, other: object) -> Joined:
        if not isinstance(other, (Text, Joined, str)):
            return NotImplemented
        return Joined((self, other))


@dataclass(frozen=True, slots=True)
class Joined:
    """Messages and plain strings shown one after another, each in the same language."""

    parts: Sequence[Renderable | str]
    separator: str = ""

    def render(self, language: Language) -> str:
        """Each part in `language`, joined."""
        return self.separator.join(language.value(part) for part in self.parts)

    def __str__(self) -> str:
        from bot.i18n.language import source_language

        return self.render(source_language())

    def __add__(self, other: object) -> Joined:
        if not isinstance(other, (Text, Joined, str)):
            return NotImplemented
        return Joined((*self.parts, other))


@dataclass(frozen=True, slots=True)
class Listing:
    """Items of a list shown in a sentence ("a, b, c", or "a and b"), with the language's own separator."""

    items: Sequence[Renderable | str]
    conjunction: bool = False

    def render(self, language: Language) -> str:
        """The items in `language`, separated as it separates them."""
        if self.conjunction:
            # Translators: joins the names of permissions, as in "View Channel and Connect".
            separator = language.text(pgettext("list", " and "))
        else:
            # Translators: separates the items of a list, as in "Jenny, Brian".
            separator = language.text(pgettext("list", ", "))
        return separator.join(language.value(item) for item in self.items)


@dataclass(frozen=True, slots=True)
class Command:
    """A command named in a reply: a mention the member can click (`</join:id>`) once its id is known."""

    name: str

    def render(self, language: Language) -> str:
        """The mention, or the name in code when the id is not known."""
        return language.command(self.name)


@dataclass(frozen=True, slots=True)
class Fixed:
    """A number shown with a fixed count of decimals, as the language writes decimals (1.5, 1,5)."""

    value: float
    decimals: int = 1

    def render(self, language: Language) -> str:
        """The number in `language`."""
        return language.number(self.value, decimals=self.decimals)


@dataclass(frozen=True, slots=True)
class Moment:
    """A date or time shown through a CLDR skeleton ("yMMMM": November 2023, 2023年11月)."""

    value: datetime
    skeleton: str

    def render(self, language: Language) -> str:
        """The moment as `language` writes it."""
        return language.moment(self.value, self.skeleton)


def _(message: str, /, **params: object) -> Text:
    """A message of the catalogue; `{name}` placeholders are filled with `params` in the member's language."""
    return Text(message, params)


def pgettext(context: str, message: str, /, **params: object) -> Text:
    """A message whose `context` tells translators where it is used (the same English may read differently)."""
    return Text(message, params, context=context)


def ngettext(singular: str, plural: str, count: int, /, **params: object) -> Text:
    """A message with plural forms chosen by `count` (also the `{count}` placeholder) in the member's language."""
    return Text(singular, {"count": count, **params}, plural=plural, count=count)


def npgettext(context: str, singular: str, plural: str, count: int, /, **params: object) -> Text:
    """`ngettext` with a `context` for translators (the same English may read differently elsewhere)."""
    return Text(singular, {"count": count, **params}, plural=plural, count=count, context=context)


def counted(count: int, one: str, other: str, /, **params: object) -> Text:
    """`one` when count is 1, else `other` (in English; each language has its own forms), "{count}" filled in.

    counted(1, "{count} voice", "{count} voices") reads "1 voice"; with 1200, "1,200 voices" ("1.200 Stimmen").
    """
    return ngettext(one, other, count, **params)


def joined(parts: Sequence[Renderable | str], separator: str = "") -> Joined:
    """Parts shown one after another in one language, with `separator` between them (say, a new line)."""
    return Joined(tuple(parts), separator)


def listing(items: Sequence[Renderable | str], *, conjunction: bool = False) -> Listing:
    """Items to show as a list inside a sentence: "a, b, c", or with `conjunction` "a and b"."""
    return Listing(tuple(items), conjunction)


def command(name: str) -> Command:
    """A command to name in a reply, such as "settings budget"."""
    return Command(name)
