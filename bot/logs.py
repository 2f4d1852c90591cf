"""Logging set-up, with secrets masked in every line as a last line of defence."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import aiohttp
import discord

from bot.masking import mask_secrets, maskable
from bot.outages import outages, transport_reason

# discord.py's loggers whose tracebacks are reconnect attempts (shard.py and client.py retry with these).
_DISCORD_LOGGERS: Final = ("discord.shard", "discord.client")
_NETWORK_ERRORS: Final = (OSError, TimeoutError, aiohttp.ClientError, discord.GatewayNotFound, discord.ConnectionClosed)


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


class DiscordReconnectFilter(logging.Filter):
    """Turns discord.py's reconnect tracebacks (ERROR, twenty lines each) into an outage report.

    Put on the loggers "discord.shard" and "discord.client": a record with a network error attached becomes one
    rate-limited WARNING naming the gateway's address and the reason; its traceback is logged at DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other record; report and drop a reconnect attempt's."""
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not isinstance(error, _NETWORK_ERRORS):
            return True
        logging.getLogger("bot.outages").debug("%s", record.getMessage(), exc_info=record.exc_info)
        outages.report(
            f"discord {type(error).__name__}",
            f"Discord's gateway at {_address(error)} could not be reached: {transport_reason(error)}; "
            "discord.py keeps reconnecting",
        )
        return False


def _address(error: BaseException) -> str:
    host = getattr(error, "host", None)
    port = getattr(error, "port", None)
    if host:
        return f"{host}:{port}" if port else str(host)
    return str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


def install_discord_filter() -> None:
    """Quiet discord.py's reconnect tracebacks (idempotent)."""
    for name in _DISCORD_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, DiscordReconnectFilter) for existing in logger.filters):
            logger.addFilter(DiscordReconnectFilter())


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
    outages.reset()
    install_discord_filter()
