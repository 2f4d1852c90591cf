"""Several processes, one database: two real `python -m bot` processes, one shard each, sharing PostgreSQL.

The processes are configured by environment only (as an operator would run them, and as bench/memory.py does),
against the Discord stand-in with 2 shards and one throwaway PostgreSQL database. The stand-in sends each
server's interactions on its shard's gateway session, so only the process holding that shard can answer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
import pytest
from pydantic import SecretStr

from bot.settings import SettingsError, load_settings
from bot.storage import LATEST_VERSION, Storage, url_secrets
from bot.storage.backends import MIGRATION_LOCK
from tests.cli_support import stand_in_env
from tests.conftest import ADMIN_PERMISSIONS, DISCORD_TOKEN, MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import ChannelOption, FakeDiscord, FakeGuild, FakeInteraction, FakeMember
from tests.fakes.discord_voice import FakeVoiceServer, VoiceSession
from tests.fakes.unmixr import FakeUnmixr
from tests.postgres_fixtures import password_as_query

REPOSITORY = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class Server:
    """A server of the stand-in with the people and channel the test uses."""

    guild: FakeGuild
    text: dict[str, Any]
    admin: FakeMember
    member: FakeMember

    async def slash(self, name: str, options: dict[str, Any] | None = None, **kwargs: Any) -> FakeInteraction:
        member = kwargs.pop("member", self.admin)
        return await self.guild._fake.slash(self.guild, self.text, member, name, options or {}, **kwargs)


@dataclass
class BotProcess:
    """One `python -m bot` process and its log."""

    name: str
    shards: str
    process: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for_log(self, needle: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.process.returncode is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {needle!r}:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash or an out-of-memory kill."""
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> int:
        """SIGTERM, as a process manager stops it; returns the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@dataclass
class Deployment:
    """The stand-ins, two servers on two shards, one PostgreSQL database, and the environment of every process."""

    discord: FakeDiscord
    unmixr: FakeUnmixr
    first: Server  # on shard 0
    second: Server  # on shard 1
    database_url: str
    directory: Path
    processes: list[BotProcess]
    # More settings for every process (SSL_CERT_FILE for a voice stand-in, say).
    extra: dict[str, str] = field(default_factory=dict)

    def environment(self, name: str, shards: str) -> dict[str, str]:
        # DATABASE_PATH is set too, to show that it is not used: with DATABASE_URL nothing goes to a SQLite file.
        return {
            **self.extra,
            **stand_in_env(self.directory / name, self.unmixr, self.discord),
            "PYTHONPATH": str(REPOSITORY),
            "DATABASE_URL": self.database_url,
            "SHARD_COUNT": "2",
            "SHARD_IDS": shards,
            "LOG_LEVEL": "INFO",
        }

    async def launch(self, name: str, shards: str) -> BotProcess:
        """Start `python -m bot` running these shards (each machine of a deployment has its own folder)."""
        home = self.directory / name
        home.mkdir(exist_ok=True)
        log = home / f"bot-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                cwd=home,
                env=self.environment(name, shards),
                stdout=output,
                stderr=output,
            )
        started = BotProcess(name, shards, process, log)
        self.processes.append(started)
        return started


def add_server(discord_fake: FakeDiscord, name: str) -> Server:
    guild = discord_fake.add_guild(name=name)
    text = guild.add_text_channel("general")
    admin = guild.add_member(f"Admin of {name}", permissions=ADMIN_PERMISSIONS)
    member = guild.add_member(f"Member of {name}", permissions=MEMBER_PERMISSIONS)
    return Server(guild, text, admin, member)


@pytest.fixture
async def deployment(tmp_path: Path, unmixr: FakeUnmixr, postgres_database: str) -> AsyncIterator[Deployment]:
    discord_fake = FakeDiscord(token=DISCORD_TOKEN, shard_count=2)
    await discord_fake.start()
    servers = [add_server(discord_fake, "Server A"), add_server(discord_fake, "Server B")]
    first, second = sorted(servers, key=lambda server: server.guild.shard_id)
    assert (first.guild.shard_id, second.guild.shard_id) == (0, 1)
    state = Deployment(discord_fake, unmixr, first, second, postgres_database, tmp_path, [])
    try:
        yield state
    finally:
        for process in state.processes:
            await process.stop()
        await discord_fake.close()


async def answer(interaction: FakeInteraction, timeout: float = 30.0) -> str:
    """The final answer's text: its content and every text of its embeds."""
    await interaction.wait_final(timeout=timeout)
    parts = [interaction.content()]
    for embed in interaction.embeds():
        parts += [embed.get("title", ""), embed.get("description", ""), embed.get("footer", {}).get("text", "")]
        parts += [f"{field['name']}: {field['value']}" for field in embed.get("fields", [])]
    return "\n".join(part for part in parts if part)


