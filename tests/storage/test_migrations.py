"""Opening the database: folder creation, pragmas, numbered migrations and the schema version."""

import sqlite3
from contextlib import closing
from pathlib import Path

import aiosqlite
import pytest

from bot.storage import LATEST_VERSION, MigrationError, SchemaVersionError, Storage
from bot.storage.migrations import MIGRATIONS, apply_migrations, schema_version

TABLES = {
    "guild_settings",
    "member_preferences",
    "pronunciations",
    "cloned_voices",
    "usage_ledger",
    "clone_slots",
    "alerts_sent",
}


def read_pragma(path: Path, name: str) -> object:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"PRAGMA {name}").fetchone()[0]


def table_names(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


async def test_open_creates_folder_tables_and_sets_user_version(database_path: Path) -> None:
    assert not database_path.parent.exists()
    storage = await Storage.open(database_path)
    await storage.close()
    assert database_path.is_file()
    assert read_pragma(database_path, "user_version") == LATEST_VERSION == MIGRATIONS[-1][0]
    assert TABLES <= table_names(database_path)


async def test_open_sets_wal_busy_timeout_and_foreign_keys(database_path: Path) -> None:
    storage = await Storage.open(database_path)
    try:
        connection = storage._db
        for pragma, expected in (("journal_mode", "wal"), ("busy_timeout", 5000), ("foreign_keys", 1)):
            async with connection.execute(f"PRAGMA {pragma}") as cursor:
                assert (await cursor.fetchone())[0] == expected, pragma
    finally:
        await storage.close()
    # WAL is a property of the file, so a fresh connection sees it too.
    assert read_pragma(database_path, "journal_mode") == "wal"


async def test_reopening_keeps_version_and_data(database_path: Path) -> None:
    first = await Storage.open(database_path)
    await first.set_guild_setting(1, "language", "de-DE")
    await first.close()

    # Re-running the migrations would fail on CREATE TABLE, so a clean reopen proves they are skipped.
    second = await Storage.open(database_path)
    try:
        assert (await second.get_guild_settings(1)).language == "de-DE"
    finally:
        await second.close()
    assert read_pragma(database_path, "user_version") == LATEST_VERSION


async def test_database_newer_than_the_code_is_refused_clearly(database_path: Path) -> None:
    storage = await Storage.open(database_path)
    await storage.close()
    with closing(sqlite3.connect(database_path)) as connection:
        connection.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")

    with pytest.raises(SchemaVersionError) as caught:
        await Storage.open(database_path)
    assert caught.value.found == LATEST_VERSION + 5
    assert caught.value.supported == LATEST_VERSION
    message = str(caught.value)
    assert str(LATEST_VERSION + 5) in message and "upgrade" in message
    # Nothing was downgraded or touched.
    assert read_pragma(database_path, "user_version") == LATEST_VERSION + 5


async def test_memory_database_is_allowed() -> None:
    storage = await Storage.open(":memory:")
    try:
        await storage.set_guild_setting(5, "format", "wav")
        assert (await storage.get_guild_settings(5)).format == "wav"
    finally:
        await storage.close()


async def test_migrations_apply_in_order_and_only_the_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "steps.sqlite3"
    first = [(1, "CREATE TABLE a (x INTEGER);")]
    second = [*first, (2, "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (7);")]
    async with aiosqlite.connect(path, isolation_level=None) as connection:
        assert await apply_migrations(connection, first) == 1
        assert await apply_migrations(connection, second) == 2
        assert await apply_migrations(connection, second) == 2
        assert await schema_version(connection) == 2
        async with connection.execute("SELECT x FROM a") as cursor:
            # Migration 2 ran exactly once.
            assert await cursor.fetchall() == [(7,)]


async def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite3"
    migrations = [
        (1, "CREATE TABLE kept (x INTEGER);"),
        (2, "CREATE TABLE half (x INTEGER); INSERT INTO kept VALUES (1); SELECT nope FROM missing;"),
    ]
    async with aiosqlite.connect(path, isolation_level=None) as connection:
        with pytest.raises(MigrationError) as caught:
            await apply_migrations(connection, migrations)
        assert caught.value.version == 2
        assert not connection.in_transaction
        assert await schema_version(connection) == 1
    assert table_names(path) == {"kept"}
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM kept").fetchone()[0] == 0


async def test_migration_versions_must_be_consecutive(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "gap.sqlite3", isolation_level=None) as connection:
        with pytest.raises(ValueError, match="without gaps"):
            await apply_migrations(connection, [(1, "SELECT 1;"), (3, "SELECT 1;")])
        assert await schema_version(connection) == 0
