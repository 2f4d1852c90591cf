"""Adaptive upstream concurrency: a limit that follows Unmixr's load, its free slots shared round-robin by key.

PRODUCT.md, Upstream concurrency. The limit starts at 8 (never above the ceiling). A window ends when as many
answers as the limit at its start have come back. A window without a 429 or timeout in which requests had
to wait doubles the limit (slow start) until the first 429 or timeout, and grows it by one after that. The
first 429 or timeout of a window lowers it at once to 0.7 times the requests holding a slot then (rounded
down; a request sleeping out a Retry-After holds none) and starts a new window; answers to requests sent
before that decrease are ignored, so one burst of 429s lowers it only once. After 30 s without a 429 or
timeout, growth doubles again until the next one, so a limit lowered while Unmixr was busy recovers in a few
windows once it is not. It never goes above the ceiling nor below 1.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Final

log = logging.getLogger(__name__)

INITIAL_LIMIT: Final = 8
# At a 429 or timeout, the new limit is this share of the requests holding a slot.
DECREASE: Final = 0.7
# This long without a 429 or timeout and slow start resumes.
QUIET_SECONDS: Final = 30.0


class Permit:
    """One held slot; the request made under it reports its answer here."""

    __slots__ = ("_answered", "_epoch", "_limiter")

    def __init__(self, limiter: AdaptiveLimiter, epoch: int) -> None:
        self._limiter = limiter
        self._epoch = epoch
        self._answered = False

    def answered(self, *, overloaded: bool) -> None:
        """Report the answer: `overloaded` for a 429 or a timeout; only the first report counts."""
        if self._answered:
            return
        self._answered = True
        self._limiter._observe(self._epoch, overloaded=overloaded)


class AdaptiveLimiter:
    """At most `limit` holders at once, the limit adapting to answers; waiting keys are served in turn."""

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int = INITIAL_LIMIT,
        on_change: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1 or initial < 1:
            raise ValueError("limit must be at least 1")
        self._ceiling = ceiling
        self._limit = min(initial, ceiling)
        # Called with the new limit on every change (a metrics gauge's `set`, say).
        self.on_change = on_change
        self._in_use = 0
        self._waiters: dict[Hashable, deque[asyncio.Future[None]]] = {}
        # Keys with waiters, in the order they will next be served.
        self._turns: deque[Hashable] = deque()
        self._slow_start = True
        self._clock = clock
        # When the last 429 or timeout came back (None: never).
        self._last_overload: float | None = None
        # Bumped on every decrease: answers to permits from an older epoch are ignored.
        self._epoch = 0
        self._window_size = self._limit
        self._window_answers = 0
        self._window_waited = False

    @property
    def limit(self) -> int:
        """The most holders allowed at once, now."""
        return self._limit

    @property
    def ceiling(self) -> int:
        """The most the limit may ever grow to (`UNMIXR_MAX_CONCURRENCY`)."""
        return self._ceiling

    @property
    def in_use(self) -> int:
        """How many slots are held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """How many acquirers are queued."""
        return sum(len(queue) for queue in self._waiters.values())

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(limit={self._limit}, ceiling={self._ceiling}, in_use={self._in_use}, "
            f"waiting={self.waiting})"
        )

    async def acquire(self, key: Hashable = None, *, retry: bool = False) -> Permit:
        """Wait for a slot on behalf of `key`; the caller must `release()` it.

        A retry goes to the front of its key's queue (it already waited its turn once), never ahead of
        another key's turn.
        """
        if self._in_use < self._limit and not self._turns:
            self._in_use += 1
            return Permit(self, self._epoch)
        self._window_waited = True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(key)
        if queue is None:
            queue = self._waiters[key] = deque()
            self._turns.append(key)
        if retry:
            queue.appendleft(future)
        else:
            queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            else:
                self._forget(key, future)
            raise
        return Permit(self, self._epoch)

    def release(self) -> None:
        """Give a slot back, handing it straight to the next key in turn if the limit allows."""
        if self._in_use > self._limit or not self._hand_over():
            self._in_use -= 1

    @asynccontextmanager
    async def slot(self, key: Hashable = None, *, retry: bool = False) -> AsyncIterator[Permit]:
        """Hold one slot for the duration of the block."""
        permit = await self.acquire(key, retry=retry)
        try:
            yield permit
        finally:
            self.release()

    def _hand_over(self) -> bool:
        """Give a held slot to the next waiting key in turn; False if nobody is waiting."""
        while self._turns:
            key = self._turns.popleft()
            queue = self._waiters[key]
            future = queue.popleft()
            if queue:
                self._turns.append(key)
            else:
                del self._waiters[key]
            if not future.done():
                # The slot moves to the waiter without ever becoming free.
                future.set_result(None)
                return True
        return False

    def _fill(self) -> None:
        """After the limit grew: hand the new slots to waiters, in turn."""
        while self._in_use < self._limit and self._turns:
            self._in_use += 1
            if not self._hand_over():
                self._in_use -= 1

    @property
    def slow_start(self) -> bool:
        """Whether the limit doubles at the end of a busy window (else it grows by one)."""
        return self._slow_start

    def _observe(self, epoch: int, *, overloaded: bool) -> None:
        """Count one answer in the window and adapt the limit at a 429, a timeout or the window's end."""
        if overloaded:
            # Even one answering a request from before the last decrease: Unmixr is still busy.
            self._last_overload = self._clock()
        if epoch != self._epoch:
            return
        if overloaded:
            self._slow_start = False
            self._epoch += 1
            # The requests holding a slot now, this one included: what Unmixr was taking when it refused.
            lowered = math.floor(DECREASE * self._in_use)
            self._change(max(1, min(self._limit, lowered)), "429 or timeout")
            self._new_window()
            return
        self._window_answers += 1
        if self._window_answers < self._window_size:
            return
        if self._window_waited or self._turns:
            if not self._slow_start and self._quiet():
                self._slow_start = True
            grown = self._limit * 2 if self._slow_start else self._limit + 1
            self._change(min(self._ceiling, grown), "slow start" if self._slow_start else "no 429 in a window")
            self._fill()
        self._new_window()

    def _quiet(self) -> bool:
        """Whether QUIET_SECONDS have passed without a 429 or timeout."""
        return self._last_overload is None or self._clock() - self._last_overload >= QUIET_SECONDS

    def _new_window(self) -> None:
        """Start counting a new window at the current limit."""
        self._window_size = self._limit
        self._window_answers = 0
        self._window_waited = bool(self._turns)

    def _change(self, limit: int, reason: str) -> None:
        """Set the limit, logging and reporting a change."""
        if limit == self._limit:
            return
        log.debug("upstream concurrency %d -> %d (%s)", self._limit, limit, reason)
        self._limit = limit
        if self.on_change is not None:
            self.on_change(limit)

    def _forget(self, key: Hashable, future: asyncio.Future[None]) -> None:
        """Remove a cancelled waiter from its key's queue."""
        queue = self._waiters.get(key)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self._waiters[key]
            self._turns.remove(key)
