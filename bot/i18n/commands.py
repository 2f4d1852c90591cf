"""Commands in every shipped language (through discord.py's Translator), and their ids for mentions in replies."""

from __future__ import annotations

from typing import Any, Final

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from bot.i18n.language import TRANSLATED, language

# The catalogue's context of each kind of name (the same English may be a command, an option and a choice, and
# names follow Discord's naming rules where descriptions do not). Descriptions have none.
NAME_CONTEXTS: Final = {
    TranslationContextLocation.command_name: "command",
    TranslationContextLocation.group_name: "command",
    TranslationContextLocation.parameter_name: "option",
    TranslationContextLocation.choice_name: "choice",
}


class CommandTranslator(app_commands.Translator):
    """Names, descriptions and choices of every command from the catalogue, for each shipped language.

    discord.py wraps every command string in `locale_str` (auto_locale_strings) and asks for each Discord locale:
    only the shipped ones are answered; Discord shows es-419 members the es-ES text (its locale fallbacks).
    """

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: TranslationContextTypes
    ) -> str | None:
        """The catalogue's translation of `string` for `locale`, or None for a language the bot does not ship."""
        tag = locale.value
        if tag not in TRANSLATED:
            return None
        translations = language(tag).translations
        name_context = NAME_CONTEXTS.get(context.location)
        if name_context is None:
            return translations.gettext(string.message)
        return translations.pgettext(name_context, string.message)


class CommandIds:
    """The ids of the registered commands by name, globally and per server, for `</name:id>` mentions.

    Learnt from every sync the bot makes, from the global list it reads at start, and from every command a member
    uses (the interaction carries the command's id, and its server when registered for that server only).
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[int | None, str], int] = {}

    def learn(self, commands: list[app_commands.AppCommand], guild_id: int | None = None) -> None:
        """Remember the ids of synced or fetched commands (of `guild_id`, or global)."""
        for command in commands:
            if command.type is discord.AppCommandType.chat_input:
                self._ids[(guild_id, command.name)] = command.id

    def learn_from(self, interaction: discord.Interaction[Any]) -> None:
        """Remember the id of the slash command a member used."""
        if interaction.type is not discord.InteractionType.application_command or interaction.data is None:
            return
        data: Any = interaction.data
        if data.get("type", 1) != discord.AppCommandType.chat_input.value or "id" not in data:
            return
        guild_id = data.get("guild_id")
        self._ids[(int(guild_id) if guild_id is not None else None, str(data["name"]))] = int(data["id"])

    def find(self, name: str, guild_id: int | None) -> int | None:
        """The id of a top-level command as members of `guild_id` see it: the server's own, else the global one."""
        if guild_id is not None:
            found = self._ids.get((guild_id, name))
            if found is not None:
                return found
        return self._ids.get((None, name))
