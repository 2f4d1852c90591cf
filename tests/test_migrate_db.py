"""`python -m bot migrate-db` end to end: a bot's SQLite database with every table filled moves to PostgreSQL.

The bot fills the SQLite file through its commands; migrate-db (a real subprocess, configured by environment
only) copies it; the bot started on PostgreSQL then shows the same settings, preferences, pronunciations,
clones and usage; a rerun adds nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
from pydantic import SecretStr

from bot.storage import Storage, url_secrets
from bot.storage.migrate import PROGRESS_MIN_ROWS, TABLES
from tests.conftest import DISCORD_TOKEN, World
from tests.fakes.discord_server import ChannelOption, FakeInteraction, RoleOption
from tests.postgres_fixtures import password_as_query

REPOSITORY = Path(__file__).resolve().parent.parent
# More ledger rows than the progress bar's threshold, as a bot that has run for a while has.
HISTORY_ROWS = PROGRESS_MIN_ROWS + 2_345


async def migrate_db(sqlite_path: Path, url: str, cwd: Path) -> tuple[int, str, str]:
    """Run `python -m bot migrate-db` with only the two database settings in its environment."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPOSITORY),
        "DATABASE_PATH": str(sqlite_path),
        "DATABASE_URL": url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate-db",
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def added_by_table(stdout: str) -> dict[str, tuple[int, int]]:
    """(rows, added) per table, from migrate-db's lines `table: N rows, M added, K already there`."""
    counts = {}
    for line in stdout.splitlines():
        table, _, rest = line.partition(": ")
        if table in {t.name for t in TABLES}:
            words = rest.replace(",", "").split()
            counts[table] = (int(words[0]), int(words[2]))
    return counts


async def final(world: World, name: str, options: dict[str, Any] | None = None, **kwargs: Any) -> FakeInteraction:
    interaction = await world.slash(name, options, **kwargs)
    await interaction.wait_final(timeout=30)
    return interaction


def visible(interaction: FakeInteraction) -> str:
    """Everything the answer shows: content, embeds (with their fields) and attachment names."""
    parts = [interaction.content()]
    for embed in interaction.embeds():
        parts += [embed.get("title", ""), embed.get("description", ""), embed.get("footer", {}).get("text", "")]
        parts += [f"{field['name']}: {field['value']}" for field in embed.get("fields", [])]
    return "\n".join(part for part in parts if part)


def clone_names(interaction: FakeInteraction) -> str:
    """The names `/voices category: clones` lists, one a line."""
    [embed] = interaction.embeds()
    names = [field["name"] for field in embed.get("fields", [])]
    names += [line.partition(":")[0] for line in embed.get("description", "").splitlines()[1:]]
    return "\n".join(sorted(name for name in names if name))


async def what_members_see(world: World) -> dict[str, str]:
    admin = {"member": world.admin}
    return {
        "settings": visible(await final(world, "settings", subcommand="show", **admin)),
        "pronunciations": visible(await final(world, "pronounce", subcommand="list")),
        # The clones' names: their details come from Unmixr's clone list, not from the database.
        "clones": clone_names(await final(world, "voices", {"category": "clones"})),
        "balance": visible(await final(world, "balance", **admin)),
    }


def recording(folder: Path) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is installed system-wide"
    target = folder / "nell.mp3"
    source = "sine=frequency=220:duration=35"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", source, "-ac", "1", "-b:a", "32k", str(target)],
        check=True,
        timeout=60,
    )
    return target.read_bytes()


def sqlite_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as connection:
        return {t.name: connection.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in TABLES}


