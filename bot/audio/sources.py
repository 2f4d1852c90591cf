"""Audio sources for discord.py's player: ffmpeg decoding from memory, streamed as it decodes."""

from __future__ import annotations

import io

import discord

from bot.audio.ffmpeg import SUPPORTED_DEMUXERS
from bot.voice_internals import ffmpeg_output

# Synthesised audio, read from a pipe: the same format whitelist as every other input (see bot.audio.ffmpeg).
_BEFORE_OPTIONS = f"-format_whitelist {','.join(SUPPORTED_DEMUXERS)} -protocol_whitelist pipe"


class MemoryAudioSource(discord.FFmpegPCMAudio):
    """48 kHz stereo PCM decoded by an ffmpeg subprocess from audio bytes piped in from memory.

    Playback starts with the first decoded frame, so a long chunk does not wait to be decoded whole, and
    no temporary file is left behind.
    """

    def __init__(self, audio: bytes) -> None:
        super().__init__(io.BytesIO(audio), pipe=True, before_options=_BEFORE_OPTIONS, options="-loglevel error")

    def cleanup(self) -> None:
        """Stop ffmpeg and close its output pipe (discord.py 2.7.1 leaves it open once ffmpeg has exited)."""
        stdout = ffmpeg_output(self)
        super().cleanup()
        # cleanup() runs again from __del__, after the first call replaced the pipe with a placeholder.
        if stdout is not None:
            stdout.close()
