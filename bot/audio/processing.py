"""Audio helpers built on ffmpeg and ffprobe, which every one of them reaches through `bot.audio.ffmpeg.run`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import shutil
import wave
from collections.abc import Hashable, Sequence
from typing import Any, Final, Literal

from bot.audio.ffmpeg import AudioError, FFmpegMissingError, Joined, Lane, Outcome, OutputTooLargeError, Source, run

__all__ = [
    "AudioError",
    "FFmpegMissingError",
    "Lane",
    "Media",
    "ProbeResult",
    "concat",
    "duration",
    "extract_audio",
    "ffmpeg_available",
    "ffprobe_available",
    "probe",
    "to_pcm",
    "transcode_to_fit",
]

# Deadlines after which a process is killed; a caller wanting a shorter one wraps the call in asyncio.timeout.
PROBE_SECONDS: Final = 30.0
CONVERT_SECONDS: Final = 120.0

# Only what the checks read, never tags or other metadata: ffprobe prints a tag whole (escaping each control
# byte as six characters), so a file with a 100 MB tag would become 600 MB of JSON to read and parse.
_PROBE_ENTRIES: Final = (
    "format=format_name,duration:stream=codec_type,codec_name,duration:stream_disposition=attached_pic"
)
# The report of a real recording is well under 1 kB; more is a file built to be described at length.
PROBE_OUTPUT_BYTES: Final = 64 * 1024

# What discord.py's voice client sends: 48 kHz, two channels, 16-bit little-endian samples.
PCM_SAMPLE_RATE: Final = 48_000
PCM_CHANNELS: Final = 2
PCM_BYTES_PER_SECOND: Final = PCM_SAMPLE_RATE * PCM_CHANNELS * 2

OutputFormat = Literal["mp3", "wav"]
# Audio in memory, or a private copy on disk of a file too large to hold (see bot.audio.ffmpeg.private_copy).
Media = bytes | Source

# Constant bitrates offered by transcode_to_fit, best first, with a sample rate the mp3 standard allows for each.
_FIT_LADDER: Final[tuple[tuple[int, int], ...]] = (
    (128, 44_100),
    (112, 44_100),
    (96, 44_100),
    (80, 44_100),
    (64, 44_100),
    (56, 22_050),
    (48, 22_050),
    (40, 22_050),
    (32, 22_050),
    (24, 16_000),
    (16, 16_000),
    (8, 8_000),
)
# Room left for the ID3 and Xing headers and the encoder's extra frames at both ends.
_FIT_OVERHEAD_BYTES: Final = 4_096
_FIT_OVERHEAD_SECONDS: Final = 0.2


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    """What ffprobe found in a file; a file it cannot read at all has no format, no audio and no video."""

    duration: float | None
    has_audio: bool
    has_video: bool
    audio_codec: str | None
    format_name: str | None
    # ffprobe recognised the container, but it is not one of the supported formats (a playlist, an image...).
    unsupported: bool = False


_NOT_MEDIA: Final = ProbeResult(duration=None, has_audio=False, has_video=False, audio_codec=None, format_name=None)
_UNSUPPORTED: Final = dataclasses.replace(_NOT_MEDIA, unsupported=True)


def ffmpeg_available() -> bool:
    """Return whether the ffmpeg program is on the PATH."""
    return shutil.which("ffmpeg") is not None


def ffprobe_available() -> bool:
    """Return whether the ffprobe program is on the PATH."""
    return shutil.which("ffprobe") is not None


def _audio_error(completed: Outcome) -> AudioError:
    if b"matches no streams" in completed.stderr:
        return AudioError("The file has no audio track.")
    return AudioError("The audio could not be decoded.")


def _parse_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


async def probe(data: Media, *, lane: Lane = Lane.REPLIES, server: Hashable = None) -> ProbeResult:
    """Describe the media in data from its headers, never raising for bad input: what ffprobe can't read has no audio.

    The duration is what the file declares (its audio track's, else its container's), None if it declares none.
    """
    if (data.size if isinstance(data, Source) else len(data)) == 0:
        return _NOT_MEDIA
    try:
        completed = await run(
            "ffprobe",
            [data],
            ["-show_entries", _PROBE_ENTRIES, "-of", "json"],
            lane=lane,
            server=server,
            limit=PROBE_SECONDS,
            max_stdout=PROBE_OUTPUT_BYTES,
        )
    except OutputTooLargeError:
        return _NOT_MEDIA
    # Parsed in a thread: even 64 kB of JSON is a few milliseconds the event loop need not spend.
    return await asyncio.to_thread(_read_probe_report, completed)


def _read_probe_report(completed: Outcome) -> ProbeResult:
    """Turn ffprobe's JSON into a ProbeResult, taking the first audio stream's duration, else the container's."""
    if completed.returncode != 0:
        return _UNSUPPORTED if b"not on whitelist" in completed.stderr else _NOT_MEDIA
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        return _NOT_MEDIA
    if not isinstance(report, dict) or not isinstance(report.get("format") or {}, dict):
        return _NOT_MEDIA
    container: dict[str, Any] = report.get("format") or {}
    streams = [stream for stream in report.get("streams") or [] if isinstance(stream, dict)]
    audio = next((stream for stream in streams if stream.get("codec_type") == "audio"), None)
    # Cover art in an mp3 or m4a shows up as a one-frame video stream; it is not a video.
    has_video = any(
        stream.get("codec_type") == "video" and not (stream.get("disposition") or {}).get("attached_pic")
        for stream in streams
    )
    seconds = _parse_float(audio.get("duration")) if audio else None
    return ProbeResult(
        duration=seconds if seconds is not None else _parse_float(container.get("duration")),
        has_audio=audio is not None,
        has_video=has_video,
        audio_codec=audio.get("codec_name") if audio else None,
        format_name=container.get("format_name"),
    )


