"""The two databases behind Storage: a SQLite file (one process) or PostgreSQL (several processes sharing it).

Storage speaks one set of SQL with `?` placeholders; each backend runs it, PostgreSQL after turning `?` into
`$1, $2...`. Both offer the same few primitives: single statements (`fetchone`, `fetchall`, `execute`, each
its own transaction) and `transaction(lock=...)`, inside which the same primitives run on one connection.
The `lock` is a number (a server's id) that serialises the transactions holding it across every process
sharing the database: SQLite gets that from BEGIN IMMEDIATE (one writer at a time), PostgreSQL from
`pg_advisory_xact_lock`, released when the transaction ends. Migrations run inside `migrating()`, which on
PostgreSQL holds one session lock for the whole run, so processes starting at once migrate one after another.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import aiosqlite
import asyncpg

from bot.masking import mask_secrets
from bot.storage.errors import DatabaseUnavailableError, MigrationError, StorageClosedError, StorageError

MEMORY: Final[str] = ":memory:"
POSTGRES_SCHEMES: Final[tuple[str, ...]] = ("postgresql://", "postgres://")
# Shown instead of the password wherever a database URL is printed (the same mark as bot.logs uses).
MASK: Final[str] = "[redacted]"
# Query parameters of a database URL that asyncpg reads a secret from (its connect_utils), in lower case.
_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword", "passfile"})
# Connections one process keeps to PostgreSQL: enough for a burst of requests, few enough for many processes.
POOL_SIZE: Final[int] = 10
CONNECT_TIMEOUT_SECONDS: Final[float] = 10.0
# Longer than any statement of ours takes, shorter than an interaction may wait for its answer.
STATEMENT_TIMEOUT_SECONDS: Final[float] = 15.0
# Advisory-lock numbers that are not a server's id (ids are positive snowflakes).
MIGRATION_LOCK: Final[int] = -1
COMPACTION_LOCK: Final[int] = -2
# How long a starting process waits for another one's migrations (a big one may copy a table).
MIGRATION_WAIT_SECONDS: Final[float] = 300.0
# Taken, after a server's, by reservations checked against the account's daily budget.
ACCOUNT_LOCK: Final[int] = -3
# Taken by every reservation made through a user install (before the account's): their total budget is shared.
USER_INSTALL_LOCK: Final[int] = -4
# Taken by a process checking and taking a shard's lease, so two processes never take overlapping shards at once.
LEASE_LOCK: Final[int] = -5
# How long a SQLite connection waits for another one's lock, in ms (also bounds the switch to WAL below).
SQLITE_BUSY_TIMEOUT_MS: Final[int] = 5000
SQLITE_WAL_RETRY_SECONDS: Final[float] = 0.02

Row = Sequence[Any]


class Session(Protocol):
    """Statements run on one connection (inside a transaction, or each alone)."""

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """Run a statement and return its first row, or None."""
        ...

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Run a statement and return every row."""
        ...

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run a statement and return how many rows it changed."""
        ...


class Migrator(Protocol):
    """Reads and applies migrations while the database is held for them (Backend.migrating)."""

    async def schema_version(self) -> int:
        """The number of the last migration applied."""
        ...

    async def migrate(self, version: int, script: str) -> bool:
        """Apply one migration and record its version, in one transaction; False if it was already applied."""
        ...


def is_postgres_url(location: object) -> bool:
    """Whether a database location is a postgresql:// URL rather than a SQLite path."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def url_password(url: str) -> str | None:
    """The password in a database URL (decoded), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def url_secrets(url: str) -> list[str]:
    """Every form in which a database URL's secrets may appear in text, for masking.

    asyncpg takes a password from the userinfo (`user:password@`) or from a `password` query parameter, a client
    key's password from `sslpassword`, and a file of passwords from `passfile` (its path is masked too); each
    is listed as written and decoded (percent-escapes, and `+` for a space as query strings have it). A URL
    that cannot be read is a secret whole.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    forms: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        whole = userinfo.partition(":")[2]
        # asyncpg splits at the first "@" where urllib splits at the last: both readings are masked.
        forms |= {whole, whole.partition("@")[0]}
    for piece in parts.query.split("&"):
        name, equals, value = piece.partition("=")
        if equals and unquote_plus(name).lower() in _SECRET_PARAMETERS:
            forms.add(value)
    decoded = {variant for form in forms for variant in (unquote(form), unquote_plus(form))}
    return sorted(form for form in forms | decoded if form)


