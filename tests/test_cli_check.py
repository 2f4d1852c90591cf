"""`python -m bot check` tries every backend and setting the bot will use, and says what it found, one line each."""

from __future__ import annotations

import socket
from pathlib import Path

from bot.storage import LATEST_VERSION, url_secrets
from tests.cli_support import assert_no_secrets, cli_env, run_cli
from tests.conftest import DISCORD_TOKEN
from tests.fakes.discord_server import FakeDiscord

__all__ = ["cli_env"]  # a fixture the tests below use by name

UNREACHABLE_DATABASE = "postgresql://unmixr:s3cret-passw0rd@127.0.0.1:9/unmixr"


async def test_an_unreachable_database_url_is_a_problem(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "DATABASE_URL": UNREACHABLE_DATABASE}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1, stdout
    assert "All checks passed" not in stdout
    assert stdout.endswith("\n1 problem found.\n")
    [problem] = stderr.splitlines()
    assert problem.startswith(
        "Problem: Database: Could not connect to the database at postgresql://unmixr:[redacted]@127.0.0.1:9/unmixr: "
    )
    for secret in url_secrets(UNREACHABLE_DATABASE):
        assert secret not in stdout + stderr


async def test_a_reachable_database_url_is_reported_with_its_schema(
    cli_env: dict[str, str], tmp_path: Path, postgres_database: str
) -> None:
    env = {**cli_env, "DATABASE_URL": postgres_database}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    [line] = [line for line in stdout.splitlines() if line.startswith("Database:")]
    assert line.startswith("Database: OK, PostgreSQL at postgresql://")
    assert line.endswith(f", schema version 0 (the bot migrates it to {LATEST_VERSION} at start)")
    for secret in url_secrets(postgres_database):
        assert secret not in stdout + stderr


async def test_a_first_start_is_checked_without_creating_anything(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("check", env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    data = tmp_path / "data"
    assert f"Database: OK, {data / 'bot.sqlite3'} (created at start)" in stdout
    assert f"Audio cache: OK, {data / 'audio-cache'} (created at start)" in stdout
    assert "Monitoring: off (METRICS_PORT is not set)" in stdout
    assert "Shards: OK, Discord recommends 1 and the bot will run that many" in stdout
    assert not data.exists()


async def test_a_database_folder_the_bot_cannot_create_is_a_problem(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the bot wants a folder")
    env = {**cli_env, "DATABASE_PATH": str(blocker / "bot.sqlite3"), "AUDIO_CACHE_DIR": str(blocker / "cache")}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    assert stderr.splitlines() == [
        f"Problem: Database: DATABASE_PATH {blocker / 'bot.sqlite3'} cannot be created: {blocker} is not a folder.",
        f"Problem: Audio cache: AUDIO_CACHE_DIR {blocker / 'cache'} cannot be created: {blocker} is not a folder.",
    ]
    assert stdout.endswith("\n2 problems found.\n")


async def test_a_taken_metrics_port_is_a_problem(cli_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _stdout, stderr = await run_cli("check", env={**cli_env, "METRICS_PORT": str(port)}, cwd=tmp_path)
    assert status == 1
    assert stderr.splitlines() == [
        f"Problem: Monitoring: cannot serve on METRICS_HOST 127.0.0.1 port {port} (Address already in use); "
        "choose a free METRICS_PORT, or leave it unset to turn monitoring off."
    ]


async def test_settings_naming_voices_servers_and_channels_are_tried(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    guild = discord_fake.add_guild(name="Dev Server")
    alerts = guild.add_text_channel("alerts")
    env = {
        **cli_env,
        "DEFAULT_VOICE_ID": "00000000-0000-0000-0000-000000000000",
        "DEV_GUILD_ID": "123456789012345678",
        "ALERT_CHANNEL_ID": "876543210987654321",
    }
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    problems = stderr.splitlines()
    assert len(problems) == 3, stderr
    assert problems[0].startswith("Problem: DEFAULT_VOICE_ID 00000000-0000-0000-0000-000000000000 is not a voice")
    assert problems[1].startswith("Problem: DEV_GUILD_ID 123456789012345678: the bot cannot see it")
    assert problems[2].startswith("Problem: ALERT_CHANNEL_ID 876543210987654321: the bot cannot see it")
    assert stdout.endswith("\n3 problems found.\n")

    env = {**env, "DEV_GUILD_ID": str(guild.id), "ALERT_CHANNEL_ID": str(alerts["id"])}
    env.pop("DEFAULT_VOICE_ID")
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 0, stderr
    assert "DEV_GUILD_ID: OK, Dev Server" in stdout
    assert "ALERT_CHANNEL_ID: OK, alerts" in stdout
    assert_no_secrets(stdout, stderr)


async def test_too_few_shards_for_discord_is_a_problem(cli_env: dict[str, str], tmp_path: Path) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as larger:
        env = {
            **cli_env,
            "DISCORD_API_BASE": larger.api_base,
            "DISCORD_GATEWAY_URL": larger.gateway_url,
            "SHARD_COUNT": "1",
        }
        status, _stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    assert stderr.splitlines() == [
        "Problem: SHARD_COUNT is 1 but Discord needs at least 2 shards for this bot's servers; set SHARD_COUNT to 2 "
        "or more."
    ]