def _decoded_seconds(completed: Outcome) -> float | None:
    """Read the length of the decoded audio from ffmpeg's last progress report."""
    if completed.returncode != 0:
        return None
    microseconds = None
    for line in completed.stdout.splitlines():
        if line.startswith(b"out_time_us="):
            with contextlib.suppress(ValueError):
                microseconds = int(line.partition(b"=")[2])
    return microseconds / 1_000_000 if microseconds else None


def _stop_after(seconds: float | None) -> list[str]:
    """ffmpeg's output option that stops decoding after `seconds` of audio, if given."""
    return [] if seconds is None else ["-t", f"{seconds:g}"]


async def duration(
    data: Media, *, stop_after: float | None = None, lane: Lane = Lane.REPLIES, server: Hashable = None
) -> float:
    """Return the audio's length in seconds, measured by decoding it (at most `stop_after`), or raise AudioError."""
    # Unlike probe(), headers are not trusted: an mp3 cut short still claims its full length in its
    # Xing header, but only what decodes is counted here.
    completed = await run(
        "ffmpeg",
        [data],
        ["-map", "0:a:0", *_stop_after(stop_after), "-f", "null", "-progress", "pipe:1", "-nostats", "-"],
        lane=lane,
        server=server,
        limit=PROBE_SECONDS,
    )
    if completed.returncode != 0:
        raise _audio_error(completed)
    seconds = _decoded_seconds(completed)
    if seconds is None:
        raise AudioError("The audio could not be decoded.")
    return seconds


# transcode_to_fit's duration parameter shadows the function's name.
_measure_duration = duration


def _encoder_arguments(output_format: str) -> list[str]:
    if output_format == "mp3":
        return ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]
    if output_format == "wav":
        return ["-c:a", "pcm_s16le", "-f", "wav"]
    raise ValueError(f"unsupported output format {output_format!r}; use 'mp3' or 'wav'")


async def _convert(
    data: Media, codec_arguments: Sequence[str], *, suffix: str, lane: Lane = Lane.REPLIES, server: Hashable = None
) -> bytes:
    """Decode data's first audio track and encode it with the given arguments into a file."""
    # A file rather than stdout, so the mp3 muxer can go back and write its Xing/LAME header,
    # which carries the exact length and the encoder delay that players trim.
    completed = await run(
        "ffmpeg",
        [data],
        ["-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", *codec_arguments],
        output=suffix,
        lane=lane,
        server=server,
        limit=CONVERT_SECONDS,
    )
    if completed.returncode != 0:
        raise _audio_error(completed)
    if not completed.output:
        raise AudioError("The audio could not be decoded.")
    return completed.output