async def start_pair(deployment: Deployment, shards: tuple[str, str]) -> tuple[BotProcess, BotProcess]:
    """Start two processes at once (as a deployment does), one shard each, and wait until both are connected."""
    one = await deployment.launch("machine-a", shards[0])
    two = await deployment.launch("machine-b", shards[1])
    for process in (one, two):
        await process.wait_for_log(f"connected: this process runs shard {process.shards} of 2")
    return one, two


def recording(folder: Path, frequency: int) -> bytes:
    """A 35 s recording, as a member would upload for /clone."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is installed system-wide"
    target = folder / f"voice-{frequency}.mp3"
    source = f"sine=frequency={frequency}:duration=35"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", source, "-ac", "1", "-b:a", "32k", str(target)],
        check=True,
        timeout=60,
    )
    return target.read_bytes()


async def cloned_voice_owners(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        return {row["voice_id"]: row["guild_id"] for row in await connection.fetch("SELECT * FROM cloned_voices")}
    finally:
        await connection.close()


async def test_two_processes_one_shard_each_share_settings_and_clones_across_a_shard_swap(
    deployment: Deployment, tmp_path: Path
) -> None:
    zero, one = deployment.first, deployment.second
    # The commands are registered once, globally, as an operator does (`python -m bot sync`).
    sync = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sync", cwd=tmp_path, env=deployment.environment("sync", "0")
    )
    assert await asyncio.wait_for(sync.wait(), 60) == 0

    machine_a, machine_b = await start_pair(deployment, ("0", "1"))
    # Each shard was identified once, each by the one process told to run it. Started at once, the two IDENTIFYs
    # share the one bucket of max_concurrency 1 (events/gateway.mdx, "Max Concurrency"): the later gets op 9,
    # and discord.py identifies again 5 s later, so both come up.
    assert deployment.discord.identify_counts == {0: 1, 1: 1}
    assert len(deployment.discord.identify_refusals) <= 1

    # Settings, preferences and pronunciations made through each process, for the servers of its own shard.
    assert "+20%" in await answer(await zero.slash("settings", {"rate": "+20%"}, subcommand="rate"))
    assert "Ada" in await answer(await zero.slash("preferences", {"nickname": "Ada"}, subcommand="nickname"))
    assert "jif" in await answer(await zero.slash("pronounce", {"word": "GIF", "spoken": "jif"}, subcommand="add"))
    assert "-10%" in await answer(await one.slash("settings", {"pitch": "-10%"}, subcommand="pitch"))
    assert "Sequel" in await answer(await one.slash("pronounce", {"word": "SQL", "spoken": "Sequel"}, subcommand="add"))
    shown_zero = await answer(await zero.slash("settings", subcommand="show"))
    shown_one = await answer(await one.slash("settings", subcommand="show"))
    assert "+20%" in shown_zero and "Ada" in shown_zero and "-10%" not in shown_zero
    assert "-10%" in shown_one and "+20%" not in shown_one

    # Two clones at once, one in each process: each voice belongs to the server that made it.
    clone_zero, clone_one = await asyncio.gather(
        zero.slash(
            "clone",
            {"name": "Zero Voice", "consent": True},
            attachments={"audio": ("zero.mp3", recording(tmp_path, 220), "audio/mpeg")},
        ),
        one.slash(
            "clone",
            {"name": "One Voice", "consent": True},
            attachments={"audio": ("one.mp3", recording(tmp_path, 330), "audio/mpeg")},
        ),
    )
    assert "Zero Voice" in await answer(clone_zero, timeout=60)
    assert "One Voice" in await answer(clone_one, timeout=60)
    uuids = {clone["character"]: clone["uuid"] for clone in deployment.unmixr.clones}
    assert await cloned_voice_owners(deployment.database_url) == {
        uuids["Zero Voice"]: zero.guild.id,
        uuids["One Voice"]: one.guild.id,
    }

    # With the process of shard 1 gone, shard 0's server is still answered: machine A serves it.
    assert await machine_b.stop() == 0
    assert "+20%" in await answer(await zero.slash("settings", subcommand="show"))
    assert await machine_a.stop() == 0

    # Restart with the shards swapped: machine A now runs shard 1, machine B shard 0.
    machine_a, machine_b = await start_pair(deployment, ("1", "0"))
    assert await answer(await zero.slash("settings", subcommand="show")) == shown_zero
    assert await answer(await one.slash("settings", subcommand="show")) == shown_one
    listed = await answer(await zero.slash("pronounce", subcommand="list", member=zero.member))
    assert "GIF" in listed and "SQL" not in listed
    assert "SQL" in await answer(await one.slash("pronounce", subcommand="list", member=one.member))
    # Each clone is usable in its own server, and in no other.
    said = await zero.slash("say", {"text": "Hello from my own clone.", "voice": "Zero Voice"}, member=zero.member)
    await said.wait_final(timeout=30)
    assert said.files(), said.content()
    refused = await one.slash("say", {"text": "Borrowed voice.", "voice": "Zero Voice"}, member=one.member)
    assert "no voice called" in (await answer(refused)).lower()

    # Every process said which shards it ran, never wrote a SQLite file, and never logged the password.
    for process in deployment.processes:
        log = process.text()
        assert f"runs shard {process.shards} of 2" in log
        assert "Traceback" not in log
        for secret in (*url_secrets(deployment.database_url), DISCORD_TOKEN):
            assert secret not in log
    for machine in ("machine-a", "machine-b"):
        assert not (tmp_path / machine / "data" / "bot.sqlite3").exists()
    assert await machine_a.stop() == 0 and await machine_b.stop() == 0


async def test_a_shard_starting_a_new_session_reloads_its_servers_from_the_database(
    world: World, postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    await world.start_bot(database_url=SecretStr(postgres_database))
    rate = await world.slash("settings", {"rate": "+20%"}, subcommand="rate", member=world.admin)
    await rate.wait_final()
    # Another process held this shard for a while (Discord dropped this one's session) and changed the setting.
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute("UPDATE guild_settings SET rate = '-30%' WHERE guild_id = $1", world.guild.id)
    finally:
        await connection.close()
    assert "+20%" in await answer(await world.slash("settings", subcommand="show", member=world.admin))

    await world.discord.invalidate_session(shard_id=0, resumable=False)
    await world.discord.wait_until(
        lambda: "shard 0 has a new session" in caplog.text, timeout=30, what="the shard's new session"
    )
    shown = await answer(await world.slash("settings", subcommand="show", member=world.admin))
    assert "-30%" in shown and "+20%" not in shown


BASE_SETTINGS = {"DISCORD_TOKEN": DISCORD_TOKEN, "UNMIXR_API_KEY": "test-unmixr-key-abcdef123456"}
POSTGRES_URL = "postgresql://unmixr:s3cret-pass@db.internal:5432/unmixr"


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SHARD_IDS": "0"}, "SHARD_IDS: needs SHARD_COUNT"),
        ({"SHARD_IDS": "0", "SHARD_COUNT": "2"}, "SHARD_IDS: needs DATABASE_URL"),
        ({"SHARD_IDS": "0,2", "SHARD_COUNT": "2", "DATABASE_URL": POSTGRES_URL}, "each shard must be from 0 to 1"),
        ({"SHARD_IDS": "1,1", "SHARD_COUNT": "2", "DATABASE_URL": POSTGRES_URL}, "names a shard twice"),
        ({"SHARD_IDS": "zero", "SHARD_COUNT": "2", "DATABASE_URL": POSTGRES_URL}, "separated by commas"),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT"),
        ({"DATABASE_URL": "mysql://unmixr:s3cret-pass@db/unmixr"}, "DATABASE_URL: must be a postgresql://"),
    ],
)
def test_shard_and_database_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in {**BASE_SETTINGS, **environment}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None)
    assert message in str(refused.value)
    assert "s3cret-pass" not in str(refused.value)


def test_shards_and_a_database_url_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE_SETTINGS, "SHARD_IDS": "3, 1", "SHARD_COUNT": "4", "DATABASE_URL": POSTGRES_URL}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert (settings.shard_count, settings.shard_ids) == (4, (1, 3))
    assert settings.database_url is not None and "s3cret-pass" not in repr(settings)
    # SHARD_COUNT alone is fine, with SQLite too: one process running every shard of a fixed count.
    monkeypatch.delenv("SHARD_IDS")
    monkeypatch.delenv("DATABASE_URL")
    assert load_settings(_env_file=None).shard_count == 4


async def run_bot_process(environment: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(REPOSITORY), **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_database_password_given_as_a_query_parameter_is_never_printed(
    tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord, postgres_database: str
) -> None:
    # asyncpg also reads the password from ?password= (percent-encoded); the bot must mask that form too.
    wrong = "not+the/pass word!"
    environment = {
        **BASE_SETTINGS,
        "UNMIXR_API_KEY": unmixr.api_key,
        "UNMIXR_BASE_URL": unmixr.base_url,
        "DISCORD_API_BASE": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DATABASE_URL": password_as_query(postgres_database, wrong),
        "LOG_LEVEL": "DEBUG",
    }
    status, output = await run_bot_process(environment, tmp_path)
    assert status == 1
    [line] = [line for line in output.splitlines() if "Database:" in line]
    assert "password authentication failed" in line and "password=[redacted]" in line
    for form in (wrong, quote(wrong, safe=""), quote_plus(wrong)):
        assert form not in output


async def test_shard_ids_without_shard_count_stop_the_bot_with_one_line(tmp_path: Path) -> None:
    status, output = await run_bot_process({**BASE_SETTINGS, "SHARD_IDS": "0"}, tmp_path)
    assert status == 2
    assert output.strip().splitlines() == [
        "Invalid settings: SHARD_IDS: needs SHARD_COUNT, the total number of shards across every process. "
        "Set them in the environment or in a .env file (see .env.example)."
    ]


async def test_a_database_that_cannot_be_reached_stops_the_bot_with_one_line_and_no_password(
    tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord, postgres_database: str
) -> None:
    wrong = postgres_database.replace("unmixr:", "unmixr:not-the-password-", 1)
    environment = {
        **BASE_SETTINGS,
        "UNMIXR_API_KEY": unmixr.api_key,
        "UNMIXR_BASE_URL": unmixr.base_url,
        "DISCORD_API_BASE": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DATABASE_URL": wrong,
        "LOG_LEVEL": "DEBUG",
    }
    status, output = await run_bot_process(environment, tmp_path)
    assert status == 1
    assert "Traceback" not in output
    # One line, logged by the bot as it stops (after the log's time and level).
    [line] = [line for line in output.splitlines() if "Database:" in line]
    assert "password authentication failed" in line and "postgresql://unmixr:[redacted]@" in line
    for secret in url_secrets(wrong):
        assert secret not in output
    assert not (tmp_path / "data" / "bot.sqlite3").exists()


async def shared_clips(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT COUNT(*) FROM audio_cache"))
    finally:
        await connection.close()


async def test_the_same_say_through_two_processes_is_paid_once(deployment: Deployment) -> None:
    zero, one = deployment.first, deployment.second
    await start_pair(deployment, ("0", "1"))
    text = "One sentence, asked for on two machines."
    first = await zero.slash("say", {"text": text}, member=zero.member)
    assert "credits" in await answer(first)
    # Written to the shared tier after the answer, in the background.
    deadline = time.monotonic() + 10
    while await shared_clips(deployment.database_url) == 0:
        assert time.monotonic() < deadline, "the clip never reached the shared tier"
        await asyncio.sleep(0.1)

    # The other process, on its own machine (its own audio-cache folder), serves it from PostgreSQL.
    second = await one.slash("say", {"text": text}, member=one.member)
    assert "from cache" in await answer(second)
    assert second.files()[0][1] == first.files()[0][1]
    assert len([r for r in deployment.unmixr.requests if r.endpoint == "/short-tts/"]) == 1
    for process in deployment.processes:
        assert await process.stop() == 0
        assert "Traceback" not in process.text()


async def schema_versions(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        return [row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await connection.close()


async def advisory_waiters(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))


async def test_two_processes_starting_at_once_on_an_empty_database_migrate_once(deployment: Deployment) -> None:
    # The migration lock is held here until both processes wait for it, so they really do start at once.
    holder = await asyncpg.connect(deployment.database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        one = await deployment.launch("machine-a", "0")
        two = await deployment.launch("machine-b", "1")
        deadline = time.monotonic() + START_TIMEOUT
        while await advisory_waiters(holder) < 2:
            for process in (one, two):
                assert process.process.returncode is None, process.text()[-3000:]
            assert time.monotonic() < deadline, "the processes never waited for the migration lock"
            await asyncio.sleep(0.1)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        for process in (one, two):
            await process.wait_for_log(f"connected: this process runs shard {process.shards} of 2")
        applied = await holder.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await holder.close()
    assert [row["version"] for row in applied] == list(range(1, LATEST_VERSION + 1))
    # One process ran every migration; the other waited, then found the schema up to date.
    runs = [
        [line for line in process.text().splitlines() if "Applied database migration" in line] for process in (one, two)
    ]
    assert sorted(len(lines) for lines in runs) == [0, LATEST_VERSION]


async def test_a_process_older_than_the_schema_refuses_to_start_with_one_line(
    tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord, postgres_database: str
) -> None:
    # A newer bot migrated this database further than this one knows.
    await (await Storage.open(postgres_database)).close()
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)", LATEST_VERSION + 1
        )
    finally:
        await connection.close()
    environment = {
        **BASE_SETTINGS,
        "UNMIXR_API_KEY": unmixr.api_key,
        "UNMIXR_BASE_URL": unmixr.base_url,
        "DISCORD_API_BASE": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DATABASE_URL": postgres_database,
    }
    status, output = await run_bot_process(environment, tmp_path)
    assert status == 1
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "Database:" in line]
    assert f"schema version {LATEST_VERSION + 1}" in line and f"only knows up to version {LATEST_VERSION}" in line
    # Nothing was changed: the newer bot's schema is as it left it.
    assert await schema_versions(postgres_database) == [*range(1, LATEST_VERSION + 2)]


# ----- continuity (PRODUCT.md, Continuity): restarts, crashes, deploys


@dataclass
class Solo:
    """One bot process on a SQLite file, with a server whose voice channel the voice stand-in serves."""

    discord: FakeDiscord
    unmixr: FakeUnmixr
    voice_server: FakeVoiceServer
    server: Server
    readout: dict[str, Any]
    voice: dict[str, Any]
    directory: Path
    processes: list[BotProcess]

    @property
    def database(self) -> Path:
        return self.directory / "data" / "bot.sqlite3"

    async def launch(self) -> BotProcess:
        """Start `python -m bot`; returns once it is connected."""
        for event in self.discord.ready.values():
            event.clear()
        environment = {
            **stand_in_env(self.directory, self.unmixr, self.discord),  # its database is self.database
            "PYTHONPATH": str(REPOSITORY),
            "DEV_GUILD_ID": str(self.server.guild.id),
            "LOG_LEVEL": "INFO",
            # The voice stand-in's certificate is self-signed: the bot's process must trust it.
            "SSL_CERT_FILE": str(self.voice_server.cert_path),
        }
        log = self.directory / f"bot-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.directory, env=environment, stdout=output, stderr=output
            )
        started = BotProcess("solo", "0", process, log)
        self.processes.append(started)
        await started.wait_for_log("connected: this process runs")
        return started

    def holds(self) -> tuple[int, int]:
        """Credits held in the ledger, and processes recorded, read from the SQLite file."""
        with closing(sqlite3.connect(self.database)) as connection:
            (held,) = connection.execute("SELECT COALESCE(SUM(reserved), 0) FROM usage_ledger").fetchone()
            (instances,) = connection.execute("SELECT COUNT(*) FROM process_instances").fetchone()
        return int(held), int(instances)


@pytest.fixture
async def solo(tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord) -> AsyncIterator[Solo]:
    voice_server = FakeVoiceServer()
    await voice_server.start()
    voice_server.attach(discord_fake)
    server = add_server(discord_fake, "Solo Server")
    readout = server.guild.add_text_channel("readouts")
    voice = server.guild.add_voice_channel("Lounge")
    state = Solo(discord_fake, unmixr, voice_server, server, readout, voice, tmp_path, [])
    try:
        yield state
    finally:
        for process in state.processes:
            await process.stop()
        await voice_server.close()


async def fresh_session(voice_server: FakeVoiceServer, guild_id: int, after: int, timeout: float) -> VoiceSession:
    """The guild's first voice session opened after session number `after`, once connected."""
    deadline = time.monotonic() + timeout
    while True:
        for session in voice_server.all_sessions[after:]:
            if session.guild_id == guild_id and session.connected.is_set() and not session.disconnected.is_set():
                return session
        assert time.monotonic() < deadline, "the bot never connected to voice again"
        await asyncio.sleep(0.05)


