"""The SQL of the audio cache's shared tier: clips by cache key in PostgreSQL's audio_cache table (migration 3).

`bot/audio/shared_tier.py` decides when to call these methods; they only talk to the database. Every change of
the tier's size (a clip stored, evicted, dropped or expired) updates the one row of audio_cache_size in the same
transaction, so its total is exact and no write has to sum the table; that row's lock also puts those changes in
one line across processes. Locks are always taken in the same order (a clip's row, then the size row), and a
statement that locks several clips skips those another transaction holds (SKIP LOCKED), so no two processes ever
wait for each other in a circle. Reads take no lock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from bot.storage.backends import Backend, Row, Session

# The statements below are put together from these constants only, never from callers: every value is bound.
# PostgreSQL's clock, the same for every process whatever its machine's clock says.
_NOW: Final[str] = "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)"
_LIVE: Final[str] = f"(expires_at IS NULL OR expires_at > {_NOW})"
# Oldest clips looked at per round of an eviction: one or two usually make room for a new one.
EVICTION_BATCH: Final[int] = 32

_FETCH: Final[str] = (
    "SELECT audio, sha256, size, duration, output_type, expires_at IS NOT NULL "  # noqa: S608
    f"FROM audio_cache WHERE key = ? AND {_LIVE}"
)
_PRESENT: Final[str] = f"SELECT key FROM audio_cache WHERE key = ANY(?) AND {_LIVE}"  # noqa: S608
_INSERT: Final[str] = (
    "INSERT INTO audio_cache (key, output_type, duration, size, sha256, audio, used_at, expires_at) "  # noqa: S608
    f"VALUES (?, ?, ?, ?, ?, ?, {_NOW}, {_NOW} + ?) ON CONFLICT (key) DO NOTHING"
)
_GROW: Final[str] = "UPDATE audio_cache_size SET bytes = bytes + ? RETURNING bytes"
_OLDEST: Final[str] = (
    "SELECT key, size FROM audio_cache WHERE key <> ? ORDER BY used_at, key LIMIT ? FOR UPDATE SKIP LOCKED"
)
# The bytes and the number of clips a DELETE ... RETURNING size removed.
_GONE: Final[str] = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), COUNT(*) FROM gone"
_DELETE_KEYS: Final[str] = f"WITH gone AS (DELETE FROM audio_cache WHERE key = ANY(?) RETURNING size) {_GONE}"  # noqa: S608
_DELETE_EXPIRED: Final[str] = (
    "WITH gone AS (DELETE FROM audio_cache WHERE key IN "  # noqa: S608
    f"(SELECT key FROM audio_cache WHERE expires_at <= {_NOW} FOR UPDATE SKIP LOCKED) RETURNING size) {_GONE}"
)
# A clip in use by another transaction (being evicted, say) is left alone: its mark is not worth a wait.
_TOUCH: Final[str] = (
    f"UPDATE audio_cache SET used_at = {_NOW} WHERE key IN "  # noqa: S608
    f"(SELECT key FROM audio_cache WHERE key = ANY(?) AND used_at < {_NOW} FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True, slots=True)
class StoredClip:
    """A row of the shared tier as read, not yet checked: the audio and what was recorded about it."""

    data: bytes
    sha256: bytes
    size: int
    duration: float | None
    output_type: str
    # Stored with a lifetime: the audio of a member's message, which expires in a day.
    expiring: bool = False


class SharedAudioStore:
    """The shared tier's table, on the PostgreSQL every process of the bot uses."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def fetch(self, key: str) -> StoredClip | None:
        """The clip stored under key (unexpired), or None."""
        row = await self._backend.fetchone(_FETCH, (key,))
        if row is None:
            return None
        data, sha256, size, duration, output_type, expiring = row
        return StoredClip(bytes(data), bytes(sha256), int(size), duration, str(output_type), bool(expiring))

    async def present(self, keys: Collection[str]) -> set[str]:
        """Which of keys have a clip stored (unexpired), in one query."""
        if not keys:
            return set()
        return {str(row[0]) for row in await self._backend.fetchall(_PRESENT, (list(keys),))}

    async def store(
        self,
        key: str,
        data: bytes,
        *,
        sha256: bytes,
        duration: float | None,
        output_type: str,
        max_bytes: int,
        lifetime: float | None = None,
    ) -> int | None:
        """Store a clip unless its key is there, then evict the least recently used until the tier fits max_bytes.

        Returns the tier's size afterwards, or None when the key was there already (nothing changed).
        `lifetime` (seconds) makes the clip expire, whatever its use.
        """
        async with self._backend.transaction() as session:
            inserted = await session.execute(_INSERT, (key, output_type, duration, len(data), sha256, data, lifetime))
            if not inserted:
                return None
            total = await _grow(session, len(data))
            while total > max_bytes:
                excess = total - max_bytes
                victims: list[str] = []
                freed = 0
                for victim, size in await session.fetchall(_OLDEST, (key, EVICTION_BATCH)):
                    victims.append(str(victim))
                    freed += int(size)
                    if freed >= excess:
                        break
                if not victims:
                    break  # what is left is held by other transactions, or is this clip itself
                after = await _shrink(session, await session.fetchone(_DELETE_KEYS, (victims,)))
                total = total if after is None else after
            return total

    async def drop(self, key: str) -> bool:
        """Remove the clip stored under key (a damaged one); whether there was one."""
        async with self._backend.transaction() as session:
            gone = await session.fetchone(_DELETE_KEYS, ([key],))
            await _shrink(session, gone)
            return gone is not None and bool(gone[1])

    async def touch(self, keys: Collection[str]) -> int:
        """Mark the clips under keys as used now, in one statement; how many were marked."""
        if not keys:
            return 0
        return await self._backend.execute(_TOUCH, (list(keys),))

    async def remove_expired(self) -> int:
        """Remove the clips whose lifetime is over; how many were removed."""
        async with self._backend.transaction() as session:
            row = await session.fetchone(_DELETE_EXPIRED)
            await _shrink(session, row)
            return int(row[1]) if row is not None else 0

    async def total_bytes(self) -> int:
        """The tier's size in bytes of audio, as its size row records it."""
        row = await self._backend.fetchone("SELECT bytes FROM audio_cache_size")
        return int(row[0]) if row is not None else 0

    async def recount(self) -> int:
        """Set the size row to the sum of the clips' sizes (after rows were removed by hand, say); return it."""
        async with self._backend.transaction() as session:
            # The size row first: changes by other processes wait, so the sum that follows is exact.
            await session.fetchone("SELECT bytes FROM audio_cache_size FOR UPDATE")
            row = await session.fetchone("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM audio_cache")
            total = int(row[0]) if row is not None else 0
            await session.execute("UPDATE audio_cache_size SET bytes = ?", (total,))
            return total


async def _grow(session: Session, size: int) -> int:
    row = await session.fetchone(_GROW, (size,))
    assert row is not None, "migration 3 inserts the size row"
    return int(row[0])


async def _shrink(session: Session, gone: Row | None) -> int | None:
    """Take what a DELETE removed (its _GONE row) off the size row: the new size, or None if nothing went."""
    if gone is None or not gone[1]:
        return None
    return await _grow(session, -int(gone[0]))
