"""Opening the database: folder creation, pragmas, numbered migrations and the schema version, on both databases."""

import asyncio
from pathlib import Path

import asyncpg
import pytest

from bot.storage import LATEST_VERSION, MigrationError, SchemaVersionError, Storage
from bot.storage.backends import MIGRATION_LOCK, SQLiteBackend, open_backend
from bot.storage.migrations import MIGRATIONS, Migration, apply_migrations
from tests.storage.conftest import Database

TABLES = {
    "guild_settings",
    "member_preferences",
    "pronunciations",
    "cloned_voices",
    "usage_ledger",
    "clone_slots",
    "alerts_sent",
}


async def recorded_version(database: Database) -> int:
    """The schema version as the database itself records it."""
    if database.is_postgres:
        row = await database.fetchone("SELECT MAX(version) FROM schema_migrations")
    else:
        row = await database.fetchone("PRAGMA user_version")
    assert row is not None
    return int(row[0] or 0)


async def record_version(database: Database, version: int) -> None:
    """Write a schema version behind the storage's back, as a newer bot would have."""
    if database.is_postgres:
        await database.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", version)
    else:
        await database.execute(f"PRAGMA user_version = {version:d}")


def steps(*scripts: str) -> list[Migration]:
    """Test migrations whose SQL is the same on both databases."""
    return [Migration(number, sqlite=script, postgresql=script) for number, script in enumerate(scripts, start=1)]


async def test_open_creates_the_tables_and_records_the_version(database: Database) -> None:
    if not database.is_postgres:
        assert isinstance(database.location, Path) and not database.location.parent.exists()
    storage = await Storage.open(database.location)
    await storage.close()
    if not database.is_postgres:
        assert isinstance(database.location, Path) and database.location.is_file()
    assert await recorded_version(database) == LATEST_VERSION == MIGRATIONS[-1].version
    assert TABLES <= await database.tables()


async def test_open_sets_wal_busy_timeout_and_foreign_keys(sqlite_database: Database) -> None:
    storage = await Storage.open(sqlite_database.location)
    try:
        backend = storage._db
        assert isinstance(backend, SQLiteBackend)
        for pragma, expected in (("journal_mode", "wal"), ("busy_timeout", 5000), ("foreign_keys", 1)):
            async with backend.connection.execute(f"PRAGMA {pragma}") as cursor:
                assert (await cursor.fetchone())[0] == expected, pragma
    finally:
        await storage.close()
    # WAL is a property of the file, so a fresh connection sees it too.
    assert await sqlite_database.fetchone("PRAGMA journal_mode") == ("wal",)


async def test_reopening_keeps_version_and_data(database: Database) -> None:
    first = await Storage.open(database.location)
    await first.set_guild_setting(1, "language", "de-DE")
    await first.close()

    # Re-running the migrations would fail on CREATE TABLE, so a clean reopen proves they are skipped.
    second = await Storage.open(database.location)
    try:
        assert (await second.get_guild_settings(1)).language == "de-DE"
    finally:
        await second.close()
    assert await recorded_version(database) == LATEST_VERSION


async def test_processes_starting_at_once_migrate_once(database: Database) -> None:
    opened = await asyncio.gather(*(Storage.open(database.location) for _ in range(4)))
    try:
        await opened[0].set_guild_setting(1, "format", "wav")
        assert (await opened[3].get_guild_settings(1)).format == "wav"
    finally:
        for storage in opened:
            await storage.close()
    assert await recorded_version(database) == LATEST_VERSION
    if database.is_postgres:
        rows = await database.fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert rows == [(version,) for version in range(1, LATEST_VERSION + 1)]


async def test_processes_opening_a_new_sqlite_file_together_all_start(tmp_path: Path) -> None:
    # Switching a new file to WAL needs it to itself, and SQLite refuses at once rather than waiting, so
    # without a retry about one round in twenty failed with "database is locked".
    for round_number in range(40):
        location = tmp_path / f"round-{round_number}" / "bot.db"
        opened = await asyncio.gather(*(Storage.open(location) for _ in range(4)), return_exceptions=True)
        failures = [result for result in opened if isinstance(result, BaseException)]
        for result in opened:
            if isinstance(result, Storage):
                await result.close()
        assert not failures, f"round {round_number}: {failures!r}"