async def read_aloud(discord_fake: FakeDiscord, unmixr: FakeUnmixr, session: VoiceSession, text: str) -> None:
    """Wait until `text` was sent to Unmixr and its audio arrived in the voice session."""
    await discord_fake.wait_until(
        lambda: any(r.endpoint == "/short-tts/" and r.json["text"].endswith(text) for r in unmixr.requests),
        timeout=20,
        what=f"a readout of {text!r}",
    )
    await discord_fake.wait_until(lambda: session.seconds_received() > 0.3, timeout=20, what="its audio")


async def test_a_bot_killed_in_voice_is_back_in_the_channel_and_reading_within_30_seconds(solo: Solo) -> None:
    server = solo.server
    first = await solo.launch()
    readout = ChannelOption(int(solo.readout["id"]))
    assert "readout" in await answer(await server.slash("settings", {"channel": readout}, subcommand="readout-channel"))
    await solo.discord.move_member(server.guild, server.member, solo.voice)
    assert "Joined" in await answer(await server.slash("join", member=server.member))
    session = await solo.voice_server.wait_for_session(server.guild.id, timeout=15)
    await solo.discord.post_message(server.guild, solo.readout, server.member, "Before the crash.")
    await read_aloud(solo.discord, solo.unmixr, session, "Before the crash.")

    await first.kill()
    sessions_before = len(solo.voice_server.all_sessions)
    restarted_at = time.monotonic()
    second = await solo.launch()
    session = await fresh_session(solo.voice_server, server.guild.id, sessions_before, timeout=30)
    await solo.discord.post_message(server.guild, solo.readout, server.member, "After the crash.")
    await read_aloud(solo.discord, solo.unmixr, session, "After the crash.")
    took = time.monotonic() - restarted_at
    print(f"back in voice and reading {took:.1f} s after the restart")
    assert took <= 30
    assert "rejoined voice channel" in second.text()
    assert await second.stop() == 0
    assert "Traceback" not in second.text()


