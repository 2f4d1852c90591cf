"""Audio fitted to an upload limit, cached like synthesised audio: a repeat transcodes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Sequence

from bot.audio.cache import AudioCache, cache_key
from bot.audio.processing import transcode_to_fit

__all__ = ["FittedAudio"]

log = logging.getLogger(__name__)


class FittedAudio:
    """Transcodes audio that is over an upload limit once per (audio, limit), keeping the result in the audio cache.

    A repeat of a cached request is free and never refused, so without this every repeat of a long wav would
    run a transcode again in the shared replies lane. Requests for the same fit at the same time share one.
    """

    def __init__(self, cache: AudioCache) -> None:
        self._cache = cache
        self._fitting: dict[str, asyncio.Task[bytes]] = {}

    async def fit(
        self,
        source_keys: Sequence[str],
        audio: bytes,
        max_bytes: int,
        *,
        duration: float | None = None,
        server: Hashable = None,
        from_message: bool = False,
    ) -> bytes:
        """`audio` itself if it fits in `max_bytes`, else a mono mp3 that does (see `transcode_to_fit`).

        `source_keys` are the audio cache keys of what `audio` was made from (its chunks, in order): with the
        limit they name the fitted file in the cache, kept at most a day when `from_message` (a member's message
        read aloud). Raises AudioError when even the lowest quality is too large.
        """
        if len(audio) <= max_bytes:
            return audio
        key = cache_key(fitted=list(source_keys), max_bytes=max_bytes)
        cached = await self._cache.get(key)
        if cached is not None:
            return cached.data
        task = self._fitting.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fit(key, audio, max_bytes, duration, server, from_message))
            self._fitting[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a requester that gives up does not stop the transcode others wait for.
        return await asyncio.shield(task)

    async def _fit(
        self, key: str, audio: bytes, max_bytes: int, duration: float | None, server: Hashable, from_message: bool
    ) -> bytes:
        fitted = await transcode_to_fit(audio, max_bytes, duration=duration, server=server)
        self._cache.put_soon(key, fitted, duration=duration, output_type="mp3", from_message=from_message)
        return fitted

    def _finished(self, key: str, task: asyncio.Task[bytes]) -> None:
        self._fitting.pop(key, None)
        # Every waiter got the error already; this only marks it seen when all of them had given up.
        if not task.cancelled() and task.exception() is not None:
            log.debug("fitting audio to %s failed: %s", key, task.exception())
