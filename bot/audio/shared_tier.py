"""The audio cache's second tier, shared by every process through PostgreSQL (PRODUCT.md, Several processes).

AudioCache asks it when its own folder misses, and hands it every clip it stores, so a clip paid for by one
process is a hit on all of them. Only the read is on an answer's path (one query). Everything else happens after
the answer: writes run in the background, a few at a time, each evicting the least recently used clips past
AUDIO_CACHE_DB_MAX_MB in its own transaction; and "last used" marks, from hits in either tier, are gathered in
memory and written in one statement a minute (or before this process's next write), since a row update per hit
would turn every repeat into a write and leave a dead row version behind. A row is never trusted blindly: its
audio's length and sha256 are checked on every read, and a row that fails is dropped and counts as a miss, so
the audio is fetched again and stored afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from collections.abc import Callable, Collection
from typing import Final

from bot.audio.cache import CachedAudio
from bot.storage import SharedAudioStore, Storage, StoredClip

__all__ = ["SharedTier", "shared_tier"]

log = logging.getLogger(__name__)

# How often the gathered "last used" marks are written, and expired clips removed.
MARK_SECONDS: Final = 60.0
# Clips written at once: a burst of new audio must not take every connection the answers need.
WRITE_CONCURRENCY: Final = 2
# Hashing more than this (a long joined file) would hold the event loop for over about a quarter of a millisecond.
_HASH_IN_THREAD_BYTES: Final = 256 * 1024
# What AudioCache accepts as an output type (a file extension).
_OUTPUT_TYPE_PATTERN: Final = re.compile(r"[a-z0-9]{1,16}")


class SharedTier:
    """The audio cache's tier in PostgreSQL: read on a local miss, written after the answer, capped at max_bytes."""

    def __init__(
        self, store: SharedAudioStore, max_bytes: int, *, on_size: Callable[[int], None] | None = None
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._store = store
        self.max_bytes = max_bytes
        # Told the tier's size in bytes whenever this process learns it (the metric).
        self._on_size = on_size
        self._used: set[str] = set()
        self._writes: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def get(self, key: str) -> CachedAudio | None:
        """The clip stored under key, checked against its sha256, or None (a miss, or a damaged row, dropped)."""
        try:
            stored = await self._store.fetch(key)
        except Exception as error:
            # A cache never fails the request it serves: the audio is fetched from Unmixr instead.
            log.warning("Could not read the shared audio cache: %s", error)
            return None
        if stored is None:
            return None
        if not await _intact(stored):
            log.warning("Dropping a damaged clip from the shared audio cache: %s", key)
            # Awaited (rare): the audio fetched again next must find the key free to be stored afresh.
            try:
                await self._store.drop(key)
            except Exception as error:
                log.warning("Could not drop the damaged clip %s: %s", key, error)
            return None
        self._used.add(key)
        return CachedAudio(
            data=stored.data, duration=stored.duration, output_type=stored.output_type, from_message=stored.expiring
        )

    async def present(self, keys: Collection[str]) -> set[str]:
        """Which of keys the tier holds, in one query (not checked: a damaged one is found when read)."""
        try:
            return await self._store.present(keys)
        except Exception as error:
            log.warning("Could not read the shared audio cache: %s", error)
            return set()

    def used(self, key: str) -> None:
        """Remember that the clip under key was used (a local hit), for the next batch of marks."""
        self._used.add(key)

    def store_soon(self, key: str, audio: CachedAudio, *, lifetime: float | None = None) -> None:
        """Store a clip in the background; `lifetime` (seconds) makes it expire whatever its use."""
        if len(audio.data) > self.max_bytes:
            log.debug("Not sharing %s: %d bytes exceed the shared tier's %d", key, len(audio.data), self.max_bytes)
            return
        task = asyncio.get_running_loop().create_task(self._store_clip(key, audio, lifetime), name="shared-audio-write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _store_clip(self, key: str, audio: CachedAudio, lifetime: float | None) -> None:
        async with self._slots:
            try:
                # Marks first, so this write's eviction sees what this process used lately.
                await self._write_marks()
                total = await self._store.store(
                    key,
                    audio.data,
                    sha256=await _sha256(audio.data),
                    duration=audio.duration,
                    output_type=audio.output_type,
                    max_bytes=self.max_bytes,
                    lifetime=lifetime,
                )
            except Exception as error:
                log.warning("Could not write to the shared audio cache: %s", error)
                return
        if total is not None:
            self._report(total)

    async def _write_marks(self) -> None:
        used, self._used = self._used, set()
        if used:
            await self._store.touch(used)

    async def flush(self) -> None:
        """Wait for every write, then write the marks gathered (for shutdown and tests)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
        try:
            await self._write_marks()
        except Exception as error:
            log.warning("Could not mark shared audio as used: %s", error)

    async def run(self) -> None:
        """Recount the tier's size once, then every MARK_SECONDS write the marks and remove expired clips."""
        try:
            self._report(await self._store.recount())
        except Exception as error:
            log.warning("Could not count the shared audio cache: %s", error)
        while True:
            await asyncio.sleep(MARK_SECONDS)
            try:
                await self._write_marks()
                await self._store.remove_expired()
                self._report(await self._store.total_bytes())
            except Exception as error:
                log.warning("Could not keep the shared audio cache: %s", error)

    def _report(self, total: int) -> None:
        if self._on_size is not None:
            self._on_size(total)


def shared_tier(storage: Storage, max_bytes: int, *, on_size: Callable[[int], None] | None = None) -> SharedTier | None:
    """The shared tier over storage's PostgreSQL; None with SQLite or a size of 0 (no shared tier)."""
    store = storage.shared_audio()
    if store is None or max_bytes == 0:
        return None
    return SharedTier(store, max_bytes, on_size=on_size)


async def _sha256(data: bytes) -> bytes:
    if len(data) > _HASH_IN_THREAD_BYTES:
        return await asyncio.to_thread(lambda: hashlib.sha256(data).digest())
    return hashlib.sha256(data).digest()


async def _intact(stored: StoredClip) -> bool:
    """Whether a row is what was written: its length and sha256, and a duration and type AudioCache accepts."""
    if len(stored.data) != stored.size or len(stored.sha256) != hashlib.sha256().digest_size:
        return False
    if stored.duration is not None and not (math.isfinite(stored.duration) and stored.duration >= 0):
        return False
    if not _OUTPUT_TYPE_PATTERN.fullmatch(stored.output_type):
        return False
    return await _sha256(stored.data) == stored.sha256