async def extract_audio(
    data: Media,
    *,
    output_format: OutputFormat = "mp3",
    stop_after: float | None = None,
    lane: Lane = Lane.REPLIES,
    server: Hashable = None,
) -> bytes:
    """Return the first audio track (its first `stop_after` seconds) of a file, as mono mp3 (128 kbps) or wav."""
    codec_arguments = [*_stop_after(stop_after), "-ac", "1", *_encoder_arguments(output_format)]
    return await _convert(data, codec_arguments, suffix=output_format, lane=lane, server=server)


async def to_pcm(data: bytes) -> bytes:
    """Decode audio to raw 48 kHz stereo 16-bit little-endian PCM, the form discord.py's voice sends."""
    completed = await run(
        "ffmpeg",
        [data],
        [
            "-map",
            "0:a:0",
            "-vn",
            "-f",
            "s16le",
            "-ar",
            str(PCM_SAMPLE_RATE),
            "-ac",
            str(PCM_CHANNELS),
            "pipe:1",
        ],
        limit=CONVERT_SECONDS,
    )
    if completed.returncode != 0:
        raise _audio_error(completed)
    if not completed.stdout:
        raise AudioError("The audio could not be decoded.")
    return completed.stdout


async def transcode_to_fit(
    data: bytes, max_bytes: int, *, duration: float | None = None, server: Hashable = None
) -> bytes:
    """Return audio that fits in max_bytes: as is if it does, else mono mp3 at the best bitrate that fits."""
    # The bitrate follows from the duration (measured when not given), 128 kbps down to a floor of 8, with
    # a lower sample rate at low bitrates; a result still too large moves one step down the ladder.
    if len(data) <= max_bytes:
        return data
    seconds = duration if duration is not None else await _measure_duration(data, server=server)
    budget_bits = (max_bytes - _FIT_OVERHEAD_BYTES) * 8
    affordable_kbps = budget_bits / (seconds + _FIT_OVERHEAD_SECONDS) / 1000
    candidates = [(kbps, rate) for kbps, rate in _FIT_LADDER if kbps <= affordable_kbps]
    for kbps, sample_rate in candidates:
        encoded = await _convert(
            data,
            ["-ac", "1", "-ar", str(sample_rate), "-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-f", "mp3"],
            suffix="mp3",
            server=server,
        )
        if len(encoded) <= max_bytes:
            return encoded
    raise AudioError(
        f"The audio is too long ({seconds:.0f} seconds) to fit in {max_bytes:,} bytes even at the lowest quality."
    )


async def concat(parts: Sequence[bytes], output_format: OutputFormat, *, server: Hashable = None) -> bytes:
    """Join audio clips in order into one file of output_format whose duration is the sum of theirs."""
    # Cheapest first: wav parts of one PCM layout are joined in Python; mp3 parts of one sample rate and
    # channel count by stream copy (each join keeps about 45 ms of encoder padding); anything else is
    # decoded, joined and re-encoded by ffmpeg.
    _encoder_arguments(output_format)  # reject an unknown format before doing any work
    if not parts:
        raise ValueError("concat needs at least one part")
    if len(parts) == 1:
        return parts[0]
    if output_format == "wav":
        joined = await asyncio.to_thread(_join_wav, parts)
        if joined is not None:
            return joined
    elif _same_mp3_layout(parts):
        return await _concat_mp3_copy(parts, server)
    return await _concat_reencode(parts, output_format, server)


def _join_wav(parts: Sequence[bytes]) -> bytes | None:
    """Join PCM wav files with the same layout, or return None when they are not all such files."""
    layout: tuple[int, int, int] | None = None
    frames: list[bytes] = []
    for part in parts:
        try:
            with wave.open(io.BytesIO(part), "rb") as reader:
                part_layout = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate())
                samples = reader.readframes(reader.getnframes())
        except (wave.Error, EOFError):
            return None
        if layout is None:
            layout = part_layout
        elif part_layout != layout:
            return None
        frame_size = part_layout[0] * part_layout[1]
        # A streamed wav may end in a partial frame, which would shift every later sample.
        frames.append(samples[: len(samples) - len(samples) % frame_size])
    if layout is None:
        return None
    output = io.BytesIO()
    with wave.open(output, "wb") as writer:
        writer.setnchannels(layout[0])
        writer.setsampwidth(layout[1])
        writer.setframerate(layout[2])
        writer.writeframes(b"".join(frames))
    return output.getvalue()


