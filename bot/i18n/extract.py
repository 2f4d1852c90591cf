"""Building the catalogue's template: every message of the source, and every name and description of the commands.

For contributors (CONTRIBUTING.md, "Languages") and for the test that no message is missing from a language: the
source's messages are found by Babel's extractor through the markers of `bot.i18n.text`; the commands' are read
from what the bot registers with Discord (discord.py sends every name, description and choice through the
`CommandTranslator`, with the contexts of `bot.i18n.commands.NAME_CONTEXTS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

from bot.i18n.language import DOMAIN

ROOT: Final = Path(__file__).resolve().parent.parent.parent
SOURCE_DIRECTORIES: Final = ("bot", "cogs")
# The markers of bot.i18n.text, in Babel's keyword notation: which arguments are the message, its plural and
# its context.
KEYWORDS: Final[Mapping[str, Any]] = {
    "_": None,
    "pgettext": ((1, "c"), 2),
    "ngettext": (1, 2),
    "npgettext": ((1, "c"), 2, 3),
    "counted": (2, 3),
}
COMMENT_TAG: Final = "Translators:"
# Discord's option types that are commands themselves (a subcommand, a group of them).
_SUBCOMMAND_TYPES: Final = (1, 2)


@dataclass(frozen=True, slots=True)
class Entry:
    """One message: its English text (and plural), its context, and where it comes from."""

    message: str
    plural: str | None = None
    context: str | None = None
    locations: tuple[str, ...] = ()
    comments: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies the message in a catalogue: its English text and its context."""
        return self.message, self.context


def source_messages(root: Path = ROOT) -> list[Entry]:
    """Every message marked in the bot's source (`_`, `pgettext`, `ngettext`, `npgettext`, `counted`)."""
    found: list[Entry] = []
    for directory in SOURCE_DIRECTORIES:
        extracted = extract_from_dir(
            root / directory,
            method_map=[("**.py", "python")],
            keywords=dict(KEYWORDS),
            comment_tags=(COMMENT_TAG,),
            strip_comment_tags=True,
        )
        for filename, _lineno, message, comments, context in extracted:
            location = f"{directory}/{filename}"
            if isinstance(message, tuple):
                singular, plural = message[0], message[1]
                if singular:
                    found.append(Entry(singular, plural, context, (location,), tuple(comments)))
            elif message:
                found.append(Entry(message, None, context, (location,), tuple(comments)))
    return found


def command_messages(commands: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """Every name, description and choice of registered commands (Discord's payloads, in English)."""
    return list(_walk_commands(commands))


def _walk_commands(commands: Iterable[Mapping[str, Any]]) -> Iterator[Entry]:
    for command in commands:
        where = f"/{command['name']}" if command.get("type", 1) == 1 else str(command["name"])
        yield Entry(str(command["name"]), context="command", locations=(where,))
        if command.get("description"):
            yield Entry(str(command["description"]), locations=(where,))
        yield from _walk_options(command.get("options") or [], where)


def _walk_options(options: Sequence[Mapping[str, Any]], where: str) -> Iterator[Entry]:
    for option in options:
        kind = "command" if option.get("type") in _SUBCOMMAND_TYPES else "option"
        here = f"{where} {option['name']}"
        yield Entry(str(option["name"]), context=kind, locations=(here,))
        if option.get("description"):
            yield Entry(str(option["description"]), locations=(here,))
        for choice in option.get("choices") or []:
            yield Entry(str(choice["name"]), context="choice", locations=(here,))
        yield from _walk_options(option.get("options") or [], here)


def template(entries: Iterable[Entry]) -> Catalog:
    """The catalogue's template (messages.pot): each message once, with every place it is used."""
    catalog = Catalog(
        domain=DOMAIN,
        project="unmixr-discord",
        msgid_bugs_address="",
        copyright_holder="",
        fuzzy=False,
    )
    merged: dict[tuple[str, str | None], Entry] = {}
    for entry in entries:
        known = merged.get(entry.key)
        if known is None:
            merged[entry.key] = entry
            continue
        if known.plural is not None and entry.plural is not None and known.plural != entry.plural:
            raise ValueError(f"{entry.message!r} has two plurals: {known.plural!r} and {entry.plural!r}")
        merged[entry.key] = Entry(
            known.message,
            known.plural or entry.plural,
            known.context,
            tuple(dict.fromkeys(known.locations + entry.locations)),
            tuple(dict.fromkeys(known.comments + entry.comments)),
        )
    for entry in sorted(merged.values(), key=lambda item: (item.context or "", item.message)):
        catalog.add(
            (entry.message, entry.plural) if entry.plural is not None else entry.message,
            # Files and commands only, no line numbers: the template changes when messages do, not when code moves.
            locations=[(location, 0) for location in sorted(entry.locations)],
            auto_comments=list(entry.comments),
            context=entry.context,
        )
    return catalog
