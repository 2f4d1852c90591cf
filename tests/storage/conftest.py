"""Fixtures for the storage tests: every test runs on a SQLite file and on a PostgreSQL database."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.storage import Storage
from bot.storage.backends import to_postgres


@dataclass
class Database:
    """One empty database for a test: where Storage.open finds it, and a way in behind the storage's back."""

    kind: str  # "sqlite" or "postgresql"
    location: str | Path

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    async def execute(self, sql: str, *parameters: Any) -> None:
        """Run a statement on a connection of its own (another process, as far as the storage knows)."""
        if self.is_postgres:
            connection = await asyncpg.connect(str(self.location))
            try:
                await connection.execute(to_postgres(sql), *parameters)
            finally:
                await connection.close()
            return
        with closing(sqlite3.connect(self.location)) as outside:
            outside.execute(sql, parameters)
            outside.commit()

    async def fetchall(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Read with a connection of its own."""
        if self.is_postgres:
            connection = await asyncpg.connect(str(self.location))
            try:
                return [tuple(row) for row in await connection.fetch(to_postgres(sql), *parameters)]
            finally:
                await connection.close()
        with closing(sqlite3.connect(self.location)) as outside:
            return outside.execute(sql, parameters).fetchall()

    async def fetchone(self, sql: str, *parameters: Any) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, *parameters)
        return rows[0] if rows else None

    async def tables(self) -> set[str]:
        """The names of the tables in the database."""
        if self.is_postgres:
            rows = await self.fetchall("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        else:
            rows = await self.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgresql":
        return Database("postgresql", request.getfixturevalue("postgres_database"))
    # A nested folder, so that every SQLite test also exercises the folder creation.
    return Database("sqlite", tmp_path / "data" / "bot.sqlite3")


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Database:
    """A SQLite file only, for what only SQLite has (pragmas, :memory:)."""
    return Database("sqlite", tmp_path / "data" / "bot.sqlite3")


@pytest.fixture
def database_path(sqlite_database: Database) -> Path:
    location = sqlite_database.location
    assert isinstance(location, Path)
    return location


@pytest.fixture
async def storage(database: Database) -> AsyncIterator[Storage]:
    opened = await Storage.open(database.location)
    yield opened
    await opened.close()
