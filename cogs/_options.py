"""Option choices and autocompletes shared by several command groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.catalogue import CATEGORIES
from bot.limits import CHOICE_NAME, fit_choices, shorten
from bot.unmixr import Voice
from bot.wording import capability_label

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

MAX_CHOICES = 25

# A voice message is Discord's inline player with a waveform; mp3 and wav are files to download.
FORMAT_CHOICES = [
    app_commands.Choice(name="mp3", value="mp3"),
    app_commands.Choice(name="wav", value="wav"),
    app_commands.Choice(name="voice-message", value="voice-message"),
]


def _choices(values: list[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=value, value=value) for value in values]


# The reference's categories, in its order, with `clones` (this server's clones) where the reference lists it.
CATEGORY_CHOICES = _choices([*CATEGORIES[:6], "clones", *CATEGORIES[6:]])
GENDER_CHOICES = _choices(["any", "male", "female", "child"])
# Shown as words, sent as the reference's values.
CAPABILITY_CHOICES = [
    app_commands.Choice(name=capability_label(value), value=value)
    for value in (
        "pause",
        "speech",
        "speech:volume",
        "speech:rate",
        "speech:pitch",
        "emphasize",
        "abbr",
        "custom_pause",
    )
]
STYLE_CHOICES = _choices(
    [
        "chat",
        "customerservice",
        "narration-professional",
        "newscast-casual",
        "newscast-formal",
        "cheerful",
        "empathetic",
        "angry",
        "sad",
        "excited",
        "friendly",
        "terrified",
        "shouting",
        "unfriendly",
        "whispering",
        "hopeful",
    ]
)
USE_CASE_CHOICES = _choices(
    [
        "audiobook-voices",
        "podcast-voices",
        "advertisement-voices",
        "news-voices",
        "elearning-voices",
        "chat-voices",
        "narration-voices",
        "assistant-voices",
        "announcer-voices",
        "documentary-voices",
        "gaming-voices",
        "meditation-voices",
    ]
)


def voice_label(voice: Voice) -> str:
    """A one-line label for a voice: name, language, gender."""
    details = " · ".join(part for part in (voice.language, voice.gender) if part)
    label = f"{voice.character} · {details}" if details else (voice.character or voice.uuid)
    return shorten(label, CHOICE_NAME)


async def voice_choices(
    bot: UnmixrBot, interaction: discord.Interaction[UnmixrBot], current: str
) -> list[app_commands.Choice[str]]:
    """At most 25 voices ranked by how well their name matches what was typed, from memory only."""
    # This server's clones join the suggestions as soon as they are read, from the next keystroke on.
    bot.catalogue.warm(interaction.guild_id)
    voices = bot.catalogue.suggest(current, interaction.guild_id, MAX_CHOICES)
    return fit_choices((voice_label(voice), voice.uuid) for voice in voices)


async def language_choices(
    bot: UnmixrBot, interaction: discord.Interaction[UnmixrBot], current: str
) -> list[app_commands.Choice[str]]:
    """Languages of the chosen voice (or of every voice) that start with or contain what was typed, from memory."""
    wanted = current.strip().casefold()
    chosen = getattr(interaction.namespace, "voice", None)
    voice = bot.catalogue.find(chosen, interaction.guild_id) if isinstance(chosen, str) and chosen else None
    languages = voice.languages if voice is not None else bot.catalogue.languages(interaction.guild_id)
    starts = [code for code in languages if code.casefold().startswith(wanted)]
    contains = [code for code in languages if wanted in code.casefold() and code not in starts]
    return fit_choices((code, code) for code in starts + contains)
