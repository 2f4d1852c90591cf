"""The bot's storage: typed methods over SQLite or PostgreSQL, with write-through caches of per-server state.

Every statement is written once, with `?` placeholders, and runs on either backend (`bot/storage/backends.py`).

Why the caches stay right with several processes sharing PostgreSQL. Server settings, member preferences and
pronunciations are per-server state, cached in memory and written through. Discord sends a server's
interactions and events only to the process holding the server's shard, so only that process reads or writes
the server's state, and every write passes through its cache. Shards move between processes only by a restart
(`SHARD_IDS` is fixed for a process's life), and a process starts with empty caches, so swapping shards leaves
nothing stale; when a shard of a running process starts a new gateway session (Discord dropped the old one,
and another process may have served those servers meanwhile) the bot drops their entries (`forget_guilds`).
Account-wide state, shared by every process (the usage ledger behind budgets and /balance, clone ownership
and slots, low-balance alerts, and users' account-wide preferences, which a user may set from a DM, served by
shard 0, and read from a server on any shard), is never cached: it is read from the database each time, and
each check-and-write on it is one transaction that holds the server's lock (`pg_advisory_xact_lock`) or relies
on a unique key (`ON CONFLICT`), never an in-memory lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Generic, Self, TypeVar

from bot.storage.backends import ACCOUNT_LOCK, COMPACTION_LOCK, USER_INSTALL_LOCK, Backend, Session, open_backend
from bot.storage.continuity import ContinuityStore
from bot.storage.errors import (
    BudgetExceededError,
    ClonedVoiceExistsError,
    CloneNameTakenError,
    CloneQuotaError,
    PronunciationLimitError,
    StorageClosedError,
    StorageError,
)
from bot.storage.migrations import apply_migrations
from bot.storage.models import (
    GUILD_SETTING_NAMES,
    GUILD_SETTING_TYPES,
    MAX_PRONUNCIATIONS,
    MAX_SPOKEN_LENGTH,
    MAX_WORD_LENGTH,
    MEMBER_PREFERENCE_NAMES,
    MEMBER_PREFERENCE_TYPES,
    USER_PREFERENCE_NAMES,
    AwaitedClone,
    ClonedVoice,
    GuildSettings,
    MemberPreferences,
    Pronunciation,
    Usage,
    UserPreferences,
)
from bot.storage.shared_audio import SharedAudioStore

log = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE: Final[int] = 20_000


def _upserts(table: str, keys: tuple[str, ...], names: tuple[str, ...]) -> dict[str, str]:
    """For each column of `names`, the statement setting it on the row of `table` with `keys`, made if missing."""
    key_list = ", ".join(keys)
    placeholders = ", ".join("?" * (len(keys) + 1))
    return {
        name: (
            f"INSERT INTO {table} ({key_list}, {name}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT ({key_list}) DO UPDATE SET {name} = excluded.{name}"
        )
        for name in names
    }


# Column names below come only from the constant whitelists in models.py, never from callers, so
# building these statements once at import is safe; every value is bound as a parameter.
_GUILD_COLUMNS: Final[str] = ", ".join(GUILD_SETTING_NAMES)
_SELECT_GUILD_SETTINGS: Final[str] = f"SELECT {_GUILD_COLUMNS} FROM guild_settings WHERE guild_id = ?"  # noqa: S608
_SET_GUILD_SETTING: Final[dict[str, str]] = _upserts("guild_settings", ("guild_id",), GUILD_SETTING_NAMES)
_BOOLEAN_SETTINGS: Final[tuple[str, ...]] = tuple(
    name for name in GUILD_SETTING_NAMES if GUILD_SETTING_TYPES[name] is bool
)
_MEMBER_COLUMNS: Final[str] = ", ".join(MEMBER_PREFERENCE_NAMES)
_SELECT_MEMBER_PREFERENCES: Final[str] = (
    f"SELECT {_MEMBER_COLUMNS} FROM member_preferences WHERE guild_id = ? AND user_id = ?"  # noqa: S608
)
_SELECT_SERVER_PREFERENCES: Final[str] = f"SELECT user_id, {_MEMBER_COLUMNS} FROM member_preferences WHERE guild_id = ?"  # noqa: S608
_SET_MEMBER_PREFERENCE: Final[dict[str, str]] = _upserts(
    "member_preferences", ("guild_id", "user_id"), MEMBER_PREFERENCE_NAMES
)
_USER_COLUMNS: Final[str] = ", ".join(USER_PREFERENCE_NAMES)
_SELECT_USER_PREFERENCES: Final[str] = f"SELECT {_USER_COLUMNS} FROM user_preferences WHERE user_id = ?"  # noqa: S608
_SET_USER_PREFERENCE: Final[dict[str, str]] = _upserts("user_preferences", ("user_id",), USER_PREFERENCE_NAMES)
# The usage ledger's server id for spending through users' own installs (PRODUCT.md, Reach): no server has it
# (ids are positive snowflakes), and the operator's own requests (`python -m bot say`) use 0.
USER_INSTALLS: Final[int] = -1
# `instance_id` is the process that holds the row's credits (bot/instance.py): its holds are released once it
# falls silent, and never while it lives.
_INSERT_LEDGER: Final[str] = (
    "INSERT INTO usage_ledger (guild_id, user_id, at, day, reserved, characters, credits_prebuilt, "
    "credits_cloned, requests, cache_hits, instance_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
# Applied as deltas so concurrent settlements of one request's chunks add up; a release never goes below 0.
_SETTLE_LEDGER: Final[str] = (
    "UPDATE usage_ledger SET "
    "reserved = CASE WHEN reserved > ? THEN reserved - ? ELSE 0 END, "
    "characters = characters + ?, credits_prebuilt = credits_prebuilt + ?, credits_cloned = credits_cloned + ?, "
    "requests = requests + ?, cache_hits = cache_hits + ? "
    "WHERE id = ?"
)
# The same, for the request's last charge: its row moves to the moment it was charged, when its spending begins
# to count (PRODUCT.md: spending counts in the windows at the moment it is charged).
_CHARGE_LEDGER: Final[str] = (
    "UPDATE usage_ledger SET "
    "reserved = CASE WHEN reserved > ? THEN reserved - ? ELSE 0 END, "
    "characters = characters + ?, credits_prebuilt = credits_prebuilt + ?, credits_cloned = credits_cloned + ?, "
    "requests = requests + ?, cache_hits = cache_hits + ?, at = ?, day = ? "
    "WHERE id = ?"
)
# A charge while other chunks of the request still hold: a row of its own, dated when it was charged.
_CHARGE_APART: Final[str] = (
    "INSERT INTO usage_ledger (guild_id, user_id, at, day, reserved, characters, credits_prebuilt, "
    "credits_cloned, requests, cache_hits) SELECT guild_id, user_id, ?, ?, 0, ?, ?, ?, ?, 0 FROM usage_ledger "
    "WHERE id = ?"
)
# PostgreSQL sums integers as NUMERIC: the casts bring the totals back to integers on both databases.
_SUMS: Final[str] = ", ".join(
    f"CAST(COALESCE(SUM({column}), 0) AS BIGINT)"
    for column in ("characters", "credits_prebuilt", "credits_cloned", "requests", "cache_hits")
)
# A hold counts in every window until it settles, however long it has waited (a clip queued yesterday and
# not played yet counts today); the partial index usage_ledger_holds finds the open ones.
_SERVER_HOLDS: Final[str] = (
    "(SELECT CAST(COALESCE(SUM(CASE WHEN day < ? THEN reserved ELSE 0 END), 0) AS BIGINT) FROM usage_ledger "
    "WHERE guild_id = ? AND reserved > 0)"
)
_MEMBER_HOLDS: Final[str] = (
    "(SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM usage_ledger "
    "WHERE guild_id = ? AND user_id = ? AND reserved > 0)"
)
_SUM_USAGE: Final[str] = (
    f"SELECT {_SUMS}, {_SERVER_HOLDS} FROM usage_ledger WHERE guild_id = ? AND day >= ? AND day < ?"  # noqa: S608
)
_SUM_MEMBER_USAGE: Final[str] = (
    f"SELECT {_SUMS}, {_MEMBER_HOLDS} FROM usage_ledger WHERE guild_id = ? AND user_id = ? AND at > ?"  # noqa: S608
)
_COMMITTED_TODAY: Final[str] = (
    "SELECT CAST(COALESCE(SUM(credits_prebuilt + credits_cloned), 0) AS BIGINT) + "
    "(SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM usage_ledger WHERE guild_id = ? AND reserved > 0) "
    "FROM usage_ledger WHERE guild_id = ? AND day = ?"
)
# Every server's and the operator's own use together, for the account's daily budget.
_ACCOUNT_COMMITTED: Final[str] = (
    "SELECT CAST(COALESCE(SUM(credits_prebuilt + credits_cloned), 0) AS BIGINT) + "
    "(SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM usage_ledger WHERE reserved > 0) "
    "FROM usage_ledger WHERE day = ?"
)
# A user's spending through their user install on one UTC day, and every hold of theirs there.
_USER_COMMITTED_TODAY: Final[str] = (
    "SELECT CAST(COALESCE(SUM(credits_prebuilt + credits_cloned), 0) AS BIGINT) + "
    "(SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM usage_ledger "
    "WHERE guild_id = ? AND user_id = ? AND reserved > 0) "
    "FROM usage_ledger WHERE guild_id = ? AND user_id = ? AND day = ?"
)
# A member's spending in the window, and every hold of theirs wherever it is dated.
_MEMBER_ROWS: Final[str] = (
    "SELECT at, credits_prebuilt + credits_cloned, reserved FROM usage_ledger "
    "WHERE guild_id = ? AND user_id = ? AND (at > ? OR reserved > 0) ORDER BY at"
)
# A row whose credits a process still holds: compaction leaves it for that process to settle.
_LIVE_HOLD: Final[str] = "(reserved > 0 AND instance_id IS NOT NULL)"
# Compaction: one row per server and old day, except rows a process still holds credits for.
_MERGE_OLD_DAYS: Final[str] = (
    "INSERT INTO usage_ledger (guild_id, user_id, at, day, reserved, characters, credits_prebuilt, "  # noqa: S608
    "credits_cloned, requests, cache_hits) "
    "SELECT guild_id, NULL, MIN(at), day, 0, SUM(characters), SUM(credits_prebuilt), "
    "SUM(credits_cloned), SUM(requests), SUM(cache_hits) FROM usage_ledger "
    f"WHERE day < ? AND NOT {_LIVE_HOLD} GROUP BY guild_id, day "
    "HAVING COUNT(*) > 1 OR COUNT(user_id) > 0 OR SUM(reserved) > 0"
)
_DELETE_MERGED: Final[str] = (
    f"DELETE FROM usage_ledger WHERE id <= ? AND day < ? AND NOT {_LIVE_HOLD} AND (guild_id, day) IN "  # noqa: S608
    "(SELECT guild_id, day FROM usage_ledger WHERE id > ?)"
)
# Seconds in the rolling window of a member budget.
MEMBER_WINDOW_SECONDS: Final[int] = 3600
# A clone slot older than this belongs to an upload that never finished (the process died).
CLONE_SLOT_SECONDS: Final[int] = 15 * 60
# How long the record of an awaited voice that never came is kept, in case it still appears.
LAPSED_CLONE_SECONDS: Final[int] = 7 * 24 * 3600
_CLONED_VOICE_COLUMNS: Final[str] = "voice_id, guild_id, name, description, created_by, created_at"

_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


def clone_name_key(name: str) -> str:
    """A clone's name as a member tells names apart: without case, and with runs of spaces as one."""
    return " ".join(name.split()).casefold()


