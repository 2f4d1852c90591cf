"""What lets the bot carry on across restarts, crashes and deploys: recorded voice sessions, the processes running
(each with a heartbeat, so a crashed one's credit holds can be released) and, with PostgreSQL, shard leases.

Times of heartbeats and leases are the database's own clock (`Backend.now_sql`), the same for every machine that
shares it, so a process on a machine whose clock is off never takes another's lease or releases its holds early.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

from bot.storage.backends import LEASE_LOCK, Backend

# The hold of a row made by a process: which process, and whether it still holds anything.
_HELD_BY_SILENT: Final[str] = (
    "reserved > 0 AND instance_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM process_instances AS live "
    "WHERE live.instance_id = usage_ledger.instance_id AND live.heartbeat_at >= {now} - ?)"
)


@dataclass(frozen=True, slots=True)
class Instance:
    """A process of the bot as the database knows it."""

    instance_id: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class ReleasedHolds:
    """What releasing the holds of silent processes did."""

    instances: tuple[Instance, ...]
    holds: int
    credits: int


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Another process holding a shard's lease (or one overlapping it): who, and for how much longer."""

    instance: Instance | None  # None: a process that has already stopped heartbeating
    shard_id: int
    shard_count: int
    seconds_left: float


def shards_overlap(first: tuple[int, int], second: tuple[int, int]) -> bool:
    """Whether shard a of n and shard b of m share servers: ids with id % n == a and id % m == b exist exactly
    when a and b agree modulo gcd(n, m) (events/gateway.mdx, "Sharding Formula": (guild_id >> 22) % count).
    """
    (shard_a, count_a), (shard_b, count_b) = first, second
    common = math.gcd(count_a, count_b)
    return shard_a % common == shard_b % common


