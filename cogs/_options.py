"""Autocompletes shared by several command groups (the fixed choices live in `bot.choices`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.limits import CHOICE_NAME, fit_choices, shorten
from bot.reach import server_id
from bot.unmixr import Voice

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

MAX_CHOICES = 25


def voice_label(voice: Voice) -> str:
    """A one-line label for a voice: name, language, gender."""
    details = " · ".join(part for part in (voice.language, voice.gender) if part)
    label = f"{voice.character} · {details}" if details else (voice.character or voice.uuid)
    return shorten(label, CHOICE_NAME)


async def voice_choices(
    bot: UnmixrBot, interaction: discord.Interaction[UnmixrBot], current: str
) -> list[app_commands.Choice[str]]:
    """At most 25 voices ranked by how well their name matches what was typed, from memory only."""
    # This server's clones join the suggestions as soon as they are read, from the next keystroke on (a user
    # install has none: clones belong to servers that have the bot).
    guild_id = server_id(interaction)
    bot.catalogue.warm(guild_id)
    voices = bot.catalogue.suggest(current, guild_id, MAX_CHOICES)
    return fit_choices((voice_label(voice), voice.uuid) for voice in voices)


async def language_choices(
    bot: UnmixrBot, interaction: discord.Interaction[UnmixrBot], current: str
) -> list[app_commands.Choice[str]]:
    """Languages of the chosen voice (or of every voice) that start with or contain what was typed, from memory."""
    wanted = current.strip().casefold()
    chosen = getattr(interaction.namespace, "voice", None)
    guild_id = server_id(interaction)
    voice = bot.catalogue.find(chosen, guild_id) if isinstance(chosen, str) and chosen else None
    languages = voice.languages if voice is not None else bot.catalogue.languages(guild_id)
    starts = [code for code in languages if code.casefold().startswith(wanted)]
    contains = [code for code in languages if wanted in code.casefold() and code not in starts]
    return fit_choices((code, code) for code in starts + contains)