def mask_url(url: str) -> str:
    """The URL with every secret (see url_secrets) replaced by a mark, for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}{at}{host}"
    pieces = []
    for piece in parts.query.split("&") if parts.query else []:
        name, equals, _ = piece.partition("=")
        pieces.append(f"{name}={MASK}" if equals and unquote_plus(name).lower() in _SECRET_PARAMETERS else piece)
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(pieces)))


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """Turn `?` placeholders (outside string literals and quoted names) into PostgreSQL's `$1, $2...`."""
    parts: list[str] = []
    number = 0
    quote: str | None = None
    for character in sql:
        if quote is not None:
            if character == quote:
                quote = None
        elif character in "'\"":
            quote = character
        elif character == "?":
            number += 1
            parts.append(f"${number}")
            continue
        parts.append(character)
    return "".join(parts)


class Backend(ABC):
    """One database, opened and migrated: statements, transactions and the schema version."""

    dialect: ClassVar[str]
    # Whether reading it needs no network: a SQLite file is on local disk.
    is_local: ClassVar[bool]
    # The database's own clock in epoch seconds, as SQL: one clock for every process sharing the database.
    now_sql: ClassVar[str]

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the data lives, safe to log (no password)."""

    @abstractmethod
    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """Run one statement on its own and return its first row, or None."""

    @abstractmethod
    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Run one statement on its own and return every row."""

    @abstractmethod
    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one statement on its own and return how many rows it changed."""

    async def run(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        """Run one statement on its own when nobody needs to know how many rows it changed."""
        await self.execute(sql, parameters)

    @abstractmethod
    def transaction(self, *, lock: int | tuple[int, ...] | None = None) -> Any:
        """An async context manager yielding a Session whose statements commit together or not at all.

        Transactions given the same `lock` run one after another, across every process using the database;
        several locks are taken in the order given (always give them in the same order).
        """

    @abstractmethod
    async def schema_version(self) -> int:
        """The number of the last migration applied."""

    @abstractmethod
    async def migrate(self, version: int, script: str) -> bool:
        """Apply one migration and record its version, in one transaction; False if it was already applied."""

    def migrating(self) -> AbstractAsyncContextManager[Migrator]:
        """Hold the database for a run of migrations, yielding what reads the version and applies them.

        On PostgreSQL other processes wait until the run ends; a SQLite file is held one migration at a time
        (BEGIN IMMEDIATE), each rechecking the version, which is enough for the processes of one machine.
        """
        return _Unheld(self)

    @abstractmethod
    async def close(self) -> None:
        """Close every connection; the backend cannot be used afterwards."""


class _Unheld(AbstractAsyncContextManager[Migrator]):
    def __init__(self, migrator: Migrator) -> None:
        self._migrator = migrator

    async def __aenter__(self) -> Migrator:
        return self._migrator

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _SQLiteSession:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, parameters)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        # One trip to the connection's thread (execute, fetch and close together) instead of three.
        return [tuple(row) for row in await self._connection.execute_fetchall(sql, tuple(parameters))]

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        async with self._connection.execute(sql, tuple(parameters)) as cursor:
            return max(cursor.rowcount, 0)


async def _switch_to_wal(connection: aiosqlite.Connection) -> None:
    """Put the file in WAL mode, waiting out other processes opening the same new file at the same moment.

    The switch needs the file to itself and SQLite answers "database is locked" at once instead of calling
    the busy handler, so two processes starting together on a fresh file would otherwise fail to start.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            return
        except aiosqlite.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(SQLITE_WAL_RETRY_SECONDS)


