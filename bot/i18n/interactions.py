"""The language of an interaction: the member's own, with mentions of this bot's commands."""

from __future__ import annotations

from typing import Any

import discord

from bot.i18n import Language, Message, Renderable, language


def language_of(interaction: discord.Interaction[Any]) -> Language:
    """The member's language (`interaction.locale`, en-US when the bot does not ship it), naming commands with
    mentions of the ids this bot knows for the interaction's server."""
    speaking = language(interaction.locale.value if interaction.locale is not None else None)
    ids = getattr(interaction.client, "command_ids", None)
    if ids is None:
        return speaking
    guild_id = interaction.guild_id
    return speaking.with_commands(lambda name: ids.find(name, guild_id))


def render(interaction: discord.Interaction[Any], message: Message | Renderable) -> str:
    """A message in the member's language (plain strings are shown as they are)."""
    if isinstance(message, str):
        return message
    return message.render(language_of(interaction))