async def test_sigterm_during_a_say_answers_it_exits_0_and_leaves_no_hold(solo: Solo) -> None:
    server = solo.server
    bot = await solo.launch()
    await solo.discord.move_member(server.guild, server.member, solo.voice)
    # A clip playing, the next one synthesised ahead, and a third queued: held, never sent.
    long_text = "A long clip that keeps playing while the bot is asked to stop, sentence after sentence. " * 3
    for text in (long_text, "The next clip, synthesised ahead.", "A queued clip that is never sent."):
        assert (
            "position"
            in (await answer(await server.slash("say", {"text": text, "play": True}, member=server.member))).lower()
        )
    held, instances = solo.holds()
    assert held > 0 and instances == 1
    solo.unmixr.set_latency(3.0, endpoint="/short-tts/")
    said = await server.slash("say", {"text": "Answer me before you go."}, member=server.member)
    await solo.discord.wait_until(
        lambda: any(r.json["text"] == "Answer me before you go." for r in solo.unmixr.requests if r.json),
        what="the /say request at Unmixr",
    )

    bot.process.send_signal(signal.SIGTERM)
    await bot.wait_for_log("stopping: finishing in-flight replies")
    late = await server.slash("settings", subcommand="show")
    assert "restarting" in await answer(late)
    assert late.ephemeral
    await said.wait_final(timeout=15)
    assert said.files(), said.content()
    assert await asyncio.wait_for(bot.process.wait(), 20) == 0
    assert solo.holds() == (0, 0)
    texts = [r.json["text"] for r in solo.unmixr.requests if r.endpoint == "/short-tts/"]
    assert not any("never sent" in text for text in texts)
    # The voice channel stays recorded for the next start.
    with closing(sqlite3.connect(solo.database)) as connection:
        assert connection.execute("SELECT guild_id, channel_id FROM voice_sessions").fetchall() == [
            (server.guild.id, int(solo.voice["id"]))
        ]
    assert "Traceback" not in bot.text()


