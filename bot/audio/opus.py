"""Voice audio as Opus: each chunk encoded once by ffmpeg, far faster than real time, then played from memory.

discord.py's player thread then only frames and encrypts packets that are ready: no ffmpeg process lives as
long as the stream, and no Opus encoding happens in the bot's interpreter. Playback starts with the encoder's
first audio page while the rest is still being encoded. A finished encoding is kept in the audio cache under
the digest of the audio it came from, so a replay starts no encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import threading
import weakref
from collections.abc import Iterator
from typing import IO, Final, cast

from discord.oggparse import OggStream

from bot.audio.cache import AudioCache, cache_key
from bot.audio.ffmpeg import SUPPORTED_DEMUXERS

__all__ = ["ENCODER_ARGUMENTS", "MAX_ENCODERS", "OUTPUT_TYPE", "OpusEncoding", "encode", "encodings_started"]

log = logging.getLogger(__name__)

# Speech is mono: 64 kb/s mono Opus carries it fully and Discord's stereo decoders play it on both channels.
# No in-band FEC: it doubles the encoder's work (the SILK layer keeps running) for little on a server's link.
ENCODER_ARGUMENTS: Final = (
    "-map_metadata", "-1", "-vn",
    "-c:a", "libopus", "-ar", "48000", "-ac", "1", "-b:a", "64k", "-application", "audio", "-frame_duration", "20",
    "-f", "opus", "-page_duration", "200000", "-flush_packets", "1",
)  # fmt: skip
# The containers audio may come in (as for members' files); nothing in it may make ffmpeg open a file or a URL.
_INPUT_OPTIONS: Final = ("-format_whitelist", ",".join(SUPPORTED_DEMUXERS), "-protocol_whitelist", "pipe")
# Changing the arguments above changes what a cached encoding holds: bump this so old entries stop matching.
_ENCODING_VERSION: Final = 1
OUTPUT_TYPE: Final = "opus"
# Encoders running at once, first come first served: a few finish sooner one after another than many sharing
# the CPU, and each runs about a hundred times faster than real time.
MAX_ENCODERS: Final = 4
# Encoding is batch work: playback threads and interactions come first when the CPU is short.
ENCODER_NICENESS: Final = 10
# Far longer than any chunk takes; a stuck encoder is killed after it.
ENCODE_SECONDS: Final = 120.0
# How long the player thread waits for the encoder to catch up before ending the chunk.
READ_WAIT_SECONDS: Final = 30.0
_READ_SIZE: Final = 65_536
_OGG_PAGE_HEADER: Final = 27
# RFC 7845: the first page holds the identification header, the next the comment header; audio follows.
_HEADER_PACKETS: Final = 2
_FIRST_AUDIO_PAGE: Final = 2

_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
# Encoders outlive the call that started them (they finish for the cache even if the chunk is skipped).
_running: set[asyncio.Task[None]] = set()
_started = 0


def encodings_started() -> int:
    """How many encoders this process has started (a replay from the cache starts none)."""
    return _started


class OpusEncoding:
    """Ogg Opus bytes, complete or still arriving from an encoder, read as Opus packets by player threads."""

    def __init__(self, data: bytes = b"", *, complete: bool = False) -> None:
        self._data = bytearray(data)
        self._complete = complete
        self.error: str | None = None
        # The event loop appends, player threads read: they meet on this condition.
        self._changed = threading.Condition()
        self._audio_ready: asyncio.Future[None] | None = None
        self._pages = 0
        self._scanned = 0
        if not complete:
            self._audio_ready = asyncio.get_running_loop().create_future()

    @property
    def has_audio(self) -> bool:
        """Whether any audio has arrived (an encoder that could not read its input produces none)."""
        return self._audio_ready is None or self._pages > _FIRST_AUDIO_PAGE

    @property
    def complete(self) -> bool:
        """Whether the encoder has finished, successfully or not."""
        return self._complete

    def data(self) -> bytes:
        """The Ogg bytes received so far."""
        with self._changed:
            return bytes(self._data)

    async def wait_audio(self) -> None:
        """Wait until the first page of audio is here (playback can start) or the encoder has finished."""
        if self._audio_ready is not None:
            await asyncio.shield(self._audio_ready)

    def packets(self) -> Iterator[bytes]:
        """The Opus audio packets in order, without the headers; waits (in the player thread) for the encoder."""
        # discord.py's Ogg reader only ever calls read(size) on its stream.
        stream = OggStream(cast("IO[bytes]", _Reader(self)))
        return itertools.islice(stream.iter_packets(), _HEADER_PACKETS, None)

    def _append(self, data: bytes) -> None:
        with self._changed:
            self._data += data
            self._changed.notify_all()
        if self._audio_ready is not None and not self._audio_ready.done() and self._count_pages() > _FIRST_AUDIO_PAGE:
            self._audio_ready.set_result(None)

    def _finish(self, error: str | None) -> None:
        with self._changed:
            self._complete = True
            self.error = error
            self._changed.notify_all()
        if self._audio_ready is not None and not self._audio_ready.done():
            self._audio_ready.set_result(None)

    def _count_pages(self) -> int:
        """Count the whole Ogg pages received, up to the first audio page, reading only their headers."""
        data = self._data
        while self._pages <= _FIRST_AUDIO_PAGE and len(data) >= self._scanned + _OGG_PAGE_HEADER:
            segments = data[self._scanned + _OGG_PAGE_HEADER - 1]
            body_at = self._scanned + _OGG_PAGE_HEADER + segments
            if len(data) < body_at:
                break
            end = body_at + sum(data[body_at - segments : body_at])
            if len(data) < end:
                break
            self._scanned = end
            self._pages += 1
        return self._pages

    def _read(self, position: int, size: int) -> bytes:
        """Up to `size` bytes from `position`, waiting for them while the encoder runs."""
        end = position + size
        with self._changed:
            if not self._changed.wait_for(lambda: self._complete or len(self._data) >= end, READ_WAIT_SECONDS):
                log.warning("the Opus encoder fell %.0f s behind playback; ending the chunk", READ_WAIT_SECONDS)
                return b""
            return bytes(self._data[position:end])


class _Reader:
    """A file-like view of an encoding for discord.py's Ogg reader, with its own position."""

    def __init__(self, encoding: OpusEncoding) -> None:
        self._encoding = encoding
        self._position = 0

    def read(self, size: int) -> bytes:
        data = self._encoding._read(self._position, size)
        self._position += len(data)
        return data


