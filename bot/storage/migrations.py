"""Numbered schema migrations, one list for both databases, each migration written in each one's SQL.

SQLite keeps the version in PRAGMA user_version; PostgreSQL, which has no such thing, in the table
schema_migrations (one row per migration applied). The two schemas hold the same tables, columns and keys;
PostgreSQL's types are the strict ones (BIGINT for ids and counts, DOUBLE PRECISION for times, BOOLEAN), and
its text keys compare byte by byte (COLLATE "C"), as SQLite's do, so that ordering and ranges on ISO dates and
words behave the same whatever the database's locale. The exceptions exist only in PostgreSQL, where several
processes share the database: the audio cache's shared tier (migration 3; with SQLite the local folder is the whole
cache) and the shard leases (migration 7; a SQLite file has one process).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bot.storage.backends import Backend
from bot.storage.errors import MigrationError, SchemaVersionError, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its number and its script for each database."""

    version: int
    sqlite: str
    postgresql: str

    def script(self, dialect: str) -> str:
        """The script for a backend's dialect ("sqlite" or "postgresql")."""
        if dialect == "sqlite":
            return self.sqlite
        if dialect == "postgresql":
            return self.postgresql
        raise ValueError(f"no migration script for {dialect!r}")


# Versions run 1, 2, 3... without gaps; a script never changes once released (add a new migration instead)
# and holds no transaction control, since each runs inside its own transaction.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        sqlite="""
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
        postgresql="""
        CREATE TABLE guild_settings (
            guild_id BIGINT PRIMARY KEY,
            voice_id TEXT,
            language TEXT,
            rate TEXT,
            pitch TEXT,
            volume TEXT,
            intensity BIGINT,
            format TEXT,
            max_length BIGINT,
            readout_channel_id BIGINT,
            xsaid BOOLEAN,
            ignore_role_id BIGINT
        );

        CREATE TABLE member_preferences (
            guild_id BIGINT NOT NULL,
            user_id BIGINT NOT NULL,
            voice_id TEXT,
            rate TEXT,
            nickname TEXT,
            PRIMARY KEY (guild_id, user_id)
        );

        CREATE TABLE pronunciations (
            guild_id BIGINT NOT NULL,
            word_key TEXT COLLATE "C" NOT NULL,
            word TEXT COLLATE "C" NOT NULL,
            spoken TEXT NOT NULL,
            created_by BIGINT NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (guild_id, word_key)
        );

        CREATE TABLE cloned_voices (
            voice_id TEXT COLLATE "C" PRIMARY KEY,
            guild_id BIGINT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            created_by BIGINT NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX cloned_voices_by_guild ON cloned_voices (guild_id, created_at);

        CREATE TABLE usage (
            guild_id BIGINT NOT NULL,
            day TEXT COLLATE "C" NOT NULL,
            characters BIGINT NOT NULL DEFAULT 0,
            credits_prebuilt BIGINT NOT NULL DEFAULT 0,
            credits_cloned BIGINT NOT NULL DEFAULT 0,
            requests BIGINT NOT NULL DEFAULT 0,
            cache_hits BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day)
        );
        """,
    ),
    Migration(
        2,
        # Credit guards: server budgets, one ledger row per request (reserved, then settled) that both
        # /balance and the budgets read, clone slots taken while an upload is in flight, and the record of
        # low-balance alerts so each is sent once a day whichever process sees it first.
        sqlite="""
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
        postgresql="""
        ALTER TABLE guild_settings ADD COLUMN budget BIGINT;
        ALTER TABLE guild_settings ADD COLUMN member_budget BIGINT;

        CREATE TABLE usage_ledger (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            guild_id BIGINT NOT NULL,
            user_id BIGINT,
            at DOUBLE PRECISION NOT NULL,
            day TEXT COLLATE "C" NOT NULL,
            reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            characters BIGINT NOT NULL DEFAULT 0,
            credits_prebuilt BIGINT NOT NULL DEFAULT 0,
            credits_cloned BIGINT NOT NULL DEFAULT 0,
            requests BIGINT NOT NULL DEFAULT 0,
            cache_hits BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX usage_ledger_by_day ON usage_ledger (guild_id, day);
        CREATE INDEX usage_ledger_by_member ON usage_ledger (guild_id, user_id, at);
        INSERT INTO usage_ledger
            (guild_id, user_id, at, day, characters, credits_prebuilt, credits_cloned, requests, cache_hits)
        SELECT guild_id, NULL, EXTRACT(EPOCH FROM CAST(day AS DATE)), day,
            characters, credits_prebuilt, credits_cloned, requests, cache_hits
        FROM usage;
        DROP TABLE usage;

        CREATE TABLE clone_slots (
            slot_id TEXT COLLATE "C" PRIMARY KEY,
            guild_id BIGINT NOT NULL,
            taken_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX clone_slots_by_guild ON clone_slots (guild_id);

        CREATE TABLE alerts_sent (
            kind TEXT COLLATE "C" NOT NULL,
            day TEXT COLLATE "C" NOT NULL,
            sent_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kind, day)
        );
        """,
    ),
    Migration(
        3,
        # The audio cache's shared tier (PRODUCT.md, Several processes): clips by cache key, least recently used
        # evicted first past AUDIO_CACHE_DB_MAX_MB, with one row holding the tier's total so a write need not
        # sum the table. With SQLite there is one process and its local folder is the whole cache, so SQLite
        # gets no table (one nobody reads would only invite a write): its script only moves the version on,
        # keeping the numbers of both databases the same migrations.
        sqlite="""
        -- Nothing on SQLite: the audio cache's shared tier exists only with PostgreSQL.
        """,
        # Audio is bytea, not large objects: a clip is kilobytes to a few megabytes (far from bytea's 1 GB),
        # read and written whole; bytea goes with its row (a large object outlives a deleted row unless
        # unlinked), is counted by pg_total_relation_size, and is copied by pg_dump with the table. STORAGE
        # EXTERNAL: mp3 and Opus are compressed already, so PostgreSQL need not try again on every write.
        # `sha256` is of `audio`, checked on every read: a row written by another process is never trusted
        # blindly. Times are PostgreSQL's clock (epoch seconds), the same for every machine.
        postgresql="""
        CREATE TABLE audio_cache (
            key TEXT COLLATE "C" PRIMARY KEY,
            output_type TEXT NOT NULL,
            duration DOUBLE PRECISION,
            size BIGINT NOT NULL CHECK (size >= 0),
            sha256 BYTEA NOT NULL,
            audio BYTEA NOT NULL,
            used_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION
        );
        ALTER TABLE audio_cache ALTER COLUMN audio SET STORAGE EXTERNAL;
        CREATE INDEX audio_cache_by_use ON audio_cache (used_at);
        CREATE INDEX audio_cache_by_expiry ON audio_cache (expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE audio_cache_size (
            only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
            bytes BIGINT NOT NULL
        );
        INSERT INTO audio_cache_size (only_row, bytes) VALUES (TRUE, 0);
        """,
    ),
    Migration(
        4,
        # A hold counts in every window until it settles, whatever day it was made: a partial index finds the few
        # open ones. The account's daily budget sums every server's use of one day.
        sqlite="""
        CREATE INDEX usage_ledger_holds ON usage_ledger (guild_id, user_id, reserved) WHERE reserved > 0;
        CREATE INDEX usage_ledger_on_day ON usage_ledger (day);
        """,
        postgresql="""
        CREATE INDEX usage_ledger_holds ON usage_ledger (guild_id, user_id, reserved) WHERE reserved > 0;
        CREATE INDEX usage_ledger_on_day ON usage_ledger (day);
        """,
    ),
    Migration(
        5,
        # A /clone slot keeps the name, description and maker of its upload, so the name is reserved with it.
        # `sent_at` marks an upload that timed out after sending (the slot waits for its voice to appear in the
        # clone list); `lapsed_at` one whose voice a list fetched 10 minutes later still lacked (slot and name
        # free again, the row kept so that a voice appearing late can still be recognised).
        sqlite="""
        ALTER TABLE clone_slots ADD COLUMN name TEXT;
        ALTER TABLE clone_slots ADD COLUMN description TEXT;
        ALTER TABLE clone_slots ADD COLUMN created_by INTEGER;
        ALTER TABLE clone_slots ADD COLUMN sent_at REAL;
        ALTER TABLE clone_slots ADD COLUMN lapsed_at REAL;
        """,
        postgresql="""
        ALTER TABLE clone_slots ADD COLUMN name TEXT;
        ALTER TABLE clone_slots ADD COLUMN description TEXT;
        ALTER TABLE clone_slots ADD COLUMN created_by BIGINT;
        ALTER TABLE clone_slots ADD COLUMN sent_at DOUBLE PRECISION;
        ALTER TABLE clone_slots ADD COLUMN lapsed_at DOUBLE PRECISION;
        """,
    ),
    Migration(
        6,
        # User installs (PRODUCT.md, Reach): a user's account-wide preferences, for the app used from their own
        # account outside servers that have the bot. Their spending goes in the usage ledger under a server id of
        # its own (USER_INSTALLS in database.py); the user's daily window is found by (that id, user_id, at).
        sqlite="""
        CREATE TABLE user_preferences (
            user_id INTEGER PRIMARY KEY,
            voice_id TEXT,
            rate TEXT
        ) STRICT;
        """,
        postgresql="""
        CREATE TABLE user_preferences (
            user_id BIGINT PRIMARY KEY,
            voice_id TEXT,
            rate TEXT
        );
        """,
    ),
    Migration(
        7,
        # Continuity (PRODUCT.md): `/settings auto-join`; each server's voice channel while the bot is connected,
        # rejoined at the next start; the processes running (an id per start, a heartbeat every 10 s) and, on every
        # hold, the process that made it, so a crashed process's holds are released and a live one's never are;
        # and, with PostgreSQL only, the lease each process takes on a shard before identifying (a SQLite file has
        # one process, so it gets no table nobody would read).
        sqlite="""
        ALTER TABLE guild_settings ADD COLUMN auto_join INTEGER CHECK (auto_join IN (0, 1));

        CREATE TABLE voice_sessions (
            guild_id INTEGER PRIMARY KEY,
            channel_id INTEGER NOT NULL,
            joined_at REAL NOT NULL
        ) STRICT;

        CREATE TABLE process_instances (
            instance_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL
        ) STRICT;

        ALTER TABLE usage_ledger ADD COLUMN instance_id TEXT;
        CREATE INDEX usage_ledger_holds_by_instance ON usage_ledger (instance_id) WHERE reserved > 0;
        """,
        postgresql="""
        ALTER TABLE guild_settings ADD COLUMN auto_join BOOLEAN;

        CREATE TABLE voice_sessions (
            guild_id BIGINT PRIMARY KEY,
            channel_id BIGINT NOT NULL,
            joined_at DOUBLE PRECISION NOT NULL
        );

        CREATE TABLE process_instances (
            instance_id TEXT COLLATE "C" PRIMARY KEY,
            host TEXT NOT NULL,
            pid BIGINT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL
        );

        ALTER TABLE usage_ledger ADD COLUMN instance_id TEXT COLLATE "C";
        CREATE INDEX usage_ledger_holds_by_instance ON usage_ledger (instance_id) WHERE reserved > 0;

        CREATE TABLE shard_leases (
            shard_count BIGINT NOT NULL,
            shard_id BIGINT NOT NULL,
            instance_id TEXT COLLATE "C" NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (shard_count, shard_id)
        );
        """,
    ),
)

LATEST_VERSION: Final[int] = MIGRATIONS[-1].version


async def apply_migrations(backend: Backend, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database up to the last migration, each in its own transaction, and return the version."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3... without gaps, got {versions}")
    latest = versions[-1] if versions else 0

    async with backend.migrating() as migrator:
        current = await migrator.schema_version()
        if current > latest:
            raise SchemaVersionError(found=current, supported=latest)
        for migration in migrations:
            if migration.version <= current:
                continue
            try:
                applied = await migrator.migrate(migration.version, migration.script(backend.dialect))
            except StorageError:
                raise
            except Exception as error:
                raise MigrationError(migration.version) from error
            if applied:
                log.info("Applied database migration %d", migration.version)
            current = migration.version
        # A SQLite file is held one migration at a time: a newer process may have gone further meanwhile.
        found = await migrator.schema_version()
        if found > latest:
            raise SchemaVersionError(found=found, supported=latest)
    return current
