"""The filters of /voices, applied to the catalogue in memory as Unmixr's voice list applies its query parameters.

Browsing makes no Unmixr call: the catalogue (every available voice, by category) and each server's clones are
already in memory. Each filter narrows the way the reference describes its parameter: `query` a part of the
name (`q`), `language` a language or locale the voice speaks (`lang`: `en` matches `en-US`), `gender` male,
female or child (`any` is no filter; a child voice is one whose gender or age says so), `capability` one of its
capabilities, `style` one of its emotions or roles, `use_case` one of its use cases (`podcast-voices` and
`Podcast` are one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.i18n import Message, Text, joined
from bot.unmixr import Voice

__all__ = ["VoiceFilters", "select"]

_NOT_LETTERS = re.compile(r"[^a-z0-9]")


@dataclass(frozen=True, slots=True)
class VoiceFilters:
    """The filters of one /voices listing (None: not filtered)."""

    category: str | None = None
    query: str | None = None
    language: str | None = None
    gender: str | None = None
    capability: str | None = None
    style: str | None = None
    use_case: str | None = None

    def describe(self) -> Message:
        """The filters as a short line, each named as its option ("gender: female · style: chat")."""
        parts: list[Message] = [
            joined([Text(name, context="option"), ": ", value])
            for name, value in (
                ("category", self.category),
                ("query", self.query),
                ("language", self.language),
                ("gender", self.gender),
                ("capability", self.capability),
                ("style", self.style),
                ("use_case", self.use_case),
            )
            if value
        ]
        return joined(parts, " · ")

    def matches(self, voice: Voice) -> bool:
        """Whether the voice passes every filter but the category (which picks the list it comes from)."""
        if self.query and self.query.strip().casefold() not in voice.character.casefold():
            return False
        if self.language and not voice.speaks(self.language):
            return False
        if not _gender_matches(voice, (self.gender or "any").strip().lower()):
            return False
        if self.capability and _folded(self.capability) not in {_folded(item) for item in voice.capabilities}:
            return False
        if self.style and _folded(self.style) not in {_folded(item) for item in (*voice.emotions, *voice.roles)}:
            return False
        return not self.use_case or _use_case(self.use_case) in {_use_case(item) for item in voice.use_cases}


def select(voices: Iterable[Voice], filters: VoiceFilters) -> list[Voice]:
    """The voices that pass `filters`, in their order."""
    return [voice for voice in voices if filters.matches(voice)]


def _folded(value: str) -> str:
    return value.strip().casefold()


def _gender_matches(voice: Voice, gender: str) -> bool:
    if gender in ("", "any"):
        return True
    if gender == "child":
        return _folded(voice.gender or "") == "child" or _folded(voice.age or "") == "child"
    return _folded(voice.gender or "") == gender


def _use_case(value: str) -> str:
    """ "podcast-voices", "Podcast" and "podcast" as one, "e-Learning" and "elearning-voices" likewise."""
    return _NOT_LETTERS.sub("", _folded(value).removesuffix("-voices"))
