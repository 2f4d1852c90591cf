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


# PRODUCT.md, Continuity, "Catch-up": from this many readouts queued in a server (the one being sent included), each
# is sent faster, by 10 points more for each one past 4, at most 50 more and never past +100%.
CATCH_UP_FROM: Final = 5
CATCH_UP_STEP: Final = 10
CATCH_UP_MOST: Final = 50


def catch_up_rate(rate: str | None, queued: int) -> str | None:
    """The speaking rate for a readout sent while `queued` readouts are queued (itself included).

    `rate` is the member's effective rate in canonical form; a word rate or none counts as 0%. Under
    CATCH_UP_FROM readouts the rate is left as it is.
    """
    if queued < CATCH_UP_FROM:
        return rate
    match = _PERCENTAGE.fullmatch(rate or "")
    base = 0 if match is None else (-1 if match.group(1) == "-" else 1) * int(match.group(2))
    faster = min(base + min(CATCH_UP_STEP * (queued - CATCH_UP_FROM + 1), CATCH_UP_MOST), RATE_RANGE[1])
    return "0%" if faster == 0 else f"{faster:+d}%"