async def test_a_second_process_for_the_same_shard_waits_for_the_lease(deployment: Deployment) -> None:
    zero = deployment.first
    running = await deployment.launch("machine-a", "0")
    await running.wait_for_log("connected: this process runs shard 0 of 2")
    waiting = await deployment.launch("machine-b", "0")
    await waiting.wait_for_log("waiting for shard 0 of 2")
    assert f"process {running.process.pid} on " in waiting.text()
    await asyncio.sleep(3)
    # Never identified while the other process runs the shard: it never reads aloud or charges twice.
    assert deployment.discord.identify_counts == {0: 1}
    assert "+25%" in await answer(await zero.slash("settings", {"rate": "+25%"}, subcommand="rate"))

    # A rolling deploy: the old process stops, the new one takes the shard at once.
    assert await running.stop() == 0
    stopped_at = time.monotonic()
    await waiting.wait_for_log("connected: this process runs shard 0 of 2", timeout=30)
    print(f"the waiting process connected {time.monotonic() - stopped_at:.1f} s after the other stopped")
    assert "took the lease of shard 0 of 2" in waiting.text()
    assert deployment.discord.identify_counts == {0: 2}
    assert "+25%" in await answer(await zero.slash("settings", subcommand="show"))


async def ledger_holds(url: str) -> dict[str | None, int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT instance_id, SUM(reserved) AS held FROM usage_ledger WHERE reserved > 0 GROUP BY instance_id"
        )
        return {row["instance_id"]: int(row["held"]) for row in rows}
    finally:
        await connection.close()


