"""The per-server player: one queue of clips, played in order, each starting as soon as it is ready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.audio import opus
from bot.audio.cache import AudioCache
from bot.audio.sources import OpusSource

log = logging.getLogger(__name__)

MAX_QUEUE = 50
# How long a chunk waits for a dropped voice connection to come back before the clip is abandoned.
RECONNECT_WAIT_SECONDS = 15.0

_END = object()


class QueueFullError(Exception):
    """The server's queue already holds the most clips it may."""


# Work started by clips that are no longer referenced (giving back a dropped clip's credits).
_background: set[asyncio.Task[Any]] = set()


def _spawn(coroutine: Coroutine[Any, Any, Any], name: str) -> None:
    task = asyncio.get_running_loop().create_task(coroutine, name=name)
    _background.add(task)
    task.add_done_callback(_background_done)


def _background_done(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("clip clean-up %s failed", task.get_name(), exc_info=task.exception())


@dataclass(eq=False)
class Clip:
    """One queued request: synthesised only when it is about to play, its audio arriving chunk by chunk.

    `chunks` is not iterated before start(), so a clip dropped from the queue first never reaches Unmixr;
    `release` then gives back the credits held for it. `on_failure` hears of a synthesis failure that nobody
    was waiting for (the requester was already told the clip is queued).
    """

    label: str
    requested_by: int | None
    chunks: AsyncIterator[bytes]
    release: Callable[[], Coroutine[Any, Any, None]] | None = None
    on_failure: Callable[[BaseException], Coroutine[Any, Any, None]] | None = None
    # It speaks a member's message (a readout, Read aloud): its encoding stays in the cache at most a day.
    from_message: bool = False
    created_at: float = field(default_factory=time.monotonic)
    failure: BaseException | None = None
    _parts: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    _producer: asyncio.Task[None] | None = None
    _first: asyncio.Future[None] | None = None
    _awaited: bool = False
    _cancelled: bool = False

    @property
    def started(self) -> bool:
        """Whether synthesis has begun (the clip is playing or next)."""
        return self._producer is not None

    def start(self) -> None:
        """Start synthesising and decoding now, ahead of the clip's turn."""
        if self._producer is not None or self._cancelled:
            return
        loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._producer = loop.create_task(self._produce(), name=f"clip:{self.label[:30]}")

    async def _produce(self) -> None:
        assert self._first is not None
        try:
            async for audio in self.chunks:
                await self._parts.put(audio)
                if not self._first.done():
                    self._first.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failure = error
            if not self._first.done() and self._awaited:
                self._first.set_exception(error)  # whoever queued it reports it
            else:
                log.warning("clip %r stopped: %s", self.label, error)
                if self.on_failure is not None:
                    _spawn(self.on_failure(error), name="clip-failure")
        finally:
            if not self._first.done():
                self._first.set_result(None)
            self._parts.put_nowait(_END)

    async def first_ready(self) -> None:
        """Wait for the first chunk of a started clip; raises what synthesis raised if it failed before any audio."""
        if self._first is None:
            return  # not started (it waits its turn), or dropped before it started
        self._awaited = True
        await asyncio.shield(self._first)

    async def parts(self) -> AsyncIterator[bytes]:
        """The audio of each chunk, in order, as each becomes ready."""
        self.start()
        while True:
            part = await self._parts.get()
            if part is _END:
                return
            yield part

    def cancel(self) -> None:
        """Stop synthesising what has not been synthesised yet; whoever waits on the clip is released.

        A clip that never started gives back its credits; one that started releases its unsent chunks itself.
        """
        if self._cancelled:
            return
        self._cancelled = True
        if self._producer is None:
            if self.release is not None:
                _spawn(self.release(), name="clip-release")
        elif not self._producer.done():
            self._producer.cancel()
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        # A producer cancelled before it ever ran cannot mark the end itself.
        self._parts.put_nowait(_END)


class GuildPlayer:
    """Plays one server's clips through its voice client, one after another."""

    def __init__(
        self,
        guild_id: int,
        voice_client: discord.VoiceClient,
        *,
        max_queue: int | None = None,
        cache: AudioCache | None = None,
    ) -> None:
        self.guild_id = guild_id
        self.voice_client = voice_client
        # Where each chunk's Opus encoding is kept, so a replay starts no encoder.
        self.cache = cache
        self.max_queue = MAX_QUEUE if max_queue is None else max_queue
        self.queue: deque[Clip] = deque()
        self.current: Clip | None = None
        self.last_active = time.monotonic()
        self._wakeup = asyncio.Event()
        self._skip_current = False
        # While nobody can hear the bot: nothing new is synthesised or started, and the clip playing pauses.
        self.held = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"player:{guild_id}")
        self._task.add_done_callback(self._task_done)
        self.on_clip_start: Callable[[Clip], None] | None = None

    @property
    def idle(self) -> bool:
        """Whether nothing is playing or waiting."""
        return self.current is None and not self.queue

    def __len__(self) -> int:
        return len(self.queue) + (1 if self.current is not None else 0)

    def enqueue(self, clip: Clip) -> int:
        """Add a clip; returns its position (1 = playing now). Raises QueueFullError at the bound."""
        if len(self) >= self.max_queue:
            raise QueueFullError()
        self.queue.append(clip)
        self._prefetch()
        self.last_active = time.monotonic()
        self._wakeup.set()
        return len(self)

    @property
    def has_room(self) -> bool:
        """Whether one more clip fits in the queue."""
        return len(self) < self.max_queue

    def _prefetch(self) -> None:
        # Only the playing clip and the next one are synthesised: a clip dropped before then costs nothing.
        if self.queue and not self.held:
            self.queue[0].start()

    def hold(self) -> None:
        """Nobody can hear: pause the clip playing, and start nothing new (no synthesis either) until resume()."""
        if self.held:
            return
        self.held = True
        if self.voice_client.is_playing():
            self.voice_client.pause()

    def resume(self) -> None:
        """Someone can hear again: go on where playback paused."""
        if not self.held:
            return
        self.held = False
        if self.voice_client.is_paused():
            self.voice_client.resume()
        self._prefetch()
        self.last_active = time.monotonic()
        self._wakeup.set()

    def skip(self) -> Clip | None:
        """Stop the clip that is playing; the next one starts."""
        clip = self.current
        if clip is None:
            return None
        self._skip_current = True
        clip.cancel()
        if self.voice_client.is_playing() or self.voice_client.is_paused():
            self.voice_client.stop()
        self._wakeup.set()
        return clip

    def clear(self) -> int:
        """Drop every waiting clip and stop the current one; returns how many were dropped."""
        dropped = len(self)
        for clip in self.queue:
            clip.cancel()
        self.queue.clear()
        self.skip()
        return dropped

    async def close(self) -> None:
        """Stop playing and end the player's task."""
        self.clear()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("player of server %s stopped", self.guild_id, exc_info=task.exception())

    async def _run(self) -> None:
        while True:
            while not self.queue or self.held:
                self._wakeup.clear()
                await self._wakeup.wait()
            clip = self.queue.popleft()
            self.current = clip
            clip.start()
            self._prefetch()
            self._skip_current = False
            if self.on_clip_start is not None:
                self.on_clip_start(clip)
            try:
                async for audio in clip.parts():
                    if self._skip_current:
                        break
                    await self._play(audio, from_message=clip.from_message)
                    if self._skip_current:
                        break
            except Exception:
                log.exception("playing a clip in server %s failed", self.guild_id)
            finally:
                clip.cancel()
                self.current = None
                self.last_active = time.monotonic()

    async def _play(self, audio: bytes, *, from_message: bool = False) -> None:
        """Play one chunk and wait until it has been sent (or stopped)."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def finish() -> None:
            if not finished.done():
                finished.set_result(None)

        def after(error: Exception | None) -> None:
            # Called from discord.py's player thread.
            if error is not None:
                log.warning("playback error in server %s: %s", self.guild_id, error)
            with contextlib.suppress(RuntimeError):  # the loop closed while the last frames went out
                loop.call_soon_threadsafe(finish)

        if not self.voice_client.is_connected():
            await self._wait_connected()
        # Encoded once, ahead of playback: the player thread then only sends packets that are ready.
        encoding = await opus.encode(audio, self.cache, from_message=from_message)
        while self.held and not self._skip_current:
            self._wakeup.clear()
            await self._wakeup.wait()
        if not encoding.has_audio or self._skip_current or not self.voice_client.is_connected():
            return  # nothing to play (the encoder logged why), or skipped or disconnected meanwhile
        self.voice_client.play(OpusSource(encoding), after=after)
        self.last_active = time.monotonic()
        await finished
        self.last_active = time.monotonic()

    async def _wait_connected(self) -> None:
        deadline = time.monotonic() + RECONNECT_WAIT_SECONDS
        while not self.voice_client.is_connected():
            if time.monotonic() > deadline:
                raise ConnectionError("the voice connection did not come back")
            await asyncio.sleep(0.1)
