"""Checking a recording uploaded for a voice clone, before anything is spent: the first failed check answers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Hashable
from typing import BinaryIO, Final

from bot.audio.ffmpeg import (
    SUPPORTED_FORMATS,
    AudioError,
    FFmpegMissingError,
    Lane,
    Source,
    TooLargeError,
    private_copy,
)
from bot.audio.processing import duration, extract_audio, probe
from bot.errors import UserFacingError
from bot.i18n import Fixed, _

__all__ = [
    "CODEC_PADDING_SECONDS",
    "MAX_BYTES",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "CheckedRecording",
    "RecordingRejectedError",
    "check_recording",
    "too_large",
]

MAX_BYTES: Final = 120_000_000
MIN_SECONDS: Final = 30.0
MAX_SECONDS: Final = 80.0
# Encoders pad a few frames: an 80 s recording saved as mp3 decodes to about 80.05 s. It is still 80 s.
CODEC_PADDING_SECONDS: Final = 0.1
# Decoding stops one second past the longest recording accepted: enough to tell that a longer one is too long.
DECODE_STOP_SECONDS: Final = MAX_SECONDS + 1
# Decoding less than this share of the length a file's header claims means the file was cut short.
TRUNCATION_RATIO: Final = 0.9

UNDECODABLE: Final = _(
    "The file could not be decoded: it looks damaged or cut short; export the recording again and upload it."
)
UNSUPPORTED: Final = _(
    "The file is not audio in a supported format; upload a recording as {formats} (a video with sound is fine).",
    formats=SUPPORTED_FORMATS,
)

# Starts of the supported containers: such a file that ffprobe cannot read is damaged, not "not audio".
_SIGNATURES: Final = (b"ID3", b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3")
_CONTENT_TYPES: Final = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "mov": "audio/mp4",
    "matroska": "audio/webm",
}


# One recording at a time per server: receiving and checking a large file keeps a core and the disk busy, so a
# server's admins take turns (at most one 120 MB copy on disk each), while other servers' /clone go on.
@dataclasses.dataclass(slots=True)
class _Turn:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0  # holding or waiting


# Per event loop, as asyncio primitives must not be shared across loops.
_turns_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Turn]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _turn(server: Hashable) -> AsyncIterator[None]:
    turns = _turns_by_loop.setdefault(asyncio.get_running_loop(), {})
    turn = turns.setdefault(server, _Turn())
    turn.users += 1
    try:
        async with turn.lock:
            yield
    finally:
        turn.users -= 1
        if turn.users == 0:
            del turns[server]  # a server that cloned once keeps nothing here


class RecordingRejectedError(UserFacingError):
    """The recording failed a check made before anything is uploaded; the message says which, with its value."""


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedRecording:
    """A recording that passed every check: what to upload, under which name and type, and its decoded length.

    `audio` is a file open at its start, streamed to the upload rather than held in memory: the private copy
    itself, whose name is already removed (so nothing is left on disk however the command ends), or for a
    video the extracted audio (80 s of mp3, about a megabyte). `close` gives its space back.
    """

    audio: BinaryIO
    filename: str
    content_type: str
    seconds: float

    async def close(self) -> None:
        """Close the file (in a thread: freeing a large unlinked file takes the file system a moment)."""
        await asyncio.to_thread(self.audio.close)


def too_large(size: int, *, at_least: bool = False) -> RecordingRejectedError:
    """The answer for a recording over the upload limit, with its measured size (or what arrived of it)."""
    if at_least:
        return RecordingRejectedError(
            _(
                "The file is more than {megabytes} MB ({size} bytes arrived) but a clone recording can be at most "
                "120 MB ({limit} bytes); trim or compress it.",
                megabytes=round(MAX_BYTES / 1_000_000),
                size=size,
                limit=MAX_BYTES,
            )
        )
    return RecordingRejectedError(
        _(
            "The file is {megabytes} MB ({size} bytes) but a clone recording can be at most 120 MB ({limit} bytes); "
            "trim or compress it.",
            megabytes=Fixed(size / 1_000_000),
            size=size,
            limit=MAX_BYTES,
        )
    )


def _too_long(seconds: float) -> RecordingRejectedError:
    return RecordingRejectedError(
        _("The recording is {seconds} s long but a clone can use at most 80 s; trim it.", seconds=Fixed(seconds))
    )


async def check_recording(chunks: AsyncIterable[bytes], filename: str, *, server: Hashable = None) -> CheckedRecording:
    """Receive a recording and check it (size, format, audio track, length, decoding); raise the first failure.

    The caller closes the recording it gets (`CheckedRecording.close`) once it is uploaded.
    """
    # The file goes straight to a private copy on disk that every check reads, and every ffmpeg call here runs in
    # the checks lane, shared fairly between servers, so replies never wait behind members' uploads, nor one
    # server's checks behind all of another's.
    try:
        async with _turn(server), private_copy(chunks, max_bytes=MAX_BYTES) as source:
            return await _check_media(source, filename, server)
    except TooLargeError as error:
        raise too_large(error.received, at_least=True) from None
    except FFmpegMissingError:
        raise
    except AudioError:
        # A deadline passed: whatever the file holds, it does not decode like a recording should.
        raise RecordingRejectedError(UNDECODABLE) from None


async def _check_media(source: Source, filename: str, server: Hashable) -> CheckedRecording:
    info = await probe(source, lane=Lane.CHECKS, server=server)
    if info.format_name is None:
        # ffprobe could not open it: a supported container that does not open is damaged; the rest is not audio.
        if not info.unsupported and _looks_like_supported_media(await asyncio.to_thread(_head, source)):
            raise RecordingRejectedError(UNDECODABLE)
        raise RecordingRejectedError(UNSUPPORTED)
    if not info.has_audio:
        if info.has_video:
            raise RecordingRejectedError(
                _("The file is a video without sound; upload a recording of the speaker (30 to 80 seconds).")
            )
        raise RecordingRejectedError(
            _("The file has no audio track; upload a recording of the speaker (30 to 80 seconds).")
        )
    declared = info.duration
    if declared is not None and declared > MAX_SECONDS + CODEC_PADDING_SECONDS:
        # Refused on the file's word, before decoding anything: a long file would keep ffmpeg busy for nothing.
        raise _too_long(declared)
    try:
        # Decoded, not read from the header: a file cut short still claims its full length there.
        seconds = await duration(source, stop_after=DECODE_STOP_SECONDS, lane=Lane.CHECKS, server=server)
    except FFmpegMissingError:
        raise
    except AudioError:
        raise RecordingRejectedError(UNDECODABLE) from None
    if declared is not None and seconds < declared * TRUNCATION_RATIO and declared - seconds > 1:
        raise RecordingRejectedError(
            _(
                "The file could not be decoded completely: only {seconds} s of its {declared} s play, "
                "so it looks cut short; upload the whole recording.",
                seconds=Fixed(seconds),
                declared=Fixed(declared),
            )
        )
    if seconds < MIN_SECONDS - CODEC_PADDING_SECONDS:
        raise RecordingRejectedError(
            _(
                "The recording is {seconds} s long but a clone needs at least 30 s; upload a longer one.",
                seconds=Fixed(seconds),
            )
        )
    if seconds >= DECODE_STOP_SECONDS:
        raise RecordingRejectedError(
            _(
                "The recording is longer than {seconds} s but a clone can use at most 80 s; trim it.",
                seconds=round(DECODE_STOP_SECONDS),
            )
        )
    if seconds > MAX_SECONDS + CODEC_PADDING_SECONDS:
        raise _too_long(seconds)
    if not info.has_video:
        # Opened before the private copy's folder is removed: the open file outlives its name.
        audio = await asyncio.to_thread(source.path.open, "rb")
        return CheckedRecording(audio, filename, _content_type(info.format_name), seconds)
    stem = filename.rsplit(".", 1)[0] or "recording"
    extracted = await extract_audio(source, stop_after=DECODE_STOP_SECONDS, lane=Lane.CHECKS, server=server)
    return CheckedRecording(io.BytesIO(extracted), f"{stem}.mp3", "audio/mpeg", seconds)


def _head(source: Source) -> bytes:
    with source.path.open("rb") as file:
        return file.read(16)


def _looks_like_supported_media(data: bytes) -> bool:
    """Whether the data starts like a file of a supported container (mp3, wav, ogg, flac, aac, mp4/m4a, webm)."""
    if data.startswith(_SIGNATURES) or data[4:8] == b"ftyp":
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return True
    # An mp3 or AAC frame's sync word.
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


def _content_type(format_name: str | None) -> str:
    """The MIME type for ffprobe's format name, as the reference's examples send it (audio/mpeg for mp3)."""
    return _CONTENT_TYPES.get((format_name or "").split(",")[0], "application/octet-stream")
