"""The fixed choices of command options (PRODUCT.md's values), for the commands and the operator's command line.

Each choice's name is a message of the catalogue (context "choice"): Discord shows it in the member's language
(discord.py asks `bot.i18n.commands.CommandTranslator`), while the value sent back stays the reference's.
"""

from __future__ import annotations

from typing import Final

from discord import app_commands

from bot.catalogue import CATEGORIES
from bot.i18n import Text, pgettext


def _choice(name: Text | str, value: str) -> app_commands.Choice[str]:
    return app_commands.Choice(name=str(name), value=value)


def _values(values: list[str]) -> list[app_commands.Choice[str]]:
    # Unmixr's own values, shown as they are (in every language: they are names the reference gives).
    return [_choice(value, value) for value in values]


# A voice message is Discord's inline player with a waveform; mp3 and wav are files to download.
FORMAT_CHOICES: Final = [
    _choice("mp3", "mp3"),
    _choice("wav", "wav"),
    _choice(pgettext("choice", "voice-message"), "voice-message"),
]

# The reference's categories, in its order, with `clones` (this server's clones) where the reference lists it.
CATEGORY_CHOICES: Final = [
    *_values(list(CATEGORIES[:6])),
    _choice(pgettext("choice", "clones"), "clones"),
    *_values(list(CATEGORIES[6:])),
]
GENDER_CHOICES: Final = [
    _choice(pgettext("choice", "any"), "any"),
    _choice(pgettext("choice", "male"), "male"),
    _choice(pgettext("choice", "female"), "female"),
    _choice(pgettext("choice", "child"), "child"),
]
# Shown as words, sent as the reference's values.
CAPABILITY_CHOICES: Final = [
    _choice(pgettext("choice", "pauses"), "pause"),
    _choice(pgettext("choice", "speech settings"), "speech"),
    _choice(pgettext("choice", "volume"), "speech:volume"),
    _choice(pgettext("choice", "speed"), "speech:rate"),
    _choice(pgettext("choice", "pitch"), "speech:pitch"),
    _choice(pgettext("choice", "emphasis"), "emphasize"),
    _choice(pgettext("choice", "abbreviations"), "abbr"),
    _choice(pgettext("choice", "custom pauses"), "custom_pause"),
]
STYLE_CHOICES: Final = [
    _choice(pgettext("choice", "chat"), "chat"),
    _choice(pgettext("choice", "customerservice"), "customerservice"),
    _choice(pgettext("choice", "narration-professional"), "narration-professional"),
    _choice(pgettext("choice", "newscast-casual"), "newscast-casual"),
    _choice(pgettext("choice", "newscast-formal"), "newscast-formal"),
    _choice(pgettext("choice", "cheerful"), "cheerful"),
    _choice(pgettext("choice", "empathetic"), "empathetic"),
    _choice(pgettext("choice", "angry"), "angry"),
    _choice(pgettext("choice", "sad"), "sad"),
    _choice(pgettext("choice", "excited"), "excited"),
    _choice(pgettext("choice", "friendly"), "friendly"),
    _choice(pgettext("choice", "terrified"), "terrified"),
    _choice(pgettext("choice", "shouting"), "shouting"),
    _choice(pgettext("choice", "unfriendly"), "unfriendly"),
    _choice(pgettext("choice", "whispering"), "whispering"),
    _choice(pgettext("choice", "hopeful"), "hopeful"),
]
USE_CASE_CHOICES: Final = _values(
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
