"""`python -m bot migrate-db`: copy the SQLite database at DATABASE_PATH into the PostgreSQL at DATABASE_URL.

Both come from the environment (or `.env`), never from the command line, so the password is never in a shell's
history or a process list. Both databases are brought to the latest schema first. Rows are read from SQLite in
batches, sent with COPY into a temporary table, and inserted from there only where missing, so a rerun (after a
failure half-way, say) adds only what is not there yet and never changes a row PostgreSQL already has: a row
is there when its key is (a server's settings, a member's preferences, a word, a voice...), and a usage-ledger
row, which has no key of its own, when PostgreSQL holds as many identical rows as SQLite does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import aiosqlite
import asyncpg

from bot.masking import mask_secrets
from bot.storage.backends import PostgresBackend, SQLiteBackend, mask_url, url_secrets
from bot.storage.errors import StorageError
from bot.storage.migrations import apply_migrations
from bot.storage.models import GUILD_SETTING_NAMES, MEMBER_PREFERENCE_NAMES
from bot.wording import counted

BATCH_ROWS: Final[int] = 5_000
# A batch's COPY and insert take well under a second; this only stops a copy stuck on a lock.
BATCH_TIMEOUT_SECONDS: Final[float] = 300.0
# Tables with at least this many rows get a progress bar on stderr.
PROGRESS_MIN_ROWS: Final[int] = 10_000
PROGRESS_WIDTH: Final[int] = 30
# Without a terminal, the bar is printed as a new line at each of these fractions only.
PROGRESS_STEPS: Final[tuple[float, ...]] = (0.25, 0.5, 0.75, 1.0)
_STAGING: Final[str] = "migrate_db_incoming"
# Stands in for the bot's tokens, which copying the database does not use.
_NOT_NEEDED: Final[str] = "not-needed-by-migrate-db"
_LEDGER_COLUMNS: Final[tuple[str, ...]] = (
    "guild_id",
    "user_id",
    "at",
    "day",
    "reserved",
    "characters",
    "credits_prebuilt",
    "credits_cloned",
    "requests",
    "cache_hits",
)


@dataclass(frozen=True, slots=True)
class Table:
    """A table to copy: its columns, and the key that says a row is already there (None: the whole row)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...] | None


# Every table of the schema but the ledger's id, which each database numbers itself.
TABLES: Final[tuple[Table, ...]] = (
    Table("guild_settings", ("guild_id", *GUILD_SETTING_NAMES), ("guild_id",)),
    Table("member_preferences", ("guild_id", "user_id", *MEMBER_PREFERENCE_NAMES), ("guild_id", "user_id")),
    Table(
        "pronunciations",
        ("guild_id", "word_key", "word", "spoken", "created_by", "created_at"),
        ("guild_id", "word_key"),
    ),
    Table(
        "cloned_voices",
        ("voice_id", "guild_id", "name", "description", "created_by", "created_at"),
        ("voice_id",),
    ),
    Table(
        "clone_slots",
        ("slot_id", "guild_id", "taken_at", "name", "description", "created_by", "sent_at", "lapsed_at"),
        ("slot_id",),
    ),
    Table("alerts_sent", ("kind", "day", "sent_at"), ("kind", "day")),
    Table("usage_ledger", _LEDGER_COLUMNS, None),
)


@dataclass(frozen=True, slots=True)
class Copied:
    """What one table's copy did."""

    table: str
    rows: int
    added: int


