"""The message catalogues: the template built from the source and the registered commands, and each language's file.

`python -m tests.catalogue` (CONTRIBUTING.md, "Languages") runs the bot once against the local stand-ins to read
the commands it registers, writes `bot/locales/messages.pot`, and brings every language's `.po` file up to date
with it: new messages are added untranslated, messages no longer used are dropped. It then lists what each
language still misses. `tests/test_languages.py` fails while anything is missing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.i18n import LOCALES_DIR, TRANSLATED, catalogue_path, placeholders
from bot.i18n.extract import command_messages, source_messages, template
from bot.i18n.language import DOMAIN, babel_id

TEMPLATE_PATH = LOCALES_DIR / f"{DOMAIN}.pot"


def build_template(commands: list[dict[str, Any]]) -> Catalog:
    """The template from the source's messages and the commands' names, descriptions and choices."""
    return template([*source_messages(), *command_messages(commands)])


def read_catalogue(tag: str) -> Catalog:
    """One language's catalogue as it is on disk."""
    with catalogue_path(tag).open("rb") as file:
        return read_po(file, locale=babel_id(tag), domain=DOMAIN)


def _describe(message_id: str | tuple[str, ...], context: str | None) -> str:
    text = message_id if isinstance(message_id, str) else message_id[0]
    return f"{context} | {text!r}" if context else repr(text)


def problems(catalog: Catalog, wanted: Catalog) -> list[str]:
    """What a language's catalogue lacks or gets wrong against the template, one line each."""
    found: list[str] = []
    for message in wanted:
        if not message.id:
            continue
        translated = catalog.get(message.id, message.context)
        where = _describe(message.id, message.context)
        if translated is None:
            found.append(f"missing: {where}")
            continue
        if translated.fuzzy:
            found.append(f"fuzzy: {where}")
        strings = translated.string if isinstance(translated.string, tuple) else (translated.string,)
        if not all(strings):
            found.append(f"untranslated: {where}")
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        if isinstance(message.id, tuple) != isinstance(translated.string, tuple):
            found.append(f"plural forms differ: {where}")
            continue
        if isinstance(translated.string, tuple) and len(translated.string) != catalog.num_plurals:
            found.append(f"{len(translated.string)} plural forms instead of {catalog.num_plurals}: {where}")
        expected = set().union(*(placeholders(source) for source in sources))
        for string in strings:
            if placeholders(string) != expected:
                found.append(f"placeholders {sorted(placeholders(string))} instead of {sorted(expected)}: {where}")
    wanted_keys = {(message.id, message.context) for message in wanted if message.id}
    for message in catalog:
        if message.id and (message.id, message.context) not in wanted_keys:
            found.append(f"no longer used: {_describe(message.id, message.context)}")
    return found


def update_catalogues(wanted: Catalog) -> dict[str, list[str]]:
    """Write the template and bring each language's file up to date with it; return each one's problems."""
    with TEMPLATE_PATH.open("wb") as file:
        write_po(file, wanted, width=120, sort_output=True, include_lineno=False, omit_header=False)
    left: dict[str, list[str]] = {}
    for tag in TRANSLATED:
        path = catalogue_path(tag)
        if path.exists():
            catalog = read_catalogue(tag)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=babel_id(tag), domain=DOMAIN, project="unmixr-discord", fuzzy=False)
        catalog.update(wanted, update_header_comment=False, no_fuzzy_matching=True)
        with path.open("wb") as file:
            write_po(file, catalog, width=120, sort_output=True, include_lineno=False, ignore_obsolete=True)
        left[tag] = problems(read_catalogue(tag), wanted)
    return left


async def registered_commands() -> list[dict[str, Any]]:
    """The commands the bot registers, read from the Discord stand-in after a start (as the tests see them)."""
    from tests.conftest import DISCORD_TOKEN, UNMIXR_KEY, make_settings
    from tests.fakes.discord_server import FakeDiscord
    from tests.fakes.harness import BotRunner
    from tests.fakes.unmixr import FakeUnmixr

    async with FakeDiscord(token=DISCORD_TOKEN) as discord_fake:
        unmixr = FakeUnmixr(api_key=UNMIXR_KEY)
        await unmixr.start()
        try:
            guild = discord_fake.add_guild(name="Catalogue")
            with tempfile.TemporaryDirectory() as folder:
                runner = BotRunner(discord_fake, guild.id)
                await runner.start(make_settings(Path(folder), unmixr, discord_fake, dev_guild_id=guild.id))
                try:
                    return list(discord_fake.commands[guild.id])
                finally:
                    await runner.stop()
        finally:
            await unmixr.close()


def main() -> int:
    """Update the template and every language's catalogue; list what is left to translate."""
    wanted = build_template(asyncio.run(registered_commands()))
    left = update_catalogues(wanted)
    print(
        f"{TEMPLATE_PATH.relative_to(Path.cwd()) if TEMPLATE_PATH.is_relative_to(Path.cwd()) else TEMPLATE_PATH}: "
        f"{sum(1 for message in wanted if message.id)} messages"
    )
    for tag, lines in left.items():
        print(f"{tag}: {'complete' if not lines else f'{len(lines)} to do'}")
        for line in lines:
            print(f"  {line}")
    return 1 if any(left.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
