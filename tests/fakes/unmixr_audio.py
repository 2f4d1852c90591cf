"""Real, decodable test-tone audio for the Unmixr stand-in, made fast and without blocking the event loop."""

from __future__ import annotations

import array
import asyncio
import bisect
import contextlib
import functools
import io
import json
import math
import os
import sys
import tempfile
import wave
from collections import OrderedDict
from dataclasses import dataclass

SAMPLE_RATE = 24_000
MP3_BITRATE_KBPS = 32
# The first base mp3 of a frequency is this long (encoded in tens of milliseconds); longer texts grow it.
MINIMUM_BASE_SECONDS = 20.0
AMPLITUDE = 0.25
# Finished clips kept for reuse, bounded by their total size.
CACHE_BYTES = 128 * 1024 * 1024

_MP3_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_SAMPLE_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


@dataclass(frozen=True)
class Audio:
    """One generated clip: its bytes, media type, file extension and exact duration in seconds."""

    data: bytes
    content_type: str
    extension: str
    duration: float


@dataclass(frozen=True)
class _Mp3Tone:
    """A long constant-bitrate mp3 tone with the end offset and end time of every frame, for slicing."""

    data: bytes
    frame_ends: list[int]
    frame_times: list[float]


# Finished audio is pure data, so it is shared across stand-in instances (and event loops) of one process.
_base_mp3: dict[int, _Mp3Tone] = {}
_clips: OrderedDict[tuple[float, str, int], Audio] = OrderedDict()
_cached_bytes = [0]


def _remember_size(size: int) -> None:
    """Account for a newly cached clip and forget the least recently used ones past the size budget."""
    _cached_bytes[0] += size
    while _cached_bytes[0] > CACHE_BYTES and len(_clips) > 1:
        _, evicted = _clips.popitem(last=False)
        _cached_bytes[0] -= len(evicted.data)