async def encode(audio: bytes, cache: AudioCache | None = None, *, from_message: bool = False) -> OpusEncoding:
    """Return `audio` (any format ffmpeg reads) as Opus once its first page is ready, from `cache` if it is there.

    The encoder runs on after this returns; its finished encoding is stored in `cache` (for at most a day when it
    speaks a member's message).
    """
    key = cache_key(opus_of=await asyncio.to_thread(_digest, audio), version=_ENCODING_VERSION)
    if cache is not None:
        cached = await cache.get(key)
        if cached is not None and cached.output_type == OUTPUT_TYPE:
            return OpusEncoding(cached.data, complete=True)
    encoding = OpusEncoding()
    task = asyncio.get_running_loop().create_task(
        _run_encoder(audio, encoding, key, cache, from_message), name="opus-encoder"
    )
    _running.add(task)
    task.add_done_callback(_running.discard)
    await encoding.wait_audio()
    return encoding


def _digest(audio: bytes) -> str:
    return hashlib.sha256(audio).hexdigest()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = asyncio.Semaphore(MAX_ENCODERS)
        _slots_by_loop[loop] = slots
    return slots


async def _run_encoder(
    audio: bytes, encoding: OpusEncoding, key: str, cache: AudioCache | None, from_message: bool
) -> None:
    error: str | None = "stopped before it finished"
    try:
        async with _slots():
            error = await _encode_into(audio, encoding)
    except Exception:
        log.exception("the Opus encoder failed")
        error = "the encoder failed"
    finally:
        encoding._finish(error)
    if error is None and cache is not None:
        cache.put_soon(key, encoding.data(), duration=None, output_type=OUTPUT_TYPE, from_message=from_message)


async def _encode_into(audio: bytes, encoding: OpusEncoding) -> str | None:
    """Run ffmpeg from `audio` to Ogg Opus, appending its output as it comes; returns what went wrong, if anything."""
    global _started
    program = shutil.which("ffmpeg")
    if program is None:
        log.warning("ffmpeg is not installed: nothing can be played in voice")
        return "ffmpeg is not installed"
    process = await asyncio.create_subprocess_exec(
        program,
        "-hide_banner",
        "-loglevel",
        "error",
        *_INPUT_OPTIONS,
        "-i",
        "pipe:0",
        *ENCODER_ARGUMENTS,
        "pipe:1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _started += 1
    with contextlib.suppress(OSError):  # the process may be gone already
        os.setpriority(os.PRIO_PROCESS, process.pid, ENCODER_NICENESS)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    feeding = asyncio.ensure_future(_feed(process.stdin, audio))
    errors = asyncio.ensure_future(process.stderr.read())
    try:
        async with asyncio.timeout(ENCODE_SECONDS):
            while data := await process.stdout.read(_READ_SIZE):
                encoding._append(data)
            await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    finally:
        feeding.cancel()
        _, stderr = await asyncio.gather(feeding, errors, return_exceptions=True)
    if process.returncode == 0:
        return None
    message = stderr.decode(errors="replace").strip() if isinstance(stderr, bytes) else ""
    reason = message.splitlines()[-1] if message else f"ffmpeg exited with status {process.returncode}"
    log.warning("could not encode a chunk for voice: %s", reason)
    return reason


async def _feed(stdin: asyncio.StreamWriter, audio: bytes) -> None:
    # ffmpeg stops reading input it cannot decode: its exit status says so, not the broken pipe.
    with contextlib.suppress(ConnectionError):
        stdin.write(audio)
        await stdin.drain()
        stdin.close()
        await stdin.wait_closed()
