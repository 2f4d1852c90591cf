"""A concurrency limit whose free slots go round-robin to the keys that are waiting."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class FairLimiter:
    """At most `limit` holders at once; waiting keys are served in turn, one slot each."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._in_use = 0
        self._waiters: dict[Hashable, deque[asyncio.Future[None]]] = {}
        # Keys with waiters, in the order they will next be served.
        self._turns: deque[Hashable] = deque()

    @property
    def limit(self) -> int:
        """The most holders allowed at once."""
        return self._limit

    @property
    def in_use(self) -> int:
        """How many slots are held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """How many acquirers are queued."""
        return sum(len(queue) for queue in self._waiters.values())

    def __repr__(self) -> str:
        return f"FairLimiter(limit={self._limit}, in_use={self._in_use}, waiting={self.waiting})"

    async def acquire(self, key: Hashable = None) -> None:
        """Wait for a slot on behalf of `key`."""
        if self._in_use < self._limit and not self._turns:
            self._in_use += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(key)
        if queue is None:
            queue = self._waiters[key] = deque()
            self._turns.append(key)
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

    def release(self) -> None:
        """Give a slot back, handing it straight to the next key in turn if any is waiting."""
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
                return
        self._in_use -= 1

    @asynccontextmanager
    async def slot(self, key: Hashable = None) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block."""
        await self.acquire(key)
        try:
            yield
        finally:
            self.release()

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
