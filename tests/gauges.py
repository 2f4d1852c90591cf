"""Gauges read from inside this process while the bot runs in it: the event loop's longest stall, and how far
resident memory rose above where it stood (shared by the tests and the benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from types import TracebackType
from typing import Final

# How often the stall gauge asks for the loop: a stall shorter than this cannot be told from a busy moment.
TICK_SECONDS: Final = 0.002
_STATUS: Final = Path("/proc/self/status")


class LoopStalls:
    """The longest time the event loop went without running a callback that was due, while this is entered.

    A task asks to wake up every TICK_SECONDS and notes how late it woke: a callback that holds the loop (a
    parse, a copy, a blocking call) makes it late by as long. Time the loop's thread spent runnable but waiting
    for a CPU (the kernel's run-queue wait, /proc/.../schedstat) is taken out: on a machine shared with other
    work that is the machine's load, not the loop's. `longest_wall` keeps the plain figure. The loop is shared
    with the stand-ins running in this process, so what they do counts too: the figure is an upper bound for
    the bot's own.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_wall = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._watch(), name="loop-stalls")
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        schedstat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        while True:
            asked, waited = loop.time(), _run_queue_seconds(schedstat)
            await asyncio.sleep(TICK_SECONDS)
            late = loop.time() - asked - TICK_SECONDS
            self.longest_wall = max(self.longest_wall, late)
            self.longest = max(self.longest, late - (_run_queue_seconds(schedstat) - waited))


def _run_queue_seconds(schedstat: Path) -> float:
    """How long the thread has waited, runnable, for a CPU since it started (the second figure, in ns)."""
    return int(schedstat.read_text().split()[1]) / 1e9


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


class PeakMemory:
    """How far this process's resident memory peaked above where it stood when this was entered.

    Linux keeps the peak (VmHWM) exactly; entering resets it to the current size (writing 5 to clear_refs), so
    nothing allocated before counts, and a short-lived peak between two readings is not missed.
    """

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0

    @property
    def growth(self) -> int:
        """Bytes the peak rose above the baseline."""
        return max(0, self.peak - self.baseline)

    def __enter__(self) -> PeakMemory:
        Path("/proc/self/clear_refs").write_text("5")
        self.baseline = status_bytes("VmRSS")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.peak = status_bytes("VmHWM")