class _BoundedCache(Generic[_Key, _Value]):
    """A least-recently-used map, so a bot in many servers keeps only the active ones in memory.

    `writes` counts changes made by writers: a value loaded from the database is kept only if no write
    happened while it was being read, so a slow read can never put back what a write just replaced.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[_Key, _Value] = OrderedDict()
        self.writes = 0
        # Loads in progress, shared by every reader of the same key.
        self.loading: dict[_Key, asyncio.Future[_Value]] = {}

    def get(self, key: _Key) -> _Value | None:
        """Return the cached value, or None when it is not cached."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def put(self, key: _Key, value: _Value) -> None:
        """Cache the value a write just stored, dropping the least recently used entry when full."""
        self.writes += 1
        self._store(key, value)

    def fill(self, key: _Key, value: _Value, writes_seen: int) -> None:
        """Cache a value loaded from the database, unless a write happened since the load began."""
        if self.writes == writes_seen:
            self._store(key, value)

    def discard(self, key: _Key) -> None:
        """Forget a value, so the next read loads it from the database."""
        self.writes += 1
        self._entries.pop(key, None)

    def discard_where(self, which: Callable[[_Key], bool]) -> int:
        """Forget every value whose key matches; return how many."""
        doomed = [key for key in self._entries if which(key)]
        for key in doomed:
            del self._entries[key]
        self.writes += 1
        return len(doomed)

    def _store(self, key: _Key, value: _Value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def word_key(word: str) -> str:
    """Return the case-insensitive key under which a pronunciation's word is stored."""
    return word.strip().casefold()


def _check_type(name: str, value: object, expected: type) -> None:
    # bool is an int subclass, so it is told apart explicitly in both directions.
    if value is None:
        return
    if expected is bool:
        valid = isinstance(value, bool)
    elif expected is int:
        valid = isinstance(value, int) and not isinstance(value, bool)
    else:
        valid = isinstance(value, expected)
    if not valid:
        raise TypeError(f"{name} must be {expected.__name__} or None, not {type(value).__name__}")


def _change(name: str, value: object) -> dict[str, Any]:
    # The name was checked against the whitelist and the value against its type before this.
    return {name: value}


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes given to storage must be timezone-aware")
    return moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    # Fixed width so that the text sorts in time order.
    return _utc(moment).isoformat(timespec="microseconds")


class Storage:
    """The bot's persistent state: server settings, member preferences, pronunciations, clones, usage."""

    def __init__(self, backend: Backend, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        """Wrap an open, migrated backend; use Storage.open instead."""
        self._backend: Backend | None = backend
        self._description = backend.description
        self._guild_settings: _BoundedCache[int, GuildSettings] = _BoundedCache(cache_size)
        self._member_preferences: _BoundedCache[tuple[int, int], MemberPreferences] = _BoundedCache(cache_size)
        # Per server, every member's preferences row, read in one query: a member without one has none, so a new
        # member's first request needs no query of its own (200 new members at once: one query, not 200 in turn).
        self._preferring: _BoundedCache[int, dict[int, MemberPreferences]] = _BoundedCache(cache_size)
        self._pronunciations: _BoundedCache[int, tuple[Pronunciation, ...]] = _BoundedCache(cache_size)

    @classmethod
    async def open(cls, location: str | os.PathLike[str], *, cache_size: int = DEFAULT_CACHE_SIZE) -> Self:
        """Open and migrate the database: a SQLite file (created with its folder if needed) or a postgresql:// URL."""
        backend = await open_backend(location)
        try:
            await apply_migrations(backend)
        except BaseException:
            await backend.close()
            raise
        return cls(backend, cache_size=cache_size)

    async def close(self) -> None:
        """Close the database; the storage cannot be used afterwards."""
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Storage {self._description}>"

    @property
    def _db(self) -> Backend:
        if self._backend is None:
            raise StorageClosedError
        return self._backend

    @property
    def description(self) -> str:
        """Which database this is and where, safe to log (never a password)."""
        return self._description

    @property
    def is_local(self) -> bool:
        """Whether the database is on this machine's disk (SQLite): no call, read or write, waits on the network.

        When false (PostgreSQL), a cache miss and every ledger call (reserve_usage before a request, say) is a
        round trip: the bot acknowledges the interaction before making one.
        """
        return self._db.is_local

    def shared_audio(self) -> SharedAudioStore | None:
        """The audio cache's shared tier with PostgreSQL; None with SQLite (the local folder is the whole cache)."""
        backend = self._db
        return SharedAudioStore(backend) if backend.dialect == "postgresql" else None

    def continuity(self) -> ContinuityStore:
        """Recorded voice sessions, the processes running and their holds, and shard leases."""
        return ContinuityStore(self._db)

    async def ping(self) -> None:
        """Run a trivial query, raising if the database does not answer."""
        await self._db.fetchone("SELECT 1")

    # Caches: what a request needs in memory, so that it can be answered without a round trip

    def has_cached(self, guild_id: int, user_id: int) -> bool:
        """Whether the server's settings and pronunciations and the member's preferences are all in memory.

        Cheap and synchronous, for deciding before acknowledging an interaction whether reading them may wait
        on the network (always answered from memory when true; see is_local for the disk case).
        """
        return (
            guild_id in self._guild_settings
            and self._preferences_known(guild_id, user_id)
            and guild_id in self._pronunciations
        )

    def _preferences_known(self, guild_id: int, user_id: int) -> bool:
        return (guild_id, user_id) in self._member_preferences or guild_id in self._preferring

    async def warm(self, guild_id: int, user_id: int) -> None:
        """Load into memory what has_cached looks for (the reads run concurrently)."""
        await asyncio.gather(
            self.get_guild_settings(guild_id),
            self.get_member_preferences(guild_id, user_id),
            self.list_pronunciations(guild_id),
        )

    def forget_guilds(self, which: Callable[[int], bool]) -> int:
        """Drop the cached state of every server whose id matches (say, the servers of one shard)."""
        return (
            self._guild_settings.discard_where(which)
            + self._member_preferences.discard_where(lambda key: which(key[0]))
            + self._preferring.discard_where(which)
            + self._pronunciations.discard_where(which)
        )

    async def _cached(
        self, cache: _BoundedCache[_Key, _Value], key: _Key, load: Callable[[], Awaitable[_Value]]
    ) -> _Value:
        while True:
            value = cache.get(key)
            if value is not None:
                return value
            pending = cache.loading.get(key)
            if pending is None:
                break
            try:
                # Shielded: this reader giving up (a cancelled interaction) does not cancel the shared load.
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not pending.cancelled() or (current is not None and current.cancelling()):
                    raise
                # The reader that was loading gave up before the row came: load it again.
        # This reader loads, in its own task, so that reads and writes reach the database in the order they came;
        # readers arriving meanwhile wait for its result instead of sending the same query.
        shared: asyncio.Future[_Value] = asyncio.get_running_loop().create_future()
        cache.loading[key] = shared
        writes_seen = cache.writes
        try:
            value = await load()
        except BaseException as error:
            if cache.loading.get(key) is shared:
                del cache.loading[key]
            if isinstance(error, asyncio.CancelledError):
                shared.cancel()
            else:
                shared.set_exception(error)
                shared.exception()  # retrieved: readers waiting get it; none waiting is not an error to log
            raise
        if cache.loading.get(key) is shared:
            del cache.loading[key]
        cache.fill(key, value, writes_seen)
        shared.set_result(value)
        return value

    @asynccontextmanager
    async def _write(self, guild_id: int, forget: Callable[[], None]) -> AsyncIterator[Session]:
        # One transaction under the server's lock, so that writes to one server, from any process, run one
        # after another and each cache update follows the previous one. On any failure (cancellation included)
        # the cached entry is dropped rather than trusted, since the database may or may not hold the write.
        try:
            async with self._db.transaction(lock=guild_id) as session:
                yield session
        except BaseException:
            forget()
            raise

    # Server settings

    @staticmethod
    async def _load_guild_settings(session: Session, guild_id: int) -> GuildSettings:
        row = await session.fetchone(_SELECT_GUILD_SETTINGS, (guild_id,))
        if row is None:
            return GuildSettings(guild_id=guild_id)
        values = dict(zip(GUILD_SETTING_NAMES, row, strict=True))
        for name in _BOOLEAN_SETTINGS:
            # SQLite keeps booleans as 0 and 1.
            if values[name] is not None:
                values[name] = bool(values[name])
        return GuildSettings(guild_id=guild_id, **values)

    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """Return the server's own settings (all None when it has set nothing)."""
        return await self._cached(self._guild_settings, guild_id, lambda: self._load_guild_settings(self._db, guild_id))

    async def set_guild_setting(self, guild_id: int, name: str, value: str | int | bool | None) -> Any:
        """Set one server setting (None clears it) and return its old value."""
        if name not in _SET_GUILD_SETTING:
            raise ValueError(f"unknown server setting {name!r}; known: {', '.join(GUILD_SETTING_NAMES)}")
        _check_type(name, value, GUILD_SETTING_TYPES[name])
        async with self._write(guild_id, lambda: self._guild_settings.discard(guild_id)) as session:
            old = await self._load_guild_settings(session, guild_id)
            await session.execute(_SET_GUILD_SETTING[name], (guild_id, value))
            self._guild_settings.put(guild_id, dataclasses.replace(old, **_change(name, value)))
        return getattr(old, name)

    async def reset_guild_settings(self, guild_id: int) -> GuildSettings:
        """Clear every server setting (pronunciations stay) and return the settings as they were."""
        async with self._write(guild_id, lambda: self._guild_settings.discard(guild_id)) as session:
            old = await self._load_guild_settings(session, guild_id)
            await session.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
            self._guild_settings.put(guild_id, GuildSettings(guild_id=guild_id))
        return old

    async def clear_channel(self, guild_id: int, channel_id: int) -> bool:
        """Clear the readout channel if it is channel_id, and return whether it was."""
        return await self._clear_if_equal(guild_id, "readout_channel_id", channel_id)

    async def clear_role(self, guild_id: int, role_id: int) -> bool:
        """Clear the ignored role if it is role_id, and return whether it was."""
        return await self._clear_if_equal(guild_id, "ignore_role_id", role_id)

    async def _clear_if_equal(self, guild_id: int, name: str, value: int) -> bool:
        async with self._write(guild_id, lambda: self._guild_settings.discard(guild_id)) as session:
            old = await self._load_guild_settings(session, guild_id)
            if getattr(old, name) != value:
                self._guild_settings.put(guild_id, old)
                return False
            await session.execute(_SET_GUILD_SETTING[name], (guild_id, None))
            self._guild_settings.put(guild_id, dataclasses.replace(old, **_change(name, None)))
        return True

    # Member preferences

    @staticmethod
    async def _load_member_preferences(session: Session, guild_id: int, user_id: int) -> MemberPreferences:
        row = await session.fetchone(_SELECT_MEMBER_PREFERENCES, (guild_id, user_id))
        if row is None:
            return MemberPreferences(guild_id=guild_id, user_id=user_id)
        return MemberPreferences(
            guild_id=guild_id, user_id=user_id, **dict(zip(MEMBER_PREFERENCE_NAMES, row, strict=True))
        )

    @staticmethod
    async def _load_preferring(session: Session, guild_id: int) -> dict[int, MemberPreferences]:
        rows = await session.fetchall(_SELECT_SERVER_PREFERENCES, (guild_id,))
        return {
            int(row[0]): MemberPreferences(
                guild_id=guild_id, user_id=int(row[0]), **dict(zip(MEMBER_PREFERENCE_NAMES, row[1:], strict=True))
            )
            for row in rows
        }

    async def get_member_preferences(self, guild_id: int, user_id: int) -> MemberPreferences:
        """Return the member's own preferences in the server (all None when none are set)."""
        found = self._member_preferences.get((guild_id, user_id))
        if found is not None:
            return found
        members = await self._cached(self._preferring, guild_id, lambda: self._load_preferring(self._db, guild_id))
        return members.get(user_id) or MemberPreferences(guild_id=guild_id, user_id=user_id)

    def _forget_preferences(self, guild_id: int, user_id: int) -> None:
        self._member_preferences.discard((guild_id, user_id))
        self._preferring.discard(guild_id)

    async def set_member_preference(self, guild_id: int, user_id: int, name: str, value: str | None) -> Any:
        """Set one member preference (None clears it) and return its old value."""
        if name not in _SET_MEMBER_PREFERENCE:
            raise ValueError(f"unknown preference {name!r}; known: {', '.join(MEMBER_PREFERENCE_NAMES)}")
        _check_type(name, value, MEMBER_PREFERENCE_TYPES[name])
        key = (guild_id, user_id)
        async with self._write(guild_id, lambda: self._forget_preferences(guild_id, user_id)) as session:
            old = await self._load_member_preferences(session, guild_id, user_id)
            await session.execute(_SET_MEMBER_PREFERENCE[name], (guild_id, user_id, value))
            self._member_preferences.put(key, dataclasses.replace(old, **_change(name, value)))
            self._preferring.discard(guild_id)  # the server's rows are read again at the next miss
        return getattr(old, name)

    async def reset_member_preferences(self, guild_id: int, user_id: int) -> MemberPreferences:
        """Clear every preference of the member in the server and return them as they were."""
        key = (guild_id, user_id)
        async with self._write(guild_id, lambda: self._forget_preferences(guild_id, user_id)) as session:
            old = await self._load_member_preferences(session, guild_id, user_id)
            await session.execute(
                "DELETE FROM member_preferences WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            self._member_preferences.put(key, MemberPreferences(guild_id=guild_id, user_id=user_id))
            self._preferring.discard(guild_id)
        return old

    # Users' account-wide preferences (user installs): read from the database every time, like the ledger

    async def get_user_preferences(self, user_id: int) -> UserPreferences:
        """Return the user's account-wide preferences (all None when none are set)."""
        row = await self._db.fetchone(_SELECT_USER_PREFERENCES, (user_id,))
        if row is None:
            return UserPreferences(user_id=user_id)
        return UserPreferences(user_id=user_id, **dict(zip(USER_PREFERENCE_NAMES, row, strict=True)))

    async def set_user_preference(self, user_id: int, name: str, value: str | None) -> str | None:
        """Set one account-wide preference (None clears it) and return its old value."""
        if name not in _SET_USER_PREFERENCE:
            raise ValueError(f"unknown preference {name!r}; known: {', '.join(USER_PREFERENCE_NAMES)}")
        _check_type(name, value, str)
        async with self._db.transaction() as session:
            row = await session.fetchone(_SELECT_USER_PREFERENCES, (user_id,))
            await session.execute(_SET_USER_PREFERENCE[name], (user_id, value))
        return None if row is None else dict(zip(USER_PREFERENCE_NAMES, row, strict=True))[name]

    async def reset_user_preferences(self, user_id: int) -> UserPreferences:
        """Clear every account-wide preference of the user and return them as they were."""
        async with self._db.transaction() as session:
            row = await session.fetchone(_SELECT_USER_PREFERENCES, (user_id,))
            await session.execute("DELETE FROM user_preferences WHERE user_id = ?", (user_id,))
        if row is None:
            return UserPreferences(user_id=user_id)
        return UserPreferences(user_id=user_id, **dict(zip(USER_PREFERENCE_NAMES, row, strict=True)))

    # Pronunciations

    @staticmethod
    async def _load_pronunciations(session: Session, guild_id: int) -> tuple[Pronunciation, ...]:
        rows = await session.fetchall(
            "SELECT word, spoken FROM pronunciations WHERE guild_id = ? ORDER BY word_key, word",
            (guild_id,),
        )
        return tuple(Pronunciation(word=word, spoken=spoken) for word, spoken in rows)

    async def list_pronunciations(self, guild_id: int) -> list[Pronunciation]:
        """Return the server's pronunciation dictionary, ordered by word (case-insensitive)."""
        entries = await self._cached(
            self._pronunciations, guild_id, lambda: self._load_pronunciations(self._db, guild_id)
        )
        return list(entries)

    async def add_pronunciation(
        self, guild_id: int, word: str, spoken: str, created_by: int, *, at: datetime | None = None
    ) -> Pronunciation | None:
        """Add or replace the word's entry (blanks trimmed) and return the replaced one, if any."""
        word, spoken = word.strip(), spoken.strip()
        if not word or len(word) > MAX_WORD_LENGTH:
            raise ValueError(f"the word must have 1 to {MAX_WORD_LENGTH} characters")
        if not spoken or len(spoken) > MAX_SPOKEN_LENGTH:
            raise ValueError(f"the spoken form must have 1 to {MAX_SPOKEN_LENGTH} characters")
        created_at = _timestamp(at or datetime.now(UTC))
        key = word_key(word)
        async with self._write(guild_id, lambda: self._pronunciations.discard(guild_id)) as session:
            row = await session.fetchone(
                "SELECT word, spoken FROM pronunciations WHERE guild_id = ? AND word_key = ?", (guild_id, key)
            )
            if row is None:
                (count,) = await session.fetchone(  # type: ignore[misc]
                    "SELECT COUNT(*) FROM pronunciations WHERE guild_id = ?", (guild_id,)
                )
                if count >= MAX_PRONUNCIATIONS:
                    raise PronunciationLimitError(MAX_PRONUNCIATIONS)
            await session.execute(
                "INSERT INTO pronunciations (guild_id, word_key, word, spoken, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id, word_key) DO UPDATE SET "
                "word = excluded.word, spoken = excluded.spoken, "
                "created_by = excluded.created_by, created_at = excluded.created_at",
                (guild_id, key, word, spoken, created_by, created_at),
            )
            self._pronunciations.put(guild_id, await self._load_pronunciations(session, guild_id))
        return None if row is None else Pronunciation(word=row[0], spoken=row[1])

    async def remove_pronunciation(self, guild_id: int, word: str) -> Pronunciation | None:
        """Remove the word's entry (case-insensitive) and return it, or None if there was none."""
        key = word_key(word)
        async with self._write(guild_id, lambda: self._pronunciations.discard(guild_id)) as session:
            row = await session.fetchone(
                "DELETE FROM pronunciations WHERE guild_id = ? AND word_key = ? RETURNING word, spoken",
                (guild_id, key),
            )
            if row is not None:
                self._pronunciations.put(guild_id, await self._load_pronunciations(session, guild_id))
        return None if row is None else Pronunciation(word=row[0], spoken=row[1])

    # Cloned voices: account-wide (which server owns which voice), read from the database every time

    @staticmethod
    def _cloned_voice(row: Any) -> ClonedVoice:
        voice_id, guild_id, name, description, created_by, created_at = row
        return ClonedVoice(
            voice_id=voice_id,
            guild_id=guild_id,
            name=name,
            description=description,
            created_by=created_by,
            created_at=datetime.fromisoformat(created_at),
        )

    async def add_cloned_voice(
        self,
        voice_id: str,
        guild_id: int,
        name: str,
        description: str | None,
        created_by: int,
        created_at: datetime | None = None,
        *,
        slot_id: str | None = None,
    ) -> ClonedVoice:
        """Record a voice cloned by the server (filling its clone slot, if given) and return the record.

        A known voice_id raises ClonedVoiceExistsError.
        """
        moment = _utc(created_at or datetime.now(UTC))
        async with self._db.transaction(lock=guild_id) as session:
            # The unique voice_id decides between two processes recording the same voice: the second gets no row.
            inserted = await session.fetchone(
                f"INSERT INTO cloned_voices ({_CLONED_VOICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (voice_id) DO NOTHING RETURNING voice_id",
                (voice_id, guild_id, name, description, created_by, _timestamp(moment)),
            )
            if inserted is None:
                raise ClonedVoiceExistsError(voice_id)
            if slot_id is not None:
                await session.execute("DELETE FROM clone_slots WHERE slot_id = ?", (slot_id,))
        return ClonedVoice(
            voice_id=voice_id,
            guild_id=guild_id,
            name=name,
            description=description,
            created_by=created_by,
            created_at=moment,
        )

    async def count_cloned_voices(self, guild_id: int | None = None) -> int:
        """Return how many voices the server (or, without a server, the whole bot) has cloned."""
        if guild_id is None:
            row = await self._db.fetchone("SELECT COUNT(*) FROM cloned_voices")
        else:
            row = await self._db.fetchone("SELECT COUNT(*) FROM cloned_voices WHERE guild_id = ?", (guild_id,))
        return int(row[0]) if row is not None else 0

    @staticmethod
    async def _clone_names(session: Session, guild_id: int) -> list[str]:
        """The names of the server's clones and of its slots in use (an upload, or a voice awaited after one)."""
        rows = await session.fetchall(
            "SELECT name FROM cloned_voices WHERE guild_id = ? "
            "UNION ALL SELECT COALESCE(name, '') FROM clone_slots WHERE guild_id = ? AND lapsed_at IS NULL",
            (guild_id, guild_id),
        )
        return [str(name) for (name,) in rows]

    async def clone_names(self, guild_id: int) -> list[str]:
        """The names of the server's clones and of the clones it is making (a slot each): what its quota counts."""
        return await self._clone_names(self._db, guild_id)

    async def take_clone_slot(
        self,
        guild_id: int,
        limit: int,
        *,
        name: str | None = None,
        description: str | None = None,
        created_by: int | None = None,
        at: datetime | None = None,
    ) -> str:
        """Take one of the server's `limit` clone slots for an upload of `name`, or raise CloneQuotaError (or
        CloneNameTakenError when the server has, or is making, a clone of that name, case-insensitively).

        Clones made, uploads in flight and uploads whose voice is awaited all hold a slot; the check and the
        take are one transaction under the server's lock, so two uploads at once (in one process or two) cannot
        both take the last slot or the same name. Fill it with add_cloned_voice(slot_id=...) or give it back with
        release_clone_slot.
        """
        moment = _utc(at or datetime.now(UTC)).timestamp()
        slot_id = secrets.token_hex(16)
        async with self._db.transaction(lock=guild_id) as session:
            # An upload that never finished (its process died), unless its voice is awaited; and old records
            # of voices that never came.
            await session.execute(
                "DELETE FROM clone_slots WHERE guild_id = ? AND ((sent_at IS NULL AND taken_at < ?) OR lapsed_at < ?)",
                (guild_id, moment - CLONE_SLOT_SECONDS, moment - LAPSED_CLONE_SECONDS),
            )
            names = await self._clone_names(session, guild_id)
            if len(names) >= limit:
                raise CloneQuotaError(len(names), limit)
            if name is not None and clone_name_key(name) in {clone_name_key(taken) for taken in names}:
                raise CloneNameTakenError(name)
            await session.execute(
                "INSERT INTO clone_slots (slot_id, guild_id, taken_at, name, description, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (slot_id, guild_id, moment, name, description, created_by),
            )
        return slot_id

    async def release_clone_slot(self, slot_id: str) -> None:
        """Give back a clone slot whose upload did not make a voice (or forget an awaited voice's record)."""
        await self._db.execute("DELETE FROM clone_slots WHERE slot_id = ?", (slot_id,))

    async def await_clone(self, slot_id: str, sent_at: datetime) -> None:
        """The slot's upload, sent at `sent_at`, timed out: keep the slot and its name for the voice it may make."""
        await self._db.execute(
            "UPDATE clone_slots SET sent_at = ? WHERE slot_id = ? AND sent_at IS NULL",
            (_utc(sent_at).timestamp(), slot_id),
        )

    async def awaited_clones(self) -> list[AwaitedClone]:
        """Every upload whose voice is awaited, or whose slot lapsed and whose voice may still appear; oldest first."""
        rows = await self._db.fetchall(
            "SELECT slot_id, guild_id, name, description, created_by, sent_at, lapsed_at FROM clone_slots "
            "WHERE sent_at IS NOT NULL ORDER BY sent_at, slot_id"
        )
        return [
            AwaitedClone(
                slot_id=slot_id,
                guild_id=guild_id,
                name=name or "",
                description=description,
                created_by=created_by or 0,
                sent_at=datetime.fromtimestamp(sent_at, UTC),
                lapsed_at=None if lapsed_at is None else datetime.fromtimestamp(lapsed_at, UTC),
            )
            for slot_id, guild_id, name, description, created_by, sent_at, lapsed_at in rows
        ]

    async def lapse_clone(self, slot_id: str, *, at: datetime | None = None) -> bool:
        """A clone list fetched long enough after the upload lacks its voice: free the slot and the name, keeping
        the record for a voice that appears late. False if it was not awaited any more."""
        changed = await self._db.execute(
            "UPDATE clone_slots SET lapsed_at = ? WHERE slot_id = ? AND sent_at IS NOT NULL AND lapsed_at IS NULL",
            (_utc(at or datetime.now(UTC)).timestamp(), slot_id),
        )
        return changed > 0

    async def adopt_clone(
        self, awaited: AwaitedClone, voice_id: str, limit: int, *, created_at: datetime | None = None
    ) -> ClonedVoice | None:
        """Record a voice found in Unmixr's list as the awaited upload's clone, in its slot; None if another
        process settled that upload first.

        A lapsed upload holds no slot any more: the voice is recorded only if the server has a slot free and the
        name is still its own (else CloneQuotaError or CloneNameTakenError, and the record is dropped). A voice
        already recorded raises ClonedVoiceExistsError.
        """
        moment = _utc(created_at or datetime.now(UTC))
        refusal: StorageError | None = None
        async with self._db.transaction(lock=awaited.guild_id) as session:
            row = await session.fetchone("SELECT lapsed_at FROM clone_slots WHERE slot_id = ?", (awaited.slot_id,))
            if row is None:
                return None
            if row[0] is not None:
                # Dropped either way (committed even when refused), so the voice is reported once, not at every
                # refresh.
                await session.execute("DELETE FROM clone_slots WHERE slot_id = ?", (awaited.slot_id,))
                names = await self._clone_names(session, awaited.guild_id)
                if len(names) >= limit:
                    refusal = CloneQuotaError(len(names), limit)
                elif clone_name_key(awaited.name) in {clone_name_key(taken) for taken in names}:
                    refusal = CloneNameTakenError(awaited.name)
            if refusal is None:
                inserted = await session.fetchone(
                    f"INSERT INTO cloned_voices ({_CLONED_VOICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
                    "ON CONFLICT (voice_id) DO NOTHING RETURNING voice_id",
                    (
                        voice_id,
                        awaited.guild_id,
                        awaited.name,
                        awaited.description,
                        awaited.created_by,
                        _timestamp(moment),
                    ),
                )
                if inserted is None:
                    raise ClonedVoiceExistsError(voice_id)
                await session.execute("DELETE FROM clone_slots WHERE slot_id = ?", (awaited.slot_id,))
        if refusal is not None:
            raise refusal
        return ClonedVoice(
            voice_id=voice_id,
            guild_id=awaited.guild_id,
            name=awaited.name,
            description=awaited.description,
            created_by=awaited.created_by,
            created_at=moment,
        )

    async def list_cloned_voices(self, guild_id: int) -> list[ClonedVoice]:
        """Return the voices cloned by the server, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {_CLONED_VOICE_COLUMNS} FROM cloned_voices "  # noqa: S608
            "WHERE guild_id = ? ORDER BY created_at, voice_id",
            (guild_id,),
        )
        return [self._cloned_voice(row) for row in rows]

    async def get_cloned_voice(self, voice_id: str) -> ClonedVoice | None:
        """Return the cloned voice with this id (whichever server made it), or None."""
        row = await self._db.fetchone(
            f"SELECT {_CLONED_VOICE_COLUMNS} FROM cloned_voices WHERE voice_id = ?",  # noqa: S608
            (voice_id,),
        )
        return None if row is None else self._cloned_voice(row)

    async def remove_cloned_voice(self, voice_id: str) -> ClonedVoice | None:
        """Forget a cloned voice (when Unmixr no longer has it) and return it, or None if unknown."""
        row = await self._db.fetchone(
            f"DELETE FROM cloned_voices WHERE voice_id = ? RETURNING {_CLONED_VOICE_COLUMNS}",  # noqa: S608
            (voice_id,),
        )
        return None if row is None else self._cloned_voice(row)

    # Usage: one ledger row per request, reserved before anything is spent and settled chunk by chunk

    async def record_usage(
        self,
        guild_id: int,
        *,
        characters: int,
        credits_prebuilt: int,
        credits_cloned: int,
        cache_hit: bool,
        at: datetime | None = None,
        user_id: int | None = None,
    ) -> None:
        """Add one settled request to the server's usage at `at` (now by default)."""
        if min(characters, credits_prebuilt, credits_cloned) < 0:
            raise ValueError("usage amounts cannot be negative")
        moment = _utc(at or datetime.now(UTC))
        parameters = (
            guild_id,
            user_id,
            moment.timestamp(),
            moment.date().isoformat(),
            0,
            characters,
            credits_prebuilt,
            credits_cloned,
            1,
            int(cache_hit),
            None,
        )
        # One statement is its own atomic transaction.
        await self._db.fetchone(_INSERT_LEDGER, parameters)

    async def insert_usage(
        self,
        guild_id: int,
        user_id: int | None,
        *,
        at: datetime,
        reserved: int,
        characters: int,
        credits_prebuilt: int,
        credits_cloned: int,
        requests: int,
        cache_hits: int,
        instance_id: str | None = None,
    ) -> int:
        """Write one request's ledger row as it stands (a hold, what it spent, or both) and return its id.

        For a request that nothing could refuse (no budget applies): its row is written once, after its answer.
        `instance_id` is the process holding what it still holds, as in reserve_usage.
        """
        if min(reserved, characters, credits_prebuilt, credits_cloned, requests, cache_hits) < 0:
            raise ValueError("usage amounts cannot be negative")
        moment = _utc(at)
        row = (
            guild_id,
            user_id,
            moment.timestamp(),
            moment.date().isoformat(),
            reserved,
            characters,
            credits_prebuilt,
            credits_cloned,
            requests,
            cache_hits,
            instance_id,
        )
        (ticket,) = await self._db.fetchone(_INSERT_LEDGER, row)  # type: ignore[misc]
        return int(ticket)

    async def reserve_usage(
        self,
        guild_id: int,
        user_id: int | None,
        *,
        amount: int,
        cache_hits: int = 0,
        server_budget: int | None = None,
        member_budget: int | None = None,
        account_budget: int | None = None,
        at: datetime | None = None,
        instance_id: str | None = None,
    ) -> int:
        """Hold `amount` credits for one request and return its ledger id, or raise BudgetExceededError.

        The check and the hold are one transaction under the server's lock (and, with an account budget, the
        account's), so concurrent requests, from one process or several, cannot overshoot a budget together
        (SQLite: one writer at a time; PostgreSQL: advisory locks, after which the sums see every hold committed
        before). `cache_hits` chunks are counted as served from cache. The server budget and the account budget
        (every server and the operator's own use together) are per UTC day; the member budget per rolling hour.
        Spending counts from the moment it was charged, a hold for as long as it is open. A request of 0
        credits is never refused. `instance_id` is the process holding the credits (None: an operator's tool).
        """
        if amount < 0 or cache_hits < 0:
            raise ValueError("usage amounts cannot be negative")
        moment = _utc(at or datetime.now(UTC))
        day = moment.date().isoformat()
        row = (guild_id, user_id, moment.timestamp(), day, amount, 0, 0, 0, cache_hits, cache_hits, instance_id)
        member_checked = member_budget is not None and user_id is not None
        if amount == 0 or (server_budget is None and not member_checked and account_budget is None):
            # Nothing to check: one statement is atomic on its own (the /say hot path without budgets).
            (ticket,) = await self._db.fetchone(_INSERT_LEDGER, row)  # type: ignore[misc]
            return int(ticket)
        midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
        # The account's lock is always taken after a server's, so two transactions never wait on each other.
        locks = (guild_id,) if account_budget is None else (guild_id, ACCOUNT_LOCK)
        async with self._db.transaction(lock=locks) as session:
            if server_budget is not None:
                (used,) = await session.fetchone(_COMMITTED_TODAY, (guild_id, guild_id, day))  # type: ignore[misc]
                if used + amount > server_budget:
                    raise BudgetExceededError(
                        kind="server",
                        budget=server_budget,
                        used=int(used),
                        amount=amount,
                        frees_at=midnight if amount <= server_budget else None,
                    )
            if account_budget is not None:
                (used,) = await session.fetchone(_ACCOUNT_COMMITTED, (day,))  # type: ignore[misc]
                if used + amount > account_budget:
                    raise BudgetExceededError(
                        kind="account",
                        budget=account_budget,
                        used=int(used),
                        amount=amount,
                        frees_at=midnight if amount <= account_budget else None,
                    )
            if member_budget is not None and user_id is not None:
                since = moment.timestamp() - MEMBER_WINDOW_SECONDS
                rows = await session.fetchall(_MEMBER_ROWS, (guild_id, user_id, since))
                spent = [(float(when), int(credits)) for when, credits, _held in rows if when > since and credits]
                held = sum(int(reserved) for _when, _credits, reserved in rows)
                used = sum(credits for _when, credits in spent) + held
                if used + amount > member_budget:
                    raise BudgetExceededError(
                        kind="member",
                        budget=member_budget,
                        used=used,
                        amount=amount,
                        frees_at=_member_frees_at(spent, used, amount, member_budget, moment),
                    )
            (ticket,) = await session.fetchone(_INSERT_LEDGER, row)  # type: ignore[misc]
        return int(ticket)

    async def reserve_user_install_usage(
        self,
        user_id: int,
        *,
        amount: int,
        cache_hits: int = 0,
        user_budget: int,
        total_budget: int,
        account_budget: int | None = None,
        at: datetime | None = None,
        instance_id: str | None = None,
    ) -> int:
        """Hold `amount` credits for one request made through the user's own install and return its ledger id, or
        raise BudgetExceededError: "user" (the user's daily budget), "users" (every user's together) or "account".

        Every budget here is per UTC day; the check and the hold are one transaction under the user installs' lock
        (and the account's), so concurrent requests cannot overshoot together. A request of 0 credits is never
        refused. `instance_id` is the process holding the credits, as in reserve_usage.
        """
        if amount < 0 or cache_hits < 0:
            raise ValueError("usage amounts cannot be negative")
        moment = _utc(at or datetime.now(UTC))
        day = moment.date().isoformat()
        row = (USER_INSTALLS, user_id, moment.timestamp(), day, amount, 0, 0, 0, cache_hits, cache_hits, instance_id)
        if amount == 0:
            (ticket,) = await self._db.fetchone(_INSERT_LEDGER, row)  # type: ignore[misc]
            return int(ticket)
        midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
        locks = (USER_INSTALL_LOCK,) if account_budget is None else (USER_INSTALL_LOCK, ACCOUNT_LOCK)
        async with self._db.transaction(lock=locks) as session:
            checks: list[tuple[str, int | None, str, tuple[Any, ...]]] = [
                ("user", user_budget, _USER_COMMITTED_TODAY, (USER_INSTALLS, user_id, USER_INSTALLS, user_id, day)),
                ("users", total_budget, _COMMITTED_TODAY, (USER_INSTALLS, USER_INSTALLS, day)),
                ("account", account_budget, _ACCOUNT_COMMITTED, (day,)),
            ]
            for kind, budget, query, parameters in checks:
                if budget is None:
                    continue
                (used,) = await session.fetchone(query, parameters)  # type: ignore[misc]
                if used + amount > budget:
                    raise BudgetExceededError(
                        kind=kind,
                        budget=budget,
                        used=int(used),
                        amount=amount,
                        frees_at=midnight if amount <= budget else None,
                    )
            (ticket,) = await session.fetchone(_INSERT_LEDGER, row)  # type: ignore[misc]
        return int(ticket)

    async def user_install_usage(self, day: date, user_id: int | None = None) -> int:
        """What one user (or, without one, every user) spent through user installs on a UTC day, plus open holds."""
        parameters: tuple[Any, ...]
        if user_id is None:
            query, parameters = _COMMITTED_TODAY, (USER_INSTALLS, USER_INSTALLS, day.isoformat())
        else:
            query = _USER_COMMITTED_TODAY
            parameters = (USER_INSTALLS, user_id, USER_INSTALLS, user_id, day.isoformat())
        row = await self._db.fetchone(query, parameters)
        assert row is not None  # an aggregate always returns one row
        return int(row[0])

    async def settle_usage(
        self,
        ticket: int,
        *,
        release: int = 0,
        characters: int = 0,
        credits_prebuilt: int = 0,
        credits_cloned: int = 0,
        requests: int = 0,
        cache_hits: int = 0,
        charged_at: datetime | None = None,
        apart: bool = False,
    ) -> None:
        """Apply what happened to part of a reserved request: `release` credits are no longer held, and the
        spent credits, characters, requests and cache hits are added (cache_hits may be -1 to take back a
        chunk first counted as cached that had to be synthesised after all).

        With `charged_at`, the spending counts from that moment: the request's row moves there (its last
        charge), or, `apart`, the spending gets a row of its own there while other chunks of the request still
        hold (one transaction, so the hold is never given back without the spending being recorded).
        """
        if min(release, characters, credits_prebuilt, credits_cloned, requests) < 0:
            raise ValueError("usage amounts cannot be negative")
        if charged_at is None:
            parameters = (release, release, characters, credits_prebuilt, credits_cloned, requests, cache_hits, ticket)
            await self._db.run(_SETTLE_LEDGER, parameters)
            return
        moment = _utc(charged_at)
        when, day = moment.timestamp(), moment.date().isoformat()
        spent = (characters, credits_prebuilt, credits_cloned, requests)
        if not apart:
            await self._db.run(_CHARGE_LEDGER, (release, release, *spent, cache_hits, when, day, ticket))
            return
        async with self._db.transaction() as session:
            await session.execute(_CHARGE_APART, (when, day, *spent, ticket))
            await session.execute(_SETTLE_LEDGER, (release, release, 0, 0, 0, 0, cache_hits, ticket))

    async def _sum_usage(self, sql: str, parameters: tuple[Any, ...]) -> Usage:
        row = await self._db.fetchone(sql, parameters)
        assert row is not None  # an aggregate always returns one row
        characters, credits_prebuilt, credits_cloned, requests, cache_hits, reserved = (int(value) for value in row)
        return Usage(
            characters=characters,
            credits_prebuilt=credits_prebuilt,
            credits_cloned=credits_cloned,
            requests=requests,
            cache_hits=cache_hits,
            reserved=reserved,
        )

    async def usage_for_day(self, guild_id: int, day: date) -> Usage:
        """Return what the server spent on one UTC day, and what it holds that was held by that day's end."""
        end = (day + timedelta(days=1)).isoformat()
        return await self._sum_usage(_SUM_USAGE, (end, guild_id, guild_id, day.isoformat(), end))

    async def usage_for_month(self, guild_id: int, year: int, month: int) -> Usage:
        """Return what the server spent in one UTC calendar month, and what it holds that was held by its end."""
        start = date(year, month, 1)
        end = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)).isoformat()
        return await self._sum_usage(_SUM_USAGE, (end, guild_id, guild_id, start.isoformat(), end))

    async def member_usage(self, guild_id: int, user_id: int, *, at: datetime | None = None) -> Usage:
        """Return what the member spent in the server in the 60 minutes before `at` (now by default), and what
        they hold now."""
        since = _utc(at or datetime.now(UTC)).timestamp() - MEMBER_WINDOW_SECONDS
        return await self._sum_usage(_SUM_MEMBER_USAGE, (guild_id, user_id, guild_id, user_id, since))

    async def account_usage(self, day: date) -> int:
        """Return what every server and the operator spent on one UTC day, plus every hold open now."""
        row = await self._db.fetchone(_ACCOUNT_COMMITTED, (day.isoformat(),))
        assert row is not None  # an aggregate always returns one row
        return int(row[0])

    async def compact_usage(self, before: date) -> int:
        """Merge the ledger rows of days before `before` into one row per server and day; return rows removed.

        Budgets only look at today and the last hour; /balance needs days and months. A row still holding
        credits for a process is left as it is, however old: the process may still settle it (or, once it falls
        silent, its holds are released and the row is merged next time); held credits of rows made by no process
        (an operator's tool, or before processes were recorded) were never confirmed as spent, so they are
        dropped here. Every process runs this now and then: the compaction lock makes a second run wait for the
        first and then find nothing left to merge, instead of merging the same rows twice.
        """
        async with self._db.transaction(lock=COMPACTION_LOCK) as session:
            (last_id,) = await session.fetchone("SELECT COALESCE(MAX(id), 0) FROM usage_ledger")  # type: ignore[misc]
            await session.execute(_MERGE_OLD_DAYS, (before.isoformat(),))
            removed = await session.execute(_DELETE_MERGED, (last_id, before.isoformat(), last_id))
        return removed

    # Low-balance alerts

    async def claim_alert(self, kind: str, day: date, *, at: datetime | None = None) -> bool:
        """Record that the `kind` alert is being sent for `day`; False if it already was (by any process)."""
        moment = _utc(at or datetime.now(UTC))
        row = await self._db.fetchone(
            "INSERT INTO alerts_sent (kind, day, sent_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING kind",
            (kind, day.isoformat(), moment.timestamp()),
        )
        return row is not None

    async def release_alert(self, kind: str, day: date) -> None:
        """Forget that the `kind` alert was sent for `day` (its message could not be posted after all)."""
        await self._db.execute("DELETE FROM alerts_sent WHERE kind = ? AND day = ?", (kind, day.isoformat()))


def _member_frees_at(
    spent: list[tuple[float, int]], used: int, amount: int, budget: int, moment: datetime
) -> datetime | None:
    """When enough of a member's spending is 60 minutes old for `amount` more to fit, or None if it never can.

    `spent` is the spending in the window, oldest first; the rest of `used` is held, and a hold counts until it
    is charged and then for an hour: at the earliest an hour from now, if that is what stands in the way.
    """
    if amount > budget:
        return None
    remaining = used
    for at, credits in spent:
        remaining -= credits
        if remaining + amount <= budget:
            return datetime.fromtimestamp(at + MEMBER_WINDOW_SECONDS, UTC)
    return moment + timedelta(seconds=MEMBER_WINDOW_SECONDS)
