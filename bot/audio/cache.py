"""A content-addressed on-disk cache of synthesised audio, evicting the least recently used entries.

With PostgreSQL it has a second tier shared by every process (bot/audio/shared_tier.py): asked when the folder
misses, and given every clip stored here.

Audio of members' messages (readouts and Read aloud) is kept apart, in the folder `messages/`, for at most 24 hours
(PRODUCT.md, Privacy): a read refuses an older entry, and `remove_expired` (run by the bot every 10 minutes, and
at start) deletes them. Everything else (/say, the operator's `say`) stays until the size cap evicts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from bot.files import TEMPORARY_SUFFIX, write_atomically

__all__ = ["AudioCache", "CachedAudio", "SecondTier", "cache_key"]

log = logging.getLogger(__name__)

# Bump when the request fields or their meaning change, so old entries stop matching.
_KEY_VERSION: Final = 1
_MAGIC: Final = b"UNMIXR-AUDIO-CACHE 1\n"
_SUFFIX: Final = ".audio"
# A temporary file this old was left by a process that died while writing it.
_STALE_TEMPORARY_SECONDS: Final = 3600
# How long put_soon() waits before writing (the clip is served from memory meanwhile).
WRITE_DELAY_SECONDS: Final = 0.05
_KEY_PATTERN: Final = re.compile(r"[0-9a-f]{64}")
# Members' messages: their audio lives in this subfolder and is removed this soon after it was written.
MESSAGES_FOLDER: Final = "messages"
REMOVE_EXPIRED_SECONDS: Final = 600.0
# At most 24 hours on disk, counting the sweep that removes it: expired after 23 h 50 min, swept every 10 min.
MESSAGE_AUDIO_SECONDS: Final = 24 * 3600 - REMOVE_EXPIRED_SECONDS
_OUTPUT_TYPE_PATTERN: Final = re.compile(r"[a-z0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class CachedAudio:
    """One cached clip: the audio bytes, their length in seconds if known, and their type (mp3, wav)."""

    data: bytes
    duration: float | None
    output_type: str
    # Audio of a member's message (a readout, Read aloud): kept at most a day, in every tier.
    from_message: bool = False


class SecondTier(Protocol):
    """A tier behind the local folder (SharedTier, in PostgreSQL): read on a local miss, given every clip stored."""

    async def get(self, key: str) -> CachedAudio | None:
        """The clip under key, or None."""
        ...

    async def present(self, keys: Collection[str]) -> set[str]:
        """Which of keys the tier holds."""
        ...

    def used(self, key: str) -> None:
        """Note a hit on the clip under key in the local folder (the tier's own hits it notes itself)."""
        ...

    def store_soon(self, key: str, audio: CachedAudio, *, lifetime: float | None = None) -> None:
        """Store a clip in the background; `lifetime` (seconds) makes it expire whatever its use."""
        ...

    async def flush(self) -> None:
        """Wait until everything given to the tier is written."""
        ...


def cache_key(**parts: Any) -> str:
    """Return the sha256 of a canonical JSON of a synthesis request (voice id, text, language, ...)."""
    # Keyword order does not count, and None counts as absent so an unset option and an omitted one
    # match; unordered collections (pronunciation entries) should come as a mapping, whose keys are sorted.
    request = {name: value for name, value in parts.items() if value is not None}
    canonical = json.dumps(
        {"version": _KEY_VERSION, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AudioCache:
    """A folder of cached clips, one file each, kept under max_bytes by evicting the least recently used."""

    # Each file holds a one-line JSON header (duration, type, length and sha256 of the audio), then the
    # audio: a file that does not match its header is a miss and is removed. Writes go to a temporary
    # file renamed into place, so no reader sees half an entry. The folder is scanned once, on first use,
    # and a running byte count is kept after that. Failing to store is logged, not raised: a cache must
    # never break the request it serves.

    cache_key = staticmethod(cache_key)

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        shared: SecondTier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.directory = directory
        self.max_bytes = max_bytes
        self.shared = shared
        self._clock = clock
        # Keys whose file is in messages/ (members' messages, kept at most a day).
        self._messages: set[str] = set()
        # Each entry's file size, least recently used first.
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._total_bytes = 0
        self._loaded = False
        self._load_lock = asyncio.Lock()
        # Clips handed to put_soon() whose file is still being written: already served from memory.
        self._pending: dict[str, CachedAudio] = {}
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def total_bytes(self) -> int:
        """Return the bytes the cache's files take, as counted since the folder was scanned."""
        return self._total_bytes

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, key: object) -> bool:
        return key in self._sizes or key in self._pending

    async def load(self) -> None:
        """Create the folder if needed and scan it once; later calls do nothing."""
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            for key, size, message in await asyncio.to_thread(self._scan):
                self._remember(key, size, message=message)
            self._loaded = True
        await self._evict()

    async def get(self, key: str) -> CachedAudio | None:
        """Return the cached clip for key and mark it recently used, or None on a miss (in every tier)."""
        found = await self._get_local(key)
        if self.shared is None:
            return found
        if found is not None:
            self.shared.used(key)
            return found
        found = await self.shared.get(key)
        if found is not None:
            # Kept in the folder too, so the next repeat here needs no query; it is in the shared tier already.
            self._put_soon(key, found, share=False)
        return found

    async def get_local(self, key: str) -> CachedAudio | None:
        """The clip under key if this machine has it (in memory or the folder), never asking the shared tier.

        For what must be answered before an interaction is acknowledged: memory and local disk only.
        """
        found = await self._get_local(key)
        if found is not None and self.shared is not None:
            self.shared.used(key)
        return found

    async def locate(self, keys: Collection[str]) -> set[str]:
        """Which of keys are cached in any tier: the folder (and memory) first, then one query for the others."""
        found = {key for key in keys if key in self}
        missing = [key for key in keys if key not in found]
        if missing and self.shared is not None:
            found |= await self.shared.present(missing)
        return found

    async def _get_local(self, key: str) -> CachedAudio | None:
        path = self._path(key)
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        await self.load()
        # A miss is answered without a thread hop; the stats still find an entry another process (the CLI) wrote.
        message = key in self._messages
        if key not in self._sizes:
            if path.exists():
                message = False
            elif self._message_path(key).exists():
                message = True
            else:
                return None
        if message:
            path = self._message_path(key)
        try:
            found = await asyncio.to_thread(_read_entry, path, touch=not message, now=self._clock())
        except OSError as error:
            log.warning("Could not read audio cache entry %s: %s", path.name, error)
            found = None
        if found is None:
            self._forget(key)
            return None
        audio, size = found
        if size is not None:
            self._remember(key, size, message=message)
        return audio

    async def put(
        self, key: str, data: bytes, *, duration: float | None, output_type: str, from_message: bool = False
    ) -> None:
        """Store a clip under key, then evict least recently used clips until the cache fits max_bytes.

        `from_message`: the audio speaks a member's message (a readout, Read aloud), kept at most a day. The
        shared tier, if any, gets it too, in the background (a message's audio expiring there as here).
        """
        await self._put_local(key, data, duration=duration, output_type=output_type, from_message=from_message)
        if self.shared is not None:
            self.shared.store_soon(
                key,
                CachedAudio(data=data, duration=duration, output_type=output_type),
                lifetime=MESSAGE_AUDIO_SECONDS if from_message else None,
            )

    async def _put_local(
        self, key: str, data: bytes, *, duration: float | None, output_type: str, from_message: bool = False
    ) -> None:
        path = self._message_path(key) if from_message else self._path(key)
        if not _OUTPUT_TYPE_PATTERN.fullmatch(output_type):
            raise ValueError(f"invalid output type {output_type!r}")
        await self.load()
        if len(data) > self.max_bytes:
            log.debug("Not caching %s: %d bytes exceed the cache's %d", key, len(data), self.max_bytes)
            return
        expires_at = self._clock() + MESSAGE_AUDIO_SECONDS if from_message else None
        try:
            size = await asyncio.to_thread(
                _write_entry, path, data, duration=duration, output_type=output_type, expires_at=expires_at
            )
        except OSError as error:
            log.warning("Could not write audio cache entry %s: %s", path.name, error)
            return
        self._remember(key, size, message=from_message)
        await self._evict()

    def put_soon(
        self, key: str, data: bytes, *, duration: float | None, output_type: str, from_message: bool = False
    ) -> None:
        """Store a clip without waiting for the disk: it is served from memory until its file is written."""
        audio = CachedAudio(data=data, duration=duration, output_type=output_type, from_message=from_message)
        self._put_soon(key, audio, share=True)

    def _put_soon(self, key: str, audio: CachedAudio, *, share: bool) -> None:
        self._path(key)  # refuse a bad key now, not in the background
        self._pending[key] = audio
        task = asyncio.get_running_loop().create_task(
            self._write_pending(key, share, audio.from_message), name="audio-cache-write"
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_pending(self, key: str, share: bool, from_message: bool) -> None:
        # Let the answer that brought this clip go out first: the write competes with it for the interpreter.
        await asyncio.sleep(WRITE_DELAY_SECONDS)
        audio = self._pending.get(key)
        if audio is None:
            return  # the same clip, given twice at once (two requests that missed together), is written already
        try:
            if share:
                await self.put(
                    key, audio.data, duration=audio.duration, output_type=audio.output_type, from_message=from_message
                )
            else:
                await self._put_local(
                    key, audio.data, duration=audio.duration, output_type=audio.output_type, from_message=from_message
                )
        finally:
            self._pending.pop(key, None)

    async def flush(self) -> None:
        """Wait until every clip given to put_soon() is on disk, and in the shared tier (for shutdown and tests)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
        if self.shared is not None:
            await self.shared.flush()

    def _path(self, key: str) -> Path:
        # Keys become file names, so only a real digest may pass.
        if not _KEY_PATTERN.fullmatch(key):
            raise ValueError("an audio cache key is 64 lowercase hex digits, as cache_key() returns")
        return self.directory / f"{key}{_SUFFIX}"

    def _message_path(self, key: str) -> Path:
        return self._path(key).parent / MESSAGES_FOLDER / f"{key}{_SUFFIX}"

    def _location(self, key: str) -> Path:
        return self._message_path(key) if key in self._messages else self._path(key)

    def _remember(self, key: str, size: int, *, message: bool = False) -> None:
        """Count key's file as the most recently used."""
        self._forget(key)
        self._sizes[key] = size
        self._total_bytes += size
        if message:
            self._messages.add(key)

    def _forget(self, key: str) -> None:
        self._total_bytes -= self._sizes.pop(key, 0)
        self._messages.discard(key)

    async def _evict(self) -> None:
        victims: list[Path] = []
        while self._total_bytes > self.max_bytes and self._sizes:
            key, size = self._sizes.popitem(last=False)
            self._total_bytes -= size
            victims.append(self._location(key))
            self._messages.discard(key)
        if victims:
            await asyncio.to_thread(_remove_files, victims)

    async def remove_expired(self) -> int:
        """Delete the audio of members' messages written more than MESSAGE_AUDIO_SECONDS ago; return how many.

        Looks at the folder, not only at what this process wrote: processes sharing AUDIO_CACHE_DIR all sweep it.
        """
        removed = await asyncio.to_thread(_remove_old_files, self.directory / MESSAGES_FOLDER, self._expired_before())
        for key in removed:
            self._forget(key)
        if removed:
            log.info("removed the audio of %d members' messages older than a day", len(removed))
        return len(removed)

    def _expired_before(self) -> float:
        return self._clock() - MESSAGE_AUDIO_SECONDS

    def _scan(self) -> list[tuple[str, int, bool]]:
        """Create the folders, list entries oldest first, and remove crash leftovers and expired message audio."""
        self.directory.mkdir(parents=True, exist_ok=True)
        messages = self.directory / MESSAGES_FOLDER
        messages.mkdir(exist_ok=True)
        _remove_old_files(messages, self._expired_before())
        found: list[tuple[float, str, int, bool]] = []
        stale_before = time.time() - _STALE_TEMPORARY_SECONDS
        for folder, message in ((self.directory, False), (messages, True)):
            with os.scandir(folder) as listing:
                for item in listing:
                    try:
                        status = item.stat()
                    except FileNotFoundError:
                        continue
                    if item.name.endswith(TEMPORARY_SUFFIX) and status.st_mtime < stale_before:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(item.path)
                        continue
                    key = item.name.removesuffix(_SUFFIX)
                    if item.name.endswith(_SUFFIX) and _KEY_PATTERN.fullmatch(key) and item.is_file():
                        found.append((status.st_mtime, key, status.st_size, message))
        return [(key, size, message) for _, key, size, message in sorted(found)]


def _encode_entry(data: bytes, *, duration: float | None, output_type: str, expires_at: float | None = None) -> bytes:
    header: dict[str, Any] = {
        "duration": duration,
        "output_type": output_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if expires_at is not None:
        header["expires_at"] = expires_at
    return _MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + data


def _decode_entry(contents: bytes, now: float | None = None) -> CachedAudio | None:
    """Return the clip in a cache file's contents, or None if it is damaged, incomplete or expired by `now`."""
    if not contents.startswith(_MAGIC):
        return None
    header_line, newline, data = contents[len(_MAGIC) :].partition(b"\n")
    if not newline:
        return None
    try:
        header = json.loads(header_line)
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    duration = header.get("duration")
    output_type = header.get("output_type")
    if not (duration is None or (isinstance(duration, int | float) and not isinstance(duration, bool))):
        return None
    if not isinstance(output_type, str) or header.get("size") != len(data):
        return None
    if header.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    expires_at = header.get("expires_at")
    if now is not None and isinstance(expires_at, int | float) and expires_at <= now:
        return None
    return CachedAudio(data=data, duration=None if duration is None else float(duration), output_type=output_type)


def _read_entry(path: Path, *, touch: bool = True, now: float | None = None) -> tuple[CachedAudio, int | None] | None:
    """Read and check one entry, touching it as recently used unless told not to; a damaged or expired one is removed.

    Message audio is never touched: its file's time is when it was written, which is what its day counts from.
    """
    try:
        contents = path.read_bytes()
    except FileNotFoundError:
        return None
    audio = _decode_entry(contents, now)
    if audio is None:
        if _decode_entry(contents) is not None:
            log.debug("Removing an expired audio cache entry: %s", path.name)
        else:
            log.warning("Removing a damaged audio cache entry: %s", path.name)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    if not touch:
        return audio, len(contents)
    try:
        os.utime(path)
    except FileNotFoundError:
        # Evicted while being read: still a hit, but no longer on disk to count.
        return audio, None
    return audio, len(contents)


def _write_entry(
    path: Path, data: bytes, *, duration: float | None, output_type: str, expires_at: float | None = None
) -> int:
    """Write an entry atomically (a temporary file in the same folder, renamed over the name); return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = _encode_entry(data, duration=duration, output_type=output_type, expires_at=expires_at)
    return write_atomically(path, encoded)


def _remove_old_files(folder: Path, written_before: float) -> list[str]:
    """Delete the entries in `folder` written before `written_before` (Unix time); return their keys."""
    removed: list[str] = []
    try:
        listing = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for item in listing:
        key = item.name.removesuffix(_SUFFIX)
        if not (item.name.endswith(_SUFFIX) and _KEY_PATTERN.fullmatch(key)):
            continue
        try:
            if item.stat().st_mtime < written_before:
                os.unlink(item.path)
                removed.append(key)
        except FileNotFoundError:
            continue
    return removed


def _remove_files(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("Could not remove audio cache entry %s: %s", path.name, error)
