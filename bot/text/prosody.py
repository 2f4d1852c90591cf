"""Checking and normalising the rate, pitch and volume forms that Unmixr's `/short-tts/` accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from bot.i18n.text import Text, _

RATE_WORDS: Final = ("default", "x-slow", "slow", "medium", "fast", "x-fast")
PITCH_WORDS: Final = ("default", "x-low", "low", "medium", "high", "x-high")
VOLUME_WORDS: Final = ("default", "silent", "x-soft", "soft", "medium", "loud", "x-loud")

RATE_RANGE: Final = (-100, 100)
PITCH_RANGE: Final = (-50, 50)
VOLUME_RANGE: Final = (-100, 100)

DEFAULT: Final = "default"
"""The value every prosody setting falls back to at the built-in level."""

ProsodyKind = Literal["rate", "pitch", "volume"]

# An optional sign, one to three ASCII digits and a percent sign, as PRODUCT.md's "Prosody forms" says.
_PERCENTAGE: Final = re.compile(r"([+-]?)([0-9]{1,3})%")


class ProsodyError(ValueError):
    """A rate, pitch or volume value in none of the accepted forms; the message lists those forms."""

    def __init__(self, message: Text) -> None:
        super().__init__(str(message))
        self.text = message


@dataclass(frozen=True, slots=True)
class ProsodyForms:
    """The forms one prosody setting accepts: a percentage range and a list of words."""

    label: str
    minimum: int
    maximum: int
    words: tuple[str, ...]

    def describe(self) -> Text:
        """Return the one-sentence answer listing the accepted forms."""
        values = {"minimum": f"{self.minimum:+d}%", "maximum": f"{self.maximum:+d}%", "words": ", ".join(self.words)}
        if self.label == "Rate":
            return _("Rate must be a percentage from {minimum} to {maximum} or one of: {words}.", **values)
        if self.label == "Pitch":
            return _("Pitch must be a percentage from {minimum} to {maximum} or one of: {words}.", **values)
        return _("Volume must be a percentage from {minimum} to {maximum} or one of: {words}.", **values)

    def normalize(self, value: str) -> str:
        """Return `value` in canonical form ("+20%", "-10%", "0%" or a lower-case word) or raise."""
        candidate = value.strip()
        lowered = candidate.lower()
        if lowered in self.words:
            return lowered
        match = _PERCENTAGE.fullmatch(candidate)
        if match is None:
            raise ProsodyError(self.describe())
        sign, digits = match.groups()
        amount = -int(digits) if sign == "-" else int(digits)
        if not self.minimum <= amount <= self.maximum:
            raise ProsodyError(self.describe())
        return "0%" if amount == 0 else f"{amount:+d}%"


RATE_FORMS: Final = ProsodyForms("Rate", *RATE_RANGE, RATE_WORDS)
PITCH_FORMS: Final = ProsodyForms("Pitch", *PITCH_RANGE, PITCH_WORDS)
VOLUME_FORMS: Final = ProsodyForms("Volume", *VOLUME_RANGE, VOLUME_WORDS)
FORMS: Final[dict[ProsodyKind, ProsodyForms]] = {
    "rate": RATE_FORMS,
    "pitch": PITCH_FORMS,
    "volume": VOLUME_FORMS,
}


def normalize_rate(value: str) -> str:
    """Return a speaking rate in canonical form, or raise `ProsodyError` listing the accepted forms."""
    return RATE_FORMS.normalize(value)


def normalize_pitch(value: str) -> str:
    """Return a speaking pitch in canonical form, or raise `ProsodyError` listing the accepted forms."""
    return PITCH_FORMS.normalize(value)


def normalize_volume(value: str) -> str:
    """Return a speaking volume in canonical form, or raise `ProsodyError` listing the accepted forms."""
    return VOLUME_FORMS.normalize(value)


def normalize_prosody(kind: ProsodyKind, value: str) -> str:
    """Return `value` for the setting `kind` in canonical form, or raise `ProsodyError`."""
    return FORMS[kind].normalize(value)