async def instance_of(url: str, process: BotProcess) -> str:
    connection = await asyncpg.connect(url)
    try:
        found = await connection.fetchval(
            "SELECT instance_id FROM process_instances WHERE pid = $1", process.process.pid
        )
    finally:
        await connection.close()
    assert found is not None, process.text()[-2000:]
    return str(found)


async def test_a_crashed_processs_holds_are_released_within_a_minute_and_a_live_ones_old_holds_stay(
    deployment: Deployment,
) -> None:
    zero, one = deployment.first, deployment.second
    crashing, live = await start_pair(deployment, ("0", "1"))
    url = deployment.database_url
    crashing_id, live_id = await instance_of(url, crashing), await instance_of(url, live)
    # The live process holds credits for a request made two days ago (a clip still waiting, say).
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO usage_ledger (guild_id, user_id, at, day, reserved, instance_id) "
            "VALUES ($1, $2, EXTRACT(EPOCH FROM now()) - 172800, to_char(now() - interval '2 days', 'YYYY-MM-DD'), "
            "77, $3)",
            one.guild.id,
            one.member.id,
            live_id,
        )
    finally:
        await connection.close()
    # A /say whose request Unmixr never answers: its hold stays open until the process crashes.
    deployment.unmixr.hang_next(endpoint="/short-tts/")
    text = "Held when the process dies."
    await zero.slash("say", {"text": text}, member=zero.member)
    await deployment.discord.wait_until(
        lambda: any(r.json and r.json.get("text") == text for r in deployment.unmixr.requests), what="the request"
    )
    # With no budget to check, the request's ledger row is written just after its hold starts (UnwrittenRow).
    expected = {crashing_id: len(text), live_id: 77}
    written_by = time.monotonic() + 5
    while (holds := await ledger_holds(url)) != expected and time.monotonic() < written_by:
        await asyncio.sleep(0.05)
    assert holds == expected

    await crashing.kill()
    restarted = await deployment.launch("machine-a", "0")
    restarted_at = time.monotonic()
    deadline = restarted_at + 75
    while crashing_id in await ledger_holds(url):
        assert time.monotonic() < deadline, "the crashed process's hold was never released"
        await asyncio.sleep(0.5)
    print(f"released {time.monotonic() - restarted_at:.1f} s after the next start")
    assert await ledger_holds(url) == {live_id: 77}
    released = [p.text() for p in (restarted, live) if f"left by process {crashing.process.pid} on " in p.text()]
    assert released, "no process said whose holds it released"
    await restarted.wait_for_log("connected: this process runs shard 0 of 2", timeout=60)
    assert await restarted.stop() == 0 and await live.stop() == 0