class MigrateError(Exception):
    """The copy cannot run or failed; the message is one line for the operator (no password)."""


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, else a few lines at fixed steps."""

    def __init__(self, table: str, total: int, stream: TextIO) -> None:
        self._table = table
        self._total = total
        self._stream = stream
        self._shown = total >= PROGRESS_MIN_ROWS
        self._live = stream.isatty()
        self._next_step = 0

    def update(self, done: int) -> None:
        """Show that `done` rows of the table have been copied."""
        if not self._shown:
            return
        fraction = done / self._total if self._total else 1.0
        filled = round(PROGRESS_WIDTH * fraction)
        drawn = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        bar = f"{self._table} [{drawn}] {fraction:4.0%} {done:,}/{self._total:,}"
        if self._live:
            self._stream.write(f"\r{bar}" + ("\n" if done >= self._total else ""))
            self._stream.flush()
            return
        while self._next_step < len(PROGRESS_STEPS) and fraction >= PROGRESS_STEPS[self._next_step]:
            self._next_step += 1
            if self._next_step == len(PROGRESS_STEPS) or fraction < PROGRESS_STEPS[self._next_step]:
                print(bar, file=self._stream, flush=True)


def _converter(data_type: str) -> Callable[[Any], Any]:
    # COPY sends PostgreSQL's binary formats, which want exactly these Python types; SQLite keeps 0/1 for booleans.
    if data_type == "boolean":
        return lambda value: None if value is None else bool(value)
    if data_type in ("bigint", "integer", "smallint"):
        return lambda value: None if value is None else int(value)
    if data_type in ("double precision", "real"):
        return lambda value: None if value is None else float(value)
    return lambda value: None if value is None else str(value)


async def _column_converters(connection: asyncpg.Connection, table: Table) -> list[Callable[[Any], Any]]:
    rows = await connection.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1",
        table.name,
    )
    types = {row["column_name"]: row["data_type"] for row in rows}
    return [_converter(types[column]) for column in table.columns]


def _insert_missing(table: Table) -> str:
    # Table and column names come from TABLES above, never from outside input.
    columns = ", ".join(table.columns)
    if table.key is not None:
        return (
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {_STAGING} "  # noqa: S608
            f"ON CONFLICT ({', '.join(table.key)}) DO NOTHING"
        )
    # No key: copy number n of a row goes in only while PostgreSQL holds fewer than n rows equal to it. The counts
    # are taken once per batch, over the servers and days the batch touches, and see the table as it was before
    # this statement, so the copies within one batch all count from there. user_id is the one nullable column.
    equal = " AND ".join(f"existing.{column} = incoming.{column}" for column in table.columns if column != "user_id")
    return (
        f"WITH existing AS (SELECT {columns}, COUNT(*) AS copies FROM {table.name} "  # noqa: S608
        f"WHERE (guild_id, day) IN (SELECT DISTINCT guild_id, day FROM {_STAGING}) GROUP BY {columns}) "
        f"INSERT INTO {table.name} ({columns}) "
        f"SELECT {', '.join(f'incoming.{column}' for column in table.columns)} FROM {_STAGING} AS incoming "
        f"LEFT JOIN existing ON {equal} AND existing.user_id IS NOT DISTINCT FROM incoming.user_id "
        "WHERE incoming.copy_number > COALESCE(existing.copies, 0)"
    )


def _select_source(table: Table) -> str:
    columns = ", ".join(table.columns)
    if table.key is not None:
        return f"SELECT {columns} FROM {table.name} ORDER BY {', '.join(table.key)}"  # noqa: S608
    # Identical ledger rows are numbered 1, 2, 3... so that each copy is matched once.
    return (
        f"SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY {columns} ORDER BY id) "  # noqa: S608
        f"FROM {table.name} ORDER BY id"
    )


async def copy_table(
    source: aiosqlite.Connection, target: asyncpg.Connection, table: Table, *, stream: TextIO
) -> Copied:
    """Copy one table's missing rows from SQLite into PostgreSQL, batch by batch."""
    async with source.execute(f"SELECT COUNT(*) FROM {table.name}") as cursor:  # noqa: S608
        row = await cursor.fetchone()
    total = int(row[0]) if row is not None else 0
    converters = await _column_converters(target, table)
    staged = [*table.columns] if table.key is not None else [*table.columns, "copy_number"]
    await target.execute(f"DROP TABLE IF EXISTS {_STAGING}")
    await target.execute(
        f"CREATE TEMPORARY TABLE {_STAGING} AS SELECT {', '.join(table.columns)} FROM {table.name} WITH NO DATA"  # noqa: S608
    )
    if table.key is None:
        await target.execute(f"ALTER TABLE {_STAGING} ADD COLUMN copy_number BIGINT")
    insert = _insert_missing(table)
    progress = Progress(table.name, total, stream)
    done = added = 0
    progress.update(0)
    try:
        async with source.execute(_select_source(table)) as cursor:
            while batch := await cursor.fetchmany(BATCH_ROWS):
                records = [
                    tuple(convert(value) for convert, value in zip(converters, row, strict=False))
                    + tuple(row[len(converters) :])
                    for row in batch
                ]
                async with target.transaction():
                    await target.execute(f"TRUNCATE {_STAGING}")
                    await target.copy_records_to_table(_STAGING, records=records, columns=staged)
                    status = await target.execute(insert)
                added += int(status.rsplit(" ", 1)[-1])
                done += len(records)
                progress.update(done)
    finally:
        await target.execute(f"DROP TABLE IF EXISTS {_STAGING}")
    return Copied(table.name, total, added)