async def _concat_mp3_copy(parts: Sequence[bytes], server: Hashable) -> bytes:
    completed = await run(
        "ffmpeg",
        [Joined(parts)],
        # -xerror: a part that cannot be opened fails the join instead of leaving it silently short.
        ["-xerror", "-map", "0:a:0", "-c", "copy", "-map_metadata", "-1", "-f", "mp3"],
        output="mp3",
        server=server,
        limit=CONVERT_SECONDS,
    )
    if completed.returncode != 0 or completed.output is None:
        raise _audio_error(completed)
    return completed.output


async def _concat_reencode(parts: Sequence[bytes], output_format: str, server: Hashable) -> bytes:
    labels = "".join(f"[{index}:a:0]" for index in range(len(parts)))
    completed = await run(
        "ffmpeg",
        parts,
        [
            "-filter_complex",
            f"{labels}concat=n={len(parts)}:v=0:a=1[joined]",
            "-map",
            "[joined]",
            "-map_metadata",
            "-1",
            *_encoder_arguments(output_format),
        ],
        output=output_format,
        server=server,
        limit=CONVERT_SECONDS,
    )
    if completed.returncode != 0 or completed.output is None:
        raise _audio_error(completed)
    return completed.output


# MPEG audio frame headers: sample rates by version bits, layer III bitrates (kbps) by MPEG-1 or not.
_MPEG_SAMPLE_RATES: Final[dict[int, tuple[int, int, int]]] = {
    3: (44_100, 48_000, 32_000),
    2: (22_050, 24_000, 16_000),
    0: (11_025, 12_000, 8_000),
}
_MPEG1_LAYER3_KBPS: Final = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_LAYER3_KBPS: Final = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_SEARCH_BYTES: Final = 65_536


@dataclasses.dataclass(frozen=True, slots=True)
class _Mp3Frame:
    sample_rate: int
    channels: int
    length: int


def _mp3_frame(data: bytes, offset: int) -> _Mp3Frame | None:
    """Parse an MPEG layer III frame header at offset, or return None if there is none."""
    header = data[offset : offset + 4]
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 3
    layer = (header[1] >> 1) & 3
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    sample_rate = _MPEG_SAMPLE_RATES[version][rate_index]
    kbps = (_MPEG1_LAYER3_KBPS if version == 3 else _MPEG2_LAYER3_KBPS)[bitrate_index]
    samples_per_frame_over_8 = 144 if version == 3 else 72
    padding = (header[2] >> 1) & 1
    length = samples_per_frame_over_8 * kbps * 1000 // sample_rate + padding
    channels = 1 if header[3] >> 6 == 3 else 2
    return _Mp3Frame(sample_rate=sample_rate, channels=channels, length=length)


def _mp3_layout(data: bytes) -> tuple[int, int] | None:
    """Return an mp3's (sample rate, channels) from its first two frames, or None if it is not an mp3."""
    offset = 0
    # Skip ID3v2 tags: "ID3", version, flags, then a 4-byte size with 7 bits a byte.
    while data[offset : offset + 3] == b"ID3" and len(data) >= offset + 10:
        size = 0
        for byte in data[offset + 6 : offset + 10]:
            size = (size << 7) | (byte & 0x7F)
        footer = 10 if data[offset + 5] & 0x10 else 0
        offset += 10 + size + footer
    end = min(len(data), offset + _MP3_SEARCH_BYTES)
    start = data.find(b"\xff", offset, end)
    while start != -1:
        frame = _mp3_frame(data, start)
        if frame is None:
            start = data.find(b"\xff", start + 1, end)
            continue
        following = _mp3_frame(data, start + frame.length)
        if following is not None and (following.sample_rate, following.channels) == (
            frame.sample_rate,
            frame.channels,
        ):
            return frame.sample_rate, frame.channels
        start = data.find(b"\xff", start + 1, end)
    return None


def _same_mp3_layout(parts: Sequence[bytes]) -> bool:
    layouts = {_mp3_layout(part) for part in parts}
    return len(layouts) == 1 and None not in layouts
