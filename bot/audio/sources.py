"""Audio sources for discord.py's player: Opus packets encoded ahead, played from memory."""

from __future__ import annotations

import logging

import discord
from discord.oggparse import OggError

from bot.audio.opus import OpusEncoding

log = logging.getLogger(__name__)


class OpusSource(discord.AudioSource):
    """Plays an encoding's Opus packets as they are (``is_opus``): the player thread only frames and encrypts them.

    Reading never waits on a process that lives as long as the stream: the packets are in memory, or arrive
    from an encoder running far ahead of playback.
    """

    def __init__(self, encoding: OpusEncoding) -> None:
        self._packets = encoding.packets()

    def read(self) -> bytes:
        """The next 20 ms Opus packet, or nothing at the end."""
        try:
            return next(self._packets, b"")
        except OggError as error:
            log.warning("unreadable Opus stream: %s", error)
            return b""

    def is_opus(self) -> bool:
        """The packets are Opus already: discord.py must not encode them again."""
        return True

    def cleanup(self) -> None:
        """Let go of the encoding."""
        self._packets = iter(())
