"""Numbered schema migrations, applied in order, with the version kept in PRAGMA user_version."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import aiosqlite

from bot.storage.errors import MigrationError, SchemaVersionError

log = logging.getLogger(__name__)

# Each entry is (version, script). Versions run 1, 2, 3... without gaps; a script never changes once
# released (add a new one instead) and holds no transaction control, since each runs inside its own.
MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        """
        CREATE TABLE guild_settings (
            guild_id INTEGER PRIMARY KEY,
            voice_id TEXT,
            language TEXT,
            rate TEXT,
            pitch TEXT,
            volume TEXT,
            intensity INTEGER,
            format TEXT,
            max_length INTEGER,
            readout_channel_id INTEGER,
            xsaid INTEGER CHECK (xsaid IN (0, 1)),
            ignore_role_id INTEGER
        ) STRICT;

        CREATE TABLE member_preferences (
            guild_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            voice_id TEXT,
            rate TEXT,
            nickname TEXT,
            PRIMARY KEY (guild_id, user_id)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE pronunciations (
            guild_id INTEGER NOT NULL,
            word_key TEXT NOT NULL,
            word TEXT NOT NULL,
            spoken TEXT NOT NULL,
            created_by INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (guild_id, word_key)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE cloned_voices (
            voice_id TEXT PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            created_by INTEGER NOT NULL,
            created_at TEXT NOT NULL
        ) STRICT;
        CREATE INDEX cloned_voices_by_guild ON cloned_voices (guild_id, created_at);

        CREATE TABLE usage (
            guild_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            characters INTEGER NOT NULL DEFAULT 0,
            credits_prebuilt INTEGER NOT NULL DEFAULT 0,
            credits_cloned INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            cache_hits INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day)
        ) STRICT, WITHOUT ROWID;
        """,
    ),
    (
        2,
        # Credit guards: server budgets, one ledger row per request (reserved, then settled) that both
        # /balance and the budgets read, clone slots taken while an upload is in flight, and the record of
        # low-balance alerts so each is sent once a day whichever process sees it first.
        """
        ALTER TABLE guild_settings ADD COLUMN budget INTEGER;
        ALTER TABLE guild_settings ADD COLUMN member_budget INTEGER;

        CREATE TABLE usage_ledger (
            id INTEGER PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            user_id INTEGER,
            at REAL NOT NULL,
            day TEXT NOT NULL,
            reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            characters INTEGER NOT NULL DEFAULT 0,
            credits_prebuilt INTEGER NOT NULL DEFAULT 0,
            credits_cloned INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            cache_hits INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX usage_ledger_by_day ON usage_ledger (guild_id, day);
        CREATE INDEX usage_ledger_by_member ON usage_ledger (guild_id, user_id, at);
        INSERT INTO usage_ledger
            (guild_id, user_id, at, day, characters, credits_prebuilt, credits_cloned, requests, cache_hits)
        SELECT guild_id, NULL, CAST(strftime('%s', day) AS REAL), day,
            characters, credits_prebuilt, credits_cloned, requests, cache_hits
        FROM usage;
        DROP TABLE usage;

        CREATE TABLE clone_slots (
            slot_id TEXT PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            taken_at REAL NOT NULL
        ) STRICT;
        CREATE INDEX clone_slots_by_guild ON clone_slots (guild_id);

        CREATE TABLE alerts_sent (
            kind TEXT NOT NULL,
            day TEXT NOT NULL,
            sent_at REAL NOT NULL,
            PRIMARY KEY (kind, day)
        ) STRICT, WITHOUT ROWID;
        """,
    ),
)

LATEST_VERSION: Final[int] = MIGRATIONS[-1][0]


async def schema_version(connection: aiosqlite.Connection) -> int:
    """Return the schema version recorded in the database."""
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def apply_migrations(connection: aiosqlite.Connection, migrations: Sequence[tuple[int, str]] = MIGRATIONS) -> int:
    """Bring the database up to the last migration, each in its own transaction, and return the version."""
    versions = [version for version, _ in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3... without gaps, got {versions}")
    latest = versions[-1] if versions else 0

    current = await schema_version(connection)
    if current > latest:
        raise SchemaVersionError(found=current, supported=latest)

    for version, script in migrations:
        if version <= current:
            continue
        # The version is one of our own integers, never outside input; PRAGMA takes no parameters.
        transaction = f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version:d};\nCOMMIT;"
        try:
            await connection.executescript(transaction)
        except Exception as error:
            if connection.in_transaction:
                await connection.rollback()
            # Another process sharing the file may have applied it between our read and our BEGIN.
            current = await schema_version(connection)
            if current >= version:
                continue
            raise MigrationError(version) from error
        log.info("Applied database migration %d", version)
        current = version
    return current