def mp3_frames(data: bytes) -> tuple[list[int], list[float]]:
    """Return the end offset and cumulative end time of each MPEG layer III frame in `data`."""
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        offset = 10 + size
    ends: list[int] = []
    times: list[float] = []
    elapsed = 0.0
    while offset + 4 <= len(data):
        header = int.from_bytes(data[offset : offset + 4], "big")
        if header >> 21 != 0x7FF:
            break
        version = (header >> 19) & 0x3
        layer = (header >> 17) & 0x3
        bitrate_index = (header >> 12) & 0xF
        rate_index = (header >> 10) & 0x3
        padding = (header >> 9) & 0x1
        if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
            break
        bitrates = _MP3_BITRATES_V1 if version == 3 else _MP3_BITRATES_V2
        sample_rate = _MP3_SAMPLE_RATES[version][rate_index]
        samples = 1152 if version == 3 else 576
        length = (samples // 8) * bitrates[bitrate_index] * 1000 // sample_rate + padding
        if offset + length > len(data):
            break
        offset += length
        elapsed += samples / sample_rate
        ends.append(offset)
        times.append(elapsed)
    return ends, times


@functools.lru_cache(maxsize=128)
def _one_second(frequency: int) -> array.array[int]:
    """Return one second of a 16-bit sine tone; an integer frequency makes it loop seamlessly."""
    peak = AMPLITUDE * 32_767
    step = 2 * math.pi * frequency / SAMPLE_RATE
    return array.array("h", (round(peak * math.sin(step * index)) for index in range(SAMPLE_RATE)))


def build_wav(frequency: int, seconds: float) -> Audio:
    """Build a 16-bit mono 24 kHz wav tone in pure Python by repeating one second of samples."""
    count = max(1, round(seconds * SAMPLE_RATE))
    second = _one_second(frequency)
    whole, rest = divmod(count, SAMPLE_RATE)
    samples = second * whole
    samples.extend(second[:rest])
    if sys.byteorder == "big":
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(samples.tobytes())
    return Audio(buffer.getvalue(), "audio/wav", "wav", count / SAMPLE_RATE)


async def _encode_mp3_tone(frequency: int, seconds: float) -> _Mp3Tone:
    """Encode a constant-bitrate mp3 tone with ffmpeg, without a Xing header so that any prefix is valid."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate={SAMPLE_RATE}:duration={seconds:.3f}",
        "-ac",
        "1",
        "-c:a",
        "libmp3lame",
        "-b:a",
        f"{MP3_BITRATE_KBPS}k",
        "-compression_level",
        "9",
        "-write_xing",
        "0",
        "-id3v2_version",
        "0",
        "-map_metadata",
        "-1",
        "-f",
        "mp3",
        "pipe:1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to encode a tone: {errors.decode(errors='replace').strip()}")
    ends, times = mp3_frames(output)
    if not ends:
        raise RuntimeError("ffmpeg produced no mp3 frames")
    return _Mp3Tone(output, ends, times)


class ToneGenerator:
    """Makes tones of a given frequency, duration and format, caching finished clips by rounded duration."""

    def __init__(self) -> None:
        self._pending: dict[tuple[float, str, int], asyncio.Future[Audio]] = {}
        self._base_locks: dict[int, asyncio.Lock] = {}

    async def tone(self, frequency: int, seconds: float, output_type: str) -> Audio:
        """Return a tone of `seconds` (at least 0.5) in `output_type` ("mp3" or "wav")."""
        key = (round(max(0.5, seconds), 2), output_type, frequency)
        cached = _clips.get(key)
        if cached is not None:
            _clips.move_to_end(key)
            return cached
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            audio = await self._make(*key)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            # Nobody else may be waiting; mark the exception as retrieved so asyncio does not warn.
            future.exception()
            raise
        finally:
            del self._pending[key]
        future.set_result(audio)
        _clips[key] = audio
        _remember_size(len(audio.data))
        return audio

    async def _make(self, seconds: float, output_type: str, frequency: int) -> Audio:
        """Generate one clip; wav in a worker thread, mp3 as a frame-exact prefix of the base tone."""
        if output_type == "wav":
            return await asyncio.to_thread(build_wav, frequency, seconds)
        base = await self._base(frequency, seconds)
        # The frame whose end is nearest the wanted duration.
        index = min(bisect.bisect_left(base.frame_times, seconds), len(base.frame_times) - 1)
        if index > 0 and seconds - base.frame_times[index - 1] < base.frame_times[index] - seconds:
            index -= 1
        return Audio(base.data[: base.frame_ends[index]], "audio/mpeg", "mp3", base.frame_times[index])

    async def _base(self, frequency: int, seconds: float) -> _Mp3Tone:
        """Return a base mp3 tone of this frequency at least `seconds` long, encoding it once."""
        lock = self._base_locks.setdefault(frequency, asyncio.Lock())
        async with lock:
            base = _base_mp3.get(frequency)
            if base is None or base.frame_times[-1] < seconds + 0.1:
                # Grow geometrically, so a run of ever longer texts re-encodes only a few times.
                previous = base.frame_times[-1] if base is not None else 0.0
                length = max(MINIMUM_BASE_SECONDS, math.ceil(seconds) + 5.0, 2 * previous)
                base = await _encode_mp3_tone(frequency, length)
                _base_mp3[frequency] = base
            return base


def _write_temporary(data: bytes) -> str:
    """Write `data` to a new temporary file and return its path."""
    with tempfile.NamedTemporaryFile(prefix="unmixr-fake-", suffix=".bin", delete=False) as handle:
        handle.write(data)
        return handle.name


async def probe_duration(data: bytes) -> float | None:
    """Return the duration of the audio in `data` measured by ffprobe, or None if it is not audio."""
    path = await asyncio.to_thread(_write_temporary, data)
    try:
        return await probe_file_duration(path)
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.unlink, path)


async def probe_file_duration(path: str) -> float | None:
    """Return the duration of the audio file at `path` measured by ffprobe, or None when it has no audio."""
    process = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        "format=duration:stream=codec_type",
        "-of",
        "json",
        path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        return None
    try:
        report = json.loads(output)
        streams = report.get("streams", [])
        if not any(stream.get("codec_type") == "audio" for stream in streams):
            return None
        return float(report["format"]["duration"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