class SQLiteBackend(Backend):
    """A SQLite file in WAL mode through one aiosqlite connection (its own thread)."""

    dialect = "sqlite"
    is_local = True
    # One machine's clock (a SQLite file is shared only by the processes of one machine).
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, connection: aiosqlite.Connection, location: str) -> None:
        self._connection: aiosqlite.Connection | None = connection
        self._location = location
        # One connection runs one statement at a time; the lock keeps a transaction's statements together.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SQLiteBackend:
        """Open (creating it and its folder if needed) the SQLite file at path."""
        location = os.fspath(path)
        if location != MEMORY:
            await asyncio.to_thread(Path(location).parent.mkdir, parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and ended explicitly, never implicitly.
        connection = await aiosqlite.connect(location, isolation_level=None)
        try:
            await connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
            await _switch_to_wal(connection)
            await connection.execute("PRAGMA foreign_keys = ON")
            # Safe from corruption in WAL mode; only the last commits may be lost on power failure.
            await connection.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await connection.close()
            raise
        return cls(connection, location)

    @property
    def description(self) -> str:
        return f"SQLite at {self._location}"

    @property
    def connection(self) -> aiosqlite.Connection:
        """The open connection (for SQLite-only maintenance and tests)."""
        if self._connection is None:
            raise StorageClosedError
        return self._connection

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        async with self._lock:
            return await _SQLiteSession(self.connection).fetchone(sql, parameters)

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            return await _SQLiteSession(self.connection).fetchall(sql, parameters)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await _SQLiteSession(self.connection).execute(sql, parameters)

    async def run(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        # One trip to the connection's thread; `execute` makes two (the statement, then closing its cursor).
        async with self._lock:
            await self.connection.execute_fetchall(sql, tuple(parameters))

    @asynccontextmanager
    async def transaction(self, *, lock: int | tuple[int, ...] | None = None) -> AsyncIterator[Session]:
        # `lock` needs nothing more here: BEGIN IMMEDIATE already admits one writer at a time to the file.
        async with self._lock:
            connection = self.connection
            try:
                await connection.execute("BEGIN IMMEDIATE")
                yield _SQLiteSession(connection)
                await connection.commit()
            except BaseException:
                # Not guarded by in_transaction: a cancelled BEGIN or COMMIT may still be queued on the
                # connection's thread, and the rollback runs after it there (a no-op without a transaction).
                await connection.rollback()
                raise

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row is not None else 0

    async def migrate(self, version: int, script: str) -> bool:
        async with self._lock:
            connection = self.connection
            try:
                await connection.execute("BEGIN IMMEDIATE")
                # Read under the write lock: another process sharing the file may have gone further since our
                # last read. A script that cannot fail (one with nothing for SQLite) would otherwise succeed
                # again and move the version back.
                async with connection.execute("PRAGMA user_version") as cursor:
                    row = await cursor.fetchone()
                if row is not None and int(row[0]) >= version:
                    await connection.rollback()
                    return False
                # One statement at a time: executescript would commit the transaction this holds first.
                for statement in _statements(script):
                    await connection.execute(statement)
                # The version is one of our own integers, never outside input; PRAGMA takes no parameters.
                await connection.execute(f"PRAGMA user_version = {version:d}")
                await connection.commit()
            except Exception as error:
                if connection.in_transaction:
                    await connection.rollback()
                raise MigrationError(version) from error
        return True

    async def close(self) -> None:
        async with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, each whole (a trigger's inner semicolons included)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            # Drop what is only blanks and comments: nothing to run.
            if any(line.strip() and not line.strip().startswith("--") for line in pending.rstrip(";").splitlines()):
                statements.append(pending)
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError("a migration script ends inside a statement")
    return statements


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3" or "INSERT 0 1": the count is the last word.
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresSession:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        return await self._connection.fetchrow(to_postgres(sql), *parameters)  # type: ignore[no-any-return]

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return list(await self._connection.fetch(to_postgres(sql), *parameters))

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        return _rowcount(await self._connection.execute(to_postgres(sql), *parameters))


async def _keep_session_state(_connection: asyncpg.Connection) -> None:
    """Hand a connection back to the pool as it is.

    asyncpg's default reset (RESET ALL, UNLISTEN, unlock advisory locks) is a round trip on every release;
    Storage changes no session state and takes only transaction-level locks, which end with the transaction
    (asyncpg still rolls back a transaction left open).
    """


class PostgresBackend(Backend):
    """PostgreSQL through an asyncpg connection pool, shared with the other processes of the bot."""

    dialect = "postgresql"
    is_local = False
    # clock_timestamp(), not now(): the time of the statement, not of its transaction's start.
    now_sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"

    def __init__(self, pool: asyncpg.Pool, description: str) -> None:
        self._pool: asyncpg.Pool | None = pool
        self._description = description

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int = POOL_SIZE, statement_timeout: float = STATEMENT_TIMEOUT_SECONDS
    ) -> PostgresBackend:
        """Connect to the database at url (postgresql://user:password@host:port/database)."""
        masked = mask_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=statement_timeout,
                reset=_keep_session_state,
                server_settings={"application_name": "unmixr-discord"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            # `from None`: the driver's exception is not chained, so no traceback can carry the URL along.
            raise DatabaseUnavailableError(masked, _masked_reason(error, url)) from None
        return cls(pool, f"PostgreSQL at {masked}")

    @property
    def description(self) -> str:
        return self._description

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool (for bulk copies such as migrate-db)."""
        if self._pool is None:
            raise StorageClosedError
        return self._pool

    async def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        return await self.pool.fetchrow(to_postgres(sql), *parameters)  # type: ignore[no-any-return]

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return list(await self.pool.fetch(to_postgres(sql), *parameters))

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        return _rowcount(await self.pool.execute(to_postgres(sql), *parameters))

    @asynccontextmanager
    async def transaction(self, *, lock: int | tuple[int, ...] | None = None) -> AsyncIterator[Session]:
        async with self.pool.acquire() as connection, connection.transaction():
            for key in (lock,) if isinstance(lock, int) else lock or ():
                # Waits for any other transaction holding it, in any process; released at COMMIT or ROLLBACK.
                # Statements after this one see what that transaction committed (READ COMMITTED).
                await connection.execute("SELECT pg_advisory_xact_lock($1)", key)
            yield _PostgresSession(connection)

    async def schema_version(self) -> int:
        async with self.pool.acquire() as connection:
            return await _recorded_version(connection)

    async def migrate(self, version: int, script: str) -> bool:
        async with self.pool.acquire() as connection:
            return await _migrate(connection, version, script)

    @asynccontextmanager
    async def migrating(self) -> AsyncIterator[Migrator]:
        async with self.pool.acquire() as connection:
            # A session lock over the whole run, each migration still committing on its own: one process
            # migrates while the others wait, and each reads the version under the lock, so none acts on a
            # version another is changing (an older process then sees the newer schema and refuses it).
            try:
                await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK, timeout=MIGRATION_WAIT_SECONDS)
            except TimeoutError:
                raise StorageError(
                    f"Another process has been migrating the database for over {MIGRATION_WAIT_SECONDS:.0f} s; "
                    "start this one again once it has finished"
                ) from None
            try:
                yield _PostgresMigrator(connection)
            finally:
                try:
                    await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
                except BaseException:
                    # The pool keeps session state as it is: a connection still holding the lock must not
                    # go back to it. Closing the session releases the lock.
                    connection.terminate()
                    raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


class _PostgresMigrator:
    """Migrations on the one connection that holds the migration lock."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def schema_version(self) -> int:
        return await _recorded_version(self._connection)

    async def migrate(self, version: int, script: str) -> bool:
        return await _migrate(self._connection, version, script)


async def _migrate(connection: asyncpg.Connection, version: int, script: str) -> bool:
    async with connection.transaction():
        # Also taken here for a migration applied outside migrating(); the session holding it already passes.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        if await _recorded_version(connection) >= version:
            return False
        try:
            # No parameters: the script's statements run together in the simple query protocol.
            await connection.execute(script)
        except asyncpg.PostgresError as error:
            raise MigrationError(version) from error
        await connection.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version, time.time()
        )
    return True


async def _recorded_version(connection: asyncpg.Connection) -> int:
    # PostgreSQL has no PRAGMA user_version: the versions applied are rows of schema_migrations.
    if await connection.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


def _masked_reason(error: BaseException, url: str) -> str:
    reason = (str(error) or type(error).__name__).replace(url, mask_url(url))
    return mask_secrets(reason, url_secrets(url))


async def open_backend(location: str | os.PathLike[str]) -> Backend:
    """Open the database at a SQLite path or a postgresql:// URL."""
    if is_postgres_url(location):
        return await PostgresBackend.open(str(location))
    return await SQLiteBackend.open(location)
