"""This process among the bot's processes: its instance id, its heartbeat, the holds of crashed processes, and the
leases on the shards it runs (PRODUCT.md, Continuity).

Every start is a new instance, recorded in the database with a heartbeat every HEARTBEAT_SECONDS; every credit hold
it makes carries its id. At start and every SWEEP_SECONDS, any process releases the holds of instances silent for
SILENT_SECONDS (a crash or a kill: their requests will never settle), and never those of a live instance, however
old. With PostgreSQL a process first takes a lease on each shard it runs (renewed with the heartbeat, expiring after
LEASE_SECONDS), so two processes never run one shard at once: a rolling deploy's new process waits, saying why,
until the old one stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from bot.storage import ContinuityStore, Instance, LeaseHolder, Storage
from bot.wording import counted, number

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS: Final[float] = 10.0
SILENT_SECONDS: Final[float] = 60.0
SWEEP_SECONDS: Final[float] = 60.0
LEASE_SECONDS: Final[float] = 30.0
# How often a process waiting for a shard's lease asks again, and how often it says it still waits.
LEASE_RETRY_SECONDS: Final[float] = 1.0
STILL_WAITING_SECONDS: Final[float] = 60.0

LeaseLost = Callable[[int], Awaitable[None]]


def describe(instance: Instance | None) -> str:
    """A process as an operator finds it: its pid and machine."""
    if instance is None:
        return "a process that has stopped answering"
    return f"process {instance.pid} on {instance.host} (instance {instance.instance_id})"


class ProcessInstance:
    """This process's record in the database, kept alive until it stops."""

    def __init__(self, storage: Storage, *, leases: bool) -> None:
        self.info = Instance(secrets.token_hex(8), socket.gethostname(), os.getpid())
        self._store: ContinuityStore = storage.continuity()
        # Whether shards are leased: with PostgreSQL, where several processes share the database.
        self.leases = leases
        self.shard_count: int | None = None
        self.shards: set[int] = set()  # the shards whose lease this process holds
        self.on_lease_lost: LeaseLost | None = None
        self._regaining: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def id(self) -> str:
        """The instance id recorded on this process's holds."""
        return self.info.instance_id

    async def start(self) -> None:
        """Record this process, then release what crashed ones left held."""
        await self._store.register_instance(self.info)
        log.info("this process is %s", describe(self.info))
        await self.release_silent_holds()

    async def run(self) -> None:
        """Heartbeat (and renew leases) every HEARTBEAT_SECONDS, release silent processes' holds every minute."""
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except Exception as error:
                log.warning("could not record this process's heartbeat: %s", error)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_SECONDS
                try:
                    await self.release_silent_holds()
                except Exception as error:
                    log.warning("could not release the holds of stopped processes: %s", error)

    async def beat(self) -> None:
        """One heartbeat, and the leases renewed."""
        if not await self._store.heartbeat(self.id):
            # Silent for a minute (a stall, or the database unreachable): others took it for dead and released
            # its holds. Its requests still settle what they spend; it goes on as a live instance again.
            log.warning("this process was taken for stopped (no heartbeat for %.0f s); recorded again", SILENT_SECONDS)
            await self._store.register_instance(self.info)
        if self.leases and self.shards and self.shard_count is not None:
            renewed = await self._store.renew_leases(self.id, LEASE_SECONDS)
            for shard_id in sorted(self.shards - renewed - self._regaining):
                self._spawn(self._regain(shard_id), name=f"lease-regain:{shard_id}")

    async def release_silent_holds(self) -> None:
        """Release the holds of processes silent for SILENT_SECONDS, and say whose."""
        released = await self._store.release_silent_holds(SILENT_SECONDS)
        if released.holds or released.instances:
            whose = ", ".join(describe(instance) for instance in released.instances) or "stopped processes"
            log.warning(
                "released %s (%s credits) left by %s",
                counted(released.holds, "{count} hold", "{count} holds"),
                number(released.credits),
                whose,
            )

    async def claim(self, shard_ids: Iterable[int], shard_count: int) -> None:
        """Wait until this process holds the lease on every one of `shard_ids` (no-op without leases)."""
        if not self.leases:
            return
        self.shard_count = shard_count
        for shard_id in shard_ids:
            await self.wait_for_lease(shard_id)

    async def wait_for_lease(self, shard_id: int) -> None:
        """Take the shard's lease, waiting (and saying why, now and then) while another process holds it."""
        assert self.shard_count is not None
        said: tuple[str | None, int, int] | None = None
        said_at = 0.0
        while True:
            holder = await self._store.take_lease(self.id, shard_id, self.shard_count, LEASE_SECONDS)
            if holder is None:
                self.shards.add(shard_id)
                if said is not None:
                    log.info("took the lease of shard %d of %d: this process runs it now", shard_id, self.shard_count)
                return
            key = (holder.instance.instance_id if holder.instance else None, holder.shard_id, holder.shard_count)
            if key != said or time.monotonic() - said_at >= STILL_WAITING_SECONDS:
                log.warning("%s", self._waiting_line(shard_id, holder))
                said, said_at = key, time.monotonic()
            await asyncio.sleep(LEASE_RETRY_SECONDS)

    def _waiting_line(self, shard_id: int, holder: LeaseHolder) -> str:
        theirs = (
            "it"
            if (holder.shard_id, holder.shard_count) == (shard_id, self.shard_count)
            else f"shard {holder.shard_id} of {holder.shard_count}, which shares servers with it"
        )
        return (
            f"waiting for shard {shard_id} of {self.shard_count}: {describe(holder.instance)} runs {theirs} "
            f"(its lease ends in {max(holder.seconds_left, 0):.0f} s unless renewed); a shard runs in one process at "
            "a time, so this one starts it once that process stops (a clean stop hands it over at once)"
        )

    async def _regain(self, shard_id: int) -> None:
        # The lease lapsed (the database was out of reach for LEASE_SECONDS): another process may run the shard now.
        self._regaining.add(shard_id)
        try:
            holder = await self._store.take_lease(self.id, shard_id, self.shard_count or 1, LEASE_SECONDS)
            if holder is None:
                log.warning("the lease of shard %d lapsed and was taken again; nothing else ran it", shard_id)
                return
            who = describe(holder.instance)
            log.error("the lease of shard %d lapsed and %s runs it now; stopping it here", shard_id, who)
            self.shards.discard(shard_id)
            if self.on_lease_lost is not None:
                await self.on_lease_lost(shard_id)
        finally:
            self._regaining.discard(shard_id)

    def _spawn(self, coroutine: Awaitable[None], *, name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Give up the leases and the record: this process has settled or released everything it held."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.shards.clear()
        await self._store.retire_instance(self.id)