class ContinuityStore:
    """Voice sessions, process instances and shard leases, over an open, migrated backend."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend
        self._now = backend.now_sql

    # Voice sessions: each server's channel while the bot is connected there

    async def record_voice_session(self, guild_id: int, channel_id: int) -> None:
        """Remember that the bot plays in `channel_id` of the server (replacing the channel it had)."""
        await self._db.execute(
            "INSERT INTO voice_sessions (guild_id, channel_id, joined_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id, joined_at = excluded.joined_at",
            (guild_id, channel_id, time.time()),
        )

    async def forget_voice_session(self, guild_id: int) -> bool:
        """Forget the server's voice channel (the bot left it on purpose); whether one was recorded."""
        return await self._db.execute("DELETE FROM voice_sessions WHERE guild_id = ?", (guild_id,)) > 0

    async def voice_sessions(self) -> dict[int, int]:
        """Every recorded voice session: server id to channel id, oldest first."""
        rows = await self._db.fetchall("SELECT guild_id, channel_id FROM voice_sessions ORDER BY joined_at, guild_id")
        return {int(guild_id): int(channel_id) for guild_id, channel_id in rows}

    # Process instances: an id per start, a heartbeat, and the holds of those that fell silent

    async def register_instance(self, instance: Instance) -> None:
        """Record a starting process, heartbeating from now."""
        await self._db.execute(
            "INSERT INTO process_instances (instance_id, host, pid, started_at, heartbeat_at) "  # noqa: S608
            f"VALUES (?, ?, ?, {self._now}, {self._now}) ON CONFLICT (instance_id) DO UPDATE "
            "SET heartbeat_at = excluded.heartbeat_at",
            (instance.instance_id, instance.host, instance.pid),
        )

    async def heartbeat(self, instance_id: str) -> bool:
        """Note that the process is alive; False when its row was gone (another process took it for dead)."""
        changed = await self._db.execute(
            f"UPDATE process_instances SET heartbeat_at = {self._now} WHERE instance_id = ?",  # noqa: S608
            (instance_id,),
        )
        return changed > 0

    async def release_silent_holds(self, silent_seconds: float) -> ReleasedHolds:
        """Release every hold of a process silent for `silent_seconds` (or no longer recorded) and forget it.

        A live process's holds stay, however old; a row whose process is gone holds nothing afterwards.
        """
        held_by_silent = _HELD_BY_SILENT.format(now=self._now)
        async with self._db.transaction() as session:
            silent = await session.fetchall(
                "SELECT instance_id, host, pid FROM process_instances "  # noqa: S608
                f"WHERE heartbeat_at < {self._now} - ? ORDER BY started_at",
                (silent_seconds,),
            )
            counted = await session.fetchone(
                "SELECT COUNT(*), CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM usage_ledger "  # noqa: S608
                f"WHERE {held_by_silent}",
                (silent_seconds,),
            )
            holds, credits = (int(value) for value in counted) if counted is not None else (0, 0)
            if holds:
                await session.execute(
                    f"UPDATE usage_ledger SET reserved = 0 WHERE {held_by_silent}",  # noqa: S608
                    (silent_seconds,),
                )
            if silent:
                await session.execute(
                    f"DELETE FROM process_instances WHERE heartbeat_at < {self._now} - ?",  # noqa: S608
                    (silent_seconds,),
                )
        instances = tuple(Instance(str(row[0]), str(row[1]), int(row[2])) for row in silent)
        return ReleasedHolds(instances, holds, credits)

    async def retire_instance(self, instance_id: str) -> None:
        """Forget a process that stopped cleanly (its holds settled or released), and give up its leases."""
        if self._db.dialect == "postgresql":
            await self._db.execute("DELETE FROM shard_leases WHERE instance_id = ?", (instance_id,))
        await self._db.execute("DELETE FROM process_instances WHERE instance_id = ?", (instance_id,))

    async def instances(self) -> list[Instance]:
        """Every process recorded now, oldest first."""
        rows = await self._db.fetchall("SELECT instance_id, host, pid FROM process_instances ORDER BY started_at")
        return [Instance(str(row[0]), str(row[1]), int(row[2])) for row in rows]

    # Shard leases (PostgreSQL): a shard runs in one process at a time

    async def take_lease(self, instance_id: str, shard_id: int, shard_count: int, seconds: float) -> LeaseHolder | None:
        """Take (or renew) the lease on one shard for `seconds`; None when taken, else who holds one overlapping it.

        Checked and taken under one lock, so two processes never both take shards that share servers.
        """
        async with self._db.transaction(lock=LEASE_LOCK) as session:
            rows = await session.fetchall(
                f"SELECT lease.shard_id, lease.shard_count, lease.expires_at - {self._now}, "  # noqa: S608
                "instance.instance_id, instance.host, instance.pid FROM shard_leases AS lease "
                "LEFT JOIN process_instances AS instance ON instance.instance_id = lease.instance_id "
                f"WHERE lease.expires_at > {self._now} AND lease.instance_id <> ? "
                "ORDER BY lease.expires_at DESC",
                (instance_id,),
            )
            for other_shard, other_count, left, other_id, host, pid in rows:
                if shards_overlap((shard_id, shard_count), (int(other_shard), int(other_count))):
                    holder = Instance(str(other_id), str(host), int(pid)) if other_id is not None else None
                    return LeaseHolder(holder, int(other_shard), int(other_count), float(left))
            await session.execute(
                "INSERT INTO shard_leases (shard_count, shard_id, instance_id, expires_at) "  # noqa: S608
                f"VALUES (?, ?, ?, {self._now} + ?) ON CONFLICT (shard_count, shard_id) DO UPDATE "
                "SET instance_id = excluded.instance_id, expires_at = excluded.expires_at",
                (shard_count, shard_id, instance_id, seconds),
            )
        return None

    async def renew_leases(self, instance_id: str, seconds: float) -> set[int]:
        """Extend every lease the process still holds (not expired) by `seconds`; return their shards."""
        rows = await self._db.fetchall(
            f"UPDATE shard_leases SET expires_at = {self._now} + ? "  # noqa: S608
            f"WHERE instance_id = ? AND expires_at > {self._now} RETURNING shard_id",
            (seconds, instance_id),
        )
        return {int(shard_id) for (shard_id,) in rows}
