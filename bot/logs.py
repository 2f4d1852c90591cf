"""Logging set-up, with secrets masked in every line as a last line of defence."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.settings import MIN_SECRET_LENGTH

MASK = "[redacted]"


def maskable(secrets: Iterable[str]) -> list[str]:
    """The secrets worth masking, longest first: a shorter one is refused at start, and masking it would garble."""
    return sorted({secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of at least MIN_SECRET_LENGTH characters replaced by MASK."""
    for secret in maskable(secrets):
        text = text.replace(secret, MASK)
    return text


class RedactSecrets(logging.Filter):
    """Replaces any configured secret that slipped into a log line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = maskable(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask secrets in the message, its arguments and any exception text."""
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        if masked != message:
            record.msg, record.args = masked, None
        return True

    def _mask(self, text: str) -> str:
        return mask_secrets(text, self._secrets)


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at `level`, masking `secrets` on every handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's gateway chatter is useful only when debugging the bot itself.
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