async def postgres_counts(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        return {t.name: await connection.fetchval(f"SELECT COUNT(*) FROM {t.name}") for t in TABLES}
    finally:
        await connection.close()


async def test_a_filled_sqlite_database_moves_to_postgresql_and_the_bot_shows_the_same(
    world: World, postgres_database: str, tmp_path: Path
) -> None:
    sqlite_path = world.settings.database_path
    # A bot that has run for a while: yesterday's requests, more of them than the progress bar's threshold.
    history = await Storage.open(sqlite_path)
    await history.close()
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with closing(sqlite3.connect(sqlite_path)) as connection:
        connection.executemany(
            "INSERT INTO usage_ledger (guild_id, user_id, at, day, characters, credits_prebuilt, requests) "
            "VALUES (?, ?, ?, ?, 10, 10, 1)",
            [
                (world.guild.id, world.member.id, yesterday.timestamp() - number, yesterday.date().isoformat())
                for number in range(HISTORY_ROWS)
            ],
        )
        connection.commit()

    await world.start_bot()
    admin = {"member": world.admin}
    role = world.guild.add_role("Muted")
    for subcommand, options in (
        ("rate", {"rate": "+15%"}),
        ("language", {"language": "en-GB"}),
        ("xsaid", {"enabled": False}),
        ("max-length", {"length": 900}),
        ("readout-channel", {"channel": ChannelOption(world.readout["id"])}),
        ("ignore-role", {"role": RoleOption(int(role["id"]))}),
        ("budget", {"characters": 50_000}),
        ("member-budget", {"characters": 5_000}),
    ):
        assert (await final(world, "settings", options, subcommand=subcommand, **admin)).ephemeral
    await final(world, "preferences", {"nickname": "Ada"}, subcommand="nickname", **admin)
    await final(world, "preferences", {"rate": "-5%"}, subcommand="rate")
    await final(world, "pronounce", {"word": "GIF", "spoken": "jif"}, subcommand="add", **admin)
    await final(world, "pronounce", {"word": "SQL", "spoken": "sequel"}, subcommand="add", **admin)
    cloned = await world.slash(
        "clone",
        {"name": "Narrator Nell", "consent": True},
        member=world.admin,
        attachments={"audio": ("nell.mp3", recording(tmp_path), "audio/mpeg")},
    )
    await cloned.wait_final(timeout=60)
    assert "Narrator Nell" in cloned.content()
    said = await final(world, "say", {"text": "Hello in the cloned voice.", "voice": "Narrator Nell"})
    assert said.files(), said.content()
    # What only the background tasks write: an alert sent today, and an upload still holding a clone slot.
    await world.bot.storage.claim_alert("prebuilt", datetime.now(UTC).date())
    await world.bot.storage.take_clone_slot(world.guild.id, 10)
    before = await what_members_see(world)
    assert before["clones"] == "Narrator Nell" and "GIF" in before["pronunciations"]
    await world.stop_bot()
    counts = sqlite_counts(sqlite_path)
    assert all(counts.values()), counts

    status, stdout, stderr = await migrate_db(sqlite_path, postgres_database, tmp_path)
    assert status == 0, stderr
    assert added_by_table(stdout) == {table: (rows, rows) for table, rows in counts.items()}
    assert await postgres_counts(postgres_database) == counts
    # The big table's progress: a few lines on stderr, ending at 100%.
    progress = [line for line in stderr.splitlines() if line.startswith("usage_ledger [")]
    total = f"{counts['usage_ledger']:,}"
    assert 1 <= len(progress) <= 5 and progress[-1].endswith(f"100% {total}/{total}"), stderr
    for secret in url_secrets(postgres_database):
        assert secret not in stdout + stderr

    await world.start_bot(database_url=SecretStr(postgres_database))
    assert world.bot.storage.description.startswith("PostgreSQL at ")
    assert await what_members_see(world) == before
    # The member's own rate came along too: it is what their /say asks Unmixr for.
    said = await final(world, "say", {"text": "Hello again, from PostgreSQL.", "voice": "Brian"})
    assert said.files(), said.content()
    assert world.tts_requests()[-1].json["speaking_rate"] == "-5%"
    await world.stop_bot()

    # A rerun adds nothing, even though the bot has since added a row of its own to PostgreSQL.
    status, stdout, stderr = await migrate_db(sqlite_path, postgres_database, tmp_path)
    assert status == 0, stderr
    assert {table: added for table, (_rows, added) in added_by_table(stdout).items()} == dict.fromkeys(counts, 0)
    assert await postgres_counts(postgres_database) == {**counts, "usage_ledger": counts["usage_ledger"] + 1}


async def test_migrate_db_failures_are_one_line_without_the_password(tmp_path: Path, postgres_database: str) -> None:
    missing = tmp_path / "nothing-here.sqlite3"
    status, stdout, stderr = await migrate_db(missing, postgres_database, tmp_path)
    assert (status, stdout) == (1, "")
    assert stderr.strip() == f"migrate-db: there is no SQLite database at {missing} (DATABASE_PATH)"
    assert not missing.exists()

    sqlite_path = tmp_path / "bot.sqlite3"
    sqlite3.connect(sqlite_path).close()
    wrong = postgres_database.replace("unmixr:", "unmixr:wrong", 1)
    status, stdout, stderr = await migrate_db(sqlite_path, wrong, tmp_path)
    assert (status, stdout) == (1, "")
    assert len(stderr.strip().splitlines()) == 1 and "password authentication failed" in stderr
    assert "[redacted]" in stderr
    for secret in url_secrets(wrong):
        assert secret not in stderr
    assert "Traceback" not in stderr

    # The same with the password given as ?password=, the other form asyncpg reads.
    wrong_password = "wrong+pass/word!"
    status, stdout, stderr = await migrate_db(
        sqlite_path, password_as_query(postgres_database, wrong_password), tmp_path
    )
    assert (status, stdout) == (1, "")
    assert "password authentication failed" in stderr and "password=[redacted]" in stderr
    for form in (wrong_password, quote(wrong_password, safe=""), quote_plus(wrong_password)):
        assert form not in stderr

    status, stdout, stderr = await migrate_db(sqlite_path, "", tmp_path)
    assert status == 2 and "DATABASE_URL" in stderr and len(stderr.strip().splitlines()) == 1
    assert DISCORD_TOKEN not in stderr
