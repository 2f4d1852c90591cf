"""Secrets out of every message: the one way to mask them, and the shortest secret worth masking."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MASK: Final = "[redacted]"
# Secrets shorter than this are refused at start: no real token or key is that short, and masking so short a
# string in every message would garble them ("none[redacted]istent" for a token `x`).
MIN_SECRET_LENGTH: Final = 8


def maskable(secrets: Iterable[str]) -> list[str]:
    """The secrets worth masking, longest first (a shorter one is refused at start; masking it would garble)."""
    return sorted({secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of at least MIN_SECRET_LENGTH characters replaced by MASK."""
    for secret in maskable(secrets):
        text = text.replace(secret, MASK)
    return text