async def test_database_newer_than_the_code_is_refused_clearly(database: Database) -> None:
    storage = await Storage.open(database.location)
    await storage.close()
    await record_version(database, LATEST_VERSION + 5)

    with pytest.raises(SchemaVersionError) as caught:
        await Storage.open(database.location)
    assert caught.value.found == LATEST_VERSION + 5
    assert caught.value.supported == LATEST_VERSION
    message = str(caught.value)
    assert str(LATEST_VERSION + 5) in message and "upgrade" in message
    # Nothing was downgraded or touched.
    assert await recorded_version(database) == LATEST_VERSION + 5


async def test_memory_database_is_allowed() -> None:
    storage = await Storage.open(":memory:")
    try:
        await storage.set_guild_setting(5, "format", "wav")
        assert (await storage.get_guild_settings(5)).format == "wav"
    finally:
        await storage.close()


async def test_migrations_apply_in_order_and_only_the_new_ones(database: Database) -> None:
    first = steps("CREATE TABLE a (x INTEGER);")
    second = steps("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (7);")
    backend = await open_backend(database.location)
    try:
        assert await apply_migrations(backend, first) == 1
        assert await apply_migrations(backend, second) == 2
        assert await apply_migrations(backend, second) == 2
        assert await backend.schema_version() == 2
        # Migration 2 ran exactly once.
        assert [tuple(row) for row in await backend.fetchall("SELECT x FROM a")] == [(7,)]
    finally:
        await backend.close()


async def test_a_failing_migration_is_rolled_back_entirely(database: Database) -> None:
    migrations = steps(
        "CREATE TABLE kept (x INTEGER);",
        "CREATE TABLE half (x INTEGER); INSERT INTO kept VALUES (1); SELECT nope FROM missing;",
    )
    backend = await open_backend(database.location)
    try:
        with pytest.raises(MigrationError) as caught:
            await apply_migrations(backend, migrations)
        assert caught.value.version == 2
        assert await backend.schema_version() == 1
        if isinstance(backend, SQLiteBackend):
            assert not backend.connection.in_transaction
        # The backend is still usable.
        assert await backend.fetchone("SELECT COUNT(*) FROM kept") == (0,)
    finally:
        await backend.close()
    assert "half" not in await database.tables()
    assert "kept" in await database.tables()


async def test_migration_versions_must_be_consecutive(database: Database) -> None:
    backend = await open_backend(database.location)
    try:
        gap = [Migration(1, sqlite="SELECT 1;", postgresql="SELECT 1;"), Migration(3, "SELECT 1;", "SELECT 1;")]
        with pytest.raises(ValueError, match="without gaps"):
            await apply_migrations(backend, gap)
        assert await backend.schema_version() == 0
    finally:
        await backend.close()


async def test_each_migration_has_a_script_for_each_database() -> None:
    for migration in MIGRATIONS:
        assert migration.script("sqlite").strip() and migration.script("postgresql").strip()
    with pytest.raises(ValueError, match="mysql"):
        MIGRATIONS[0].script("mysql")


async def test_a_process_starting_beside_a_newer_one_refuses_the_schema_it_finds(postgres_database: str) -> None:
    # The migration lock is held here, as by a newer bot migrating, while this one starts.
    newer = await asyncpg.connect(postgres_database)
    try:
        await newer.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        opening = asyncio.ensure_future(Storage.open(postgres_database))
        async with asyncio.timeout(10):
            while not await newer.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
                await asyncio.sleep(0.02)
        # The newer bot goes one migration further than this one knows, then lets go.
        await newer.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        await newer.executemany(
            "INSERT INTO schema_migrations VALUES ($1, 0)", [(version,) for version in range(1, LATEST_VERSION + 2)]
        )
        await newer.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        with pytest.raises(SchemaVersionError) as caught:
            await opening
    finally:
        await newer.close()
    assert (caught.value.found, caught.value.supported) == (LATEST_VERSION + 1, LATEST_VERSION)
