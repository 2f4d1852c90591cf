"""A Discord voice message's audio: Ogg Opus, its exact duration and its waveform, made in one ffmpeg run.

resources/message.mdx, "Voice Messages": clients upload "a 1 channel, 48000 Hz, 32kbps Opus stream in an OGG
container", and the waveform is "1 byte per datapoint encoded in base64", sampled "at most once per 100
milliseconds" and downsampled to "no more than 256 datapoints". One ffmpeg process (through the safe door, on the
replies lane) writes the Ogg file and, on a second output, the same audio as low-rate PCM for the waveform and the
duration. The three are kept in the audio cache as one entry (`pack`), so a repeat transcodes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Final

from bot.audio.ffmpeg import AudioError, Lane, run
from bot.audio.processing import CONVERT_SECONDS

__all__ = [
    "CONTENT_TYPE",
    "OUTPUT_TYPE",
    "WAVEFORM_POINTS",
    "VoiceMessageAudio",
    "encode",
    "encodings_made",
    "pack",
    "unpack",
    "waveform",
]

# What Discord's own clients upload (message.mdx, above).
ENCODER_ARGUMENTS: Final = (
    "-map_metadata", "-1", "-vn",
    "-c:a", "libopus", "-ar", "48000", "-ac", "1", "-b:a", "32k", "-application", "voip", "-f", "ogg",
)  # fmt: skip
CONTENT_TYPE: Final = "audio/ogg"
# The cache entry's type: an entry of this type holds `pack`'s layout, never a plain audio file.
OUTPUT_TYPE: Final = "voicemessage"
WAVEFORM_POINTS: Final = 256
POINT_SECONDS: Final = 0.1
# The waveform is read from mono PCM at this rate: speech's loudness is all there, and it is little to scan.
_WAVEFORM_RATE: Final = 8_000
_MAGIC: Final = b"UNMIXR-VOICE-MESSAGE 1\n"
_encodings = 0


def encodings_made() -> int:
    """How many voice messages this process has encoded (a repeat served from the cache encodes none)."""
    return _encodings


@dataclass(frozen=True, slots=True)
class VoiceMessageAudio:
    """A voice message's audio: Ogg Opus bytes, their length in seconds, and one amplitude byte per point."""

    ogg: bytes
    duration: float
    waveform: bytes

    @property
    def waveform_base64(self) -> str:
        """The waveform as Discord takes it."""
        return base64.b64encode(self.waveform).decode("ascii")


async def encode(audio: bytes) -> VoiceMessageAudio:
    """Make a voice message from audio in any format ffmpeg reads (an mp3 from Unmixr); raise AudioError if it can't."""
    global _encodings
    completed = await run(
        "ffmpeg",
        [audio],
        [
            # First output: mono 16-bit PCM on stdout, for the waveform and the exact duration.
            *("-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(_WAVEFORM_RATE), "-f", "s16le", "pipe:1"),
            # Second output: the Ogg Opus file (the door appends its private path).
            *("-map", "0:a:0", *ENCODER_ARGUMENTS),
        ],
        output="ogg",
        lane=Lane.REPLIES,
        limit=CONVERT_SECONDS,
    )
    if completed.returncode != 0 or not completed.output or len(completed.stdout) < 2:
        raise AudioError("The audio could not be turned into a voice message.")
    _encodings += 1
    seconds = len(completed.stdout) // 2 / _WAVEFORM_RATE
    points = await asyncio.to_thread(waveform, completed.stdout, _WAVEFORM_RATE)
    return VoiceMessageAudio(ogg=completed.output, duration=seconds, waveform=points)


def waveform(pcm: bytes, sample_rate: int) -> bytes:
    """One byte a point (0 silent, 255 the loudest peak): at most a point per 100 ms and 256 points, at least one."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()  # s16le
    count = len(samples)
    if count == 0:
        return b"\x00"
    # Whole 100 ms periods: no point covers less than 100 ms.
    points = min(WAVEFORM_POINTS, max(1, math.floor(count / sample_rate / POINT_SECONDS)))
    peaks = []
    for point in range(points):
        part = samples[point * count // points : (point + 1) * count // points]
        peaks.append(max(max(part), -min(part)) if part else 0)
    # Scaled to the loudest point, as players draw it: synthesised speech is rarely near full scale.
    loudest = max(peaks) or 1
    return bytes(round(peak * 255 / loudest) for peak in peaks)


def pack(message: VoiceMessageAudio) -> bytes:
    """One cache entry's bytes for a voice message (its duration goes in the entry's header)."""
    return _MAGIC + len(message.waveform).to_bytes(2, "big") + message.waveform + message.ogg


def unpack(data: bytes, duration: float | None) -> VoiceMessageAudio | None:
    """The voice message in a cache entry made by `pack`, or None if the entry is not one."""
    if duration is None or not data.startswith(_MAGIC):
        return None
    start = len(_MAGIC) + 2
    length = int.from_bytes(data[len(_MAGIC) : start], "big")
    points, ogg = data[start : start + length], data[start + length :]
    if not 0 < length <= WAVEFORM_POINTS or len(points) != length or not ogg:
        return None
    return VoiceMessageAudio(ogg=ogg, duration=duration, waveform=points)