async def test_two_processes_swapping_shards_while_a_server_is_in_voice_the_new_owner_rejoins(
    deployment: Deployment,
) -> None:
    voice_server = FakeVoiceServer()
    await voice_server.start()
    voice_server.attach(deployment.discord)
    deployment.extra["SSL_CERT_FILE"] = str(voice_server.cert_path)
    try:
        zero = deployment.first
        readout = zero.guild.add_text_channel("readouts")
        lounge = zero.guild.add_voice_channel("Lounge")
        machine_a, machine_b = await start_pair(deployment, ("0", "1"))
        option = ChannelOption(int(readout["id"]))
        assert "readout" in await answer(
            await zero.slash("settings", {"channel": option}, subcommand="readout-channel")
        )
        await deployment.discord.move_member(zero.guild, zero.member, lounge)
        assert "Joined" in await answer(await zero.slash("join", member=zero.member))
        session = await voice_server.wait_for_session(zero.guild.id, timeout=15)
        await deployment.discord.post_message(zero.guild, readout, zero.member, "Read by machine A.")
        await read_aloud(deployment.discord, deployment.unmixr, session, "Read by machine A.")

        # A deploy that swaps the shards: machine B runs shard 0 from now on, and rejoins the channel.
        assert await machine_a.stop() == 0 and await machine_b.stop() == 0
        for event in deployment.discord.ready.values():
            event.clear()
        sessions_before = len(voice_server.all_sessions)
        machine_a, machine_b = await start_pair(deployment, ("1", "0"))
        session = await fresh_session(voice_server, zero.guild.id, sessions_before, timeout=30)
        await deployment.discord.post_message(zero.guild, readout, zero.member, "Read by machine B.")
        await read_aloud(deployment.discord, deployment.unmixr, session, "Read by machine B.")
        assert "rejoined voice channel" in machine_b.text()
        assert "rejoined voice channel" not in machine_a.text()
        assert await machine_a.stop() == 0 and await machine_b.stop() == 0
    finally:
        for process in deployment.processes:
            await process.stop()
        await voice_server.close()