async def migrate(
    sqlite_path: Path, postgres_url: str, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> list[Copied]:
    """Copy every table; print a line per table on `out` and progress bars on `err`."""
    if not await asyncio.to_thread(sqlite_path.is_file):
        raise MigrateError(f"there is no SQLite database at {sqlite_path} (DATABASE_PATH)")
    sqlite = await SQLiteBackend.open(sqlite_path)
    try:
        await apply_migrations(sqlite)
        postgres = await PostgresBackend.open(postgres_url, pool_size=1, statement_timeout=BATCH_TIMEOUT_SECONDS)
        try:
            await apply_migrations(postgres)
            print(f"Copying {sqlite.description} into {postgres.description}", file=out, flush=True)
            results: list[Copied] = []
            async with postgres.pool.acquire() as target:
                for table in TABLES:
                    copied = await copy_table(sqlite.connection, target, table, stream=err)
                    results.append(copied)
                    print(
                        f"{copied.table}: {copied.rows:,} row{'' if copied.rows == 1 else 's'}, "
                        f"{copied.added:,} added, {copied.rows - copied.added:,} already there",
                        file=out,
                        flush=True,
                    )
        finally:
            await postgres.close()
    finally:
        await sqlite.close()
    added = sum(copied.added for copied in results)
    rows = counted(added, "Done: {count} row added", "Done: {count} rows added")
    tables = counted(len(results), "{count} table", "{count} tables")
    print(f"{rows} in {tables}.", file=out, flush=True)
    return results


def _one_line(error: BaseException, secrets: Sequence[str]) -> str:
    text = " ".join((str(error) or type(error).__name__).split())
    return mask_secrets(text, secrets)


def main() -> int:
    """Run migrate-db with DATABASE_PATH and DATABASE_URL from the environment; return the exit status."""
    from bot.logs import setup_logging
    from bot.settings import SettingsError, load_settings

    try:
        # Only the two database settings matter here: the bot's tokens need not be set where this runs.
        settings = load_settings(discord_token=_NOT_NEEDED, unmixr_api_key=_NOT_NEEDED)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if settings.database_url is None:
        print(
            "migrate-db needs DATABASE_URL (postgresql://user:password@host:port/database), the PostgreSQL to "
            "copy into; set it in the environment or in a .env file.",
            file=sys.stderr,
        )
        return 2
    url = settings.database_url.get_secret_value()
    secrets = url_secrets(url)
    setup_logging("WARNING", secrets)
    try:
        asyncio.run(migrate(settings.database_path, url))
    except (MigrateError, StorageError) as error:
        print(f"migrate-db: {_one_line(error, secrets)}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, aiosqlite.Error, ValueError) as error:
        where = mask_url(url)
        print(f"migrate-db: copying into {where} failed: {_one_line(error, secrets)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("migrate-db: interrupted; run it again to copy the rest.", file=sys.stderr)
        return 130
    return 0
