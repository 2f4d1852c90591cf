"""Tests of the operator's command line (`python -m bot ...`), run as real subprocesses against the stand-ins."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from pathlib import Path

from tests.cli_support import assert_no_secrets, base_env, cli_env, run_cli
from tests.conftest import DISCORD_TOKEN, UNMIXR_KEY
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr import FakeUnmixr

__all__ = ["cli_env"]  # a fixture the tests below use by name


async def test_missing_required_settings_give_one_readable_message(tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli(env=base_env(tmp_path), cwd=tmp_path)
    output = stderr.strip()
    assert status == 2
    assert stdout == ""
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert "DISCORD_TOKEN" in output and "UNMIXR_API_KEY" in output
    assert "discord.com/developers/applications" in output
    assert "unmixr.com" in output
    assert not (tmp_path / "data").exists()


async def test_a_missing_token_alone_is_named_alone(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "UNMIXR_API_KEY": UNMIXR_KEY}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    output = stdout + stderr
    assert status != 0
    assert "DISCORD_TOKEN" in output and "UNMIXR_API_KEY" not in output
    assert "Traceback" not in output
    assert_no_secrets(output)


async def test_an_invalid_setting_is_named_with_what_is_accepted(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "UNMIXR_API_KEY": UNMIXR_KEY, "DISCORD_TOKEN": DISCORD_TOKEN, "LOG_LEVEL": "loud"}
    status, stdout, stderr = await run_cli("balance", env=env, cwd=tmp_path)
    assert status != 0
    assert stderr.strip() == (
        "Invalid settings: LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL. "
        "Set them in the environment or in a .env file (see .env.example)."
    )
    assert_no_secrets(stdout, stderr)


async def test_check_reports_balance_voice_support_and_the_intent(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("check", env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    assert "1,000,000 prebuilt and 100,000 cloned characters" in stdout
    for part in ("ffmpeg", "libopus", "PyNaCl", "davey"):
        assert f"{part}: OK" in stdout
    assert "DAVE (end-to-end encrypted voice): OK, protocol version 1" in stdout
    assert "Message Content intent: enabled" in stdout
    assert "Discord: OK" in stdout
    assert "All checks passed." in stdout
    assert stderr.strip() == "", f"a clean check prints no warnings: {stderr}"
    assert_no_secrets(stdout, stderr)


async def test_check_reports_a_davey_without_dave_as_the_4017_problem_with_its_fix(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # A davey that offers no DAVE protocol version: discord.py would identify with max_dave_protocol_version 0.
    old = tmp_path / "old-davey"
    old.mkdir()
    (old / "davey.py").write_text("DAVE_PROTOCOL_VERSION = 0\n")
    status, stdout, stderr = await run_cli("check", env={**cli_env, "PYTHONPATH": str(old)}, cwd=tmp_path)
    assert status == 1, stdout + stderr
    assert "DAVE (end-to-end encrypted voice): missing" in stdout
    assert "4017" in stderr and "update discord.py and davey" in stderr
    assert "permission" not in (stdout + stderr).lower()
    assert "Traceback" not in stderr
    assert_no_secrets(stdout, stderr)


async def test_check_reports_a_missing_message_content_intent(
    tmp_path: Path, unmixr: FakeUnmixr, cli_env: dict[str, str]
) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, message_content_allowed=False) as without_intent:
        env = {
            **cli_env,
            "DISCORD_API_BASE": without_intent.api_base,
            "DISCORD_GATEWAY_URL": without_intent.gateway_url,
        }
        status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    assert "Message Content intent: not enabled" in stdout
    assert "discord.com/developers/applications" in stdout


async def test_check_reports_missing_ffmpeg_as_a_problem(cli_env: dict[str, str], tmp_path: Path) -> None:
    # A PATH with Python but not ffmpeg (installed in /usr/bin here).
    env = {**cli_env, "PATH": str(Path(sys.executable).parent)}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1, stdout + stderr
    assert "ffmpeg: missing" in stdout and "ffprobe: missing" in stdout
    assert "PyNaCl: OK" in stdout
    problems = stderr.splitlines()
    assert len(problems) == 1 and "ffmpeg" in problems[0] and "apt-get install ffmpeg" in problems[0]
    assert "Traceback" not in stdout + stderr


async def test_check_with_a_wrong_unmixr_key_exits_1_with_a_plain_sentence(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "UNMIXR_API_KEY": "wrong-key-1234567890"}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    assert stderr.splitlines() == [
        f"Problem: Unmixr at {cli_env['UNMIXR_BASE_URL']} rejected UNMIXR_API_KEY; copy the key again from "
        "https://app.unmixr.com/manage-api-keys/ (the API needs an eligible Unmixr plan)."
    ]
    assert "Traceback" not in stdout + stderr
    assert "wrong-key-1234567890" not in stdout + stderr


async def test_check_with_a_wrong_discord_token_exits_1(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    env = {**cli_env, "DISCORD_TOKEN": "not-the-token-0987654321"}
    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    assert stderr.splitlines() == [
        "Problem: Discord refused DISCORD_TOKEN; copy it again from the Bot page of your application."
    ]
    assert "Traceback" not in stdout + stderr
    assert "not-the-token-0987654321" not in stdout + stderr
    # One 401, and no further request with the refused token: how Discord tells the operator, not a waste.
    assert [(r.path, r.status) for r in discord_fake.invalid_requests] == [("/users/@me", 401)]
    discord_fake.invalid_requests.clear()


async def test_say_writes_a_decodable_mp3(cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr) -> None:
    status, stdout, stderr = await run_cli(
        "say", "Hello there.", "--voice", "Brian", "-o", "out.mp3", env=cli_env, cwd=tmp_path
    )
    assert status == 0, stdout + stderr
    assert "Brian" in stdout
    output = tmp_path / "out.mp3"
    assert output.stat().st_size > 0
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_streams", "-of", "json", str(output), stdout=asyncio.subprocess.PIPE
    )
    described, _ = await probe.communicate()
    assert probe.returncode == 0
    streams = json.loads(described)["streams"]
    assert [stream["codec_name"] for stream in streams] == ["mp3"]
    [request] = [r.json for r in unmixr.requests if r.endpoint == "/short-tts/"]
    assert request is not None and request["text"] == "Hello there."


async def test_balance_with_a_wrong_key_exits_1_with_a_plain_sentence(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "UNMIXR_API_KEY": "wrong-key-1234567890"}
    status, stdout, stderr = await run_cli("balance", env=env, cwd=tmp_path)
    assert status == 1
    assert stderr.strip() == (
        f"Unmixr at {cli_env['UNMIXR_BASE_URL']} rejected UNMIXR_API_KEY; copy the key again from "
        "https://app.unmixr.com/manage-api-keys/ (the API needs an eligible Unmixr plan)."
    )
    assert "wrong-key-1234567890" not in stdout + stderr


async def test_voices_lists_by_language(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("voices", "--language", "fr-FR", env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    assert "Amelie" in stdout
    assert "Hans" not in stdout


async def test_balance_prints_the_numbers(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("balance", env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    assert "1,000,000" in stdout and "100,000" in stdout


async def test_sync_registers_the_commands_on_one_server(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    guild = discord_fake.add_guild(name="Synced Server")
    status, stdout, stderr = await run_cli("sync", "--guild", str(guild.id), env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    names = {command["name"] for command in discord_fake.commands[guild.id]}
    assert {"say", "voices", "clone", "balance", "settings", "preferences", "pronounce", "Read aloud"} <= names
    assert discord_fake.commands["global"] == []
    assert f"server {guild.id}" in stdout


async def test_sync_without_a_server_registers_the_commands_globally(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    status, stdout, stderr = await run_cli("sync", env=cli_env, cwd=tmp_path)
    assert status == 0, stdout + stderr
    synced = {command["name"]: command for command in discord_fake.commands["global"]}
    assert {"say", "voices", "clone", "balance", "settings", "preferences", "pronounce", "Read aloud"} <= set(synced)
    assert str(synced["settings"]["default_member_permissions"]) == str(1 << 5)
    assert synced["pronounce"]["default_member_permissions"] is None
    # Guild-only: never offered in DMs or group DMs.
    assert synced["say"]["contexts"] == [0]
    assert "global commands" in stdout


async def test_run_connects_and_stops_cleanly_on_sigterm_with_secrets_masked(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    guild = discord_fake.add_guild(name="Run Server")
    guild.add_text_channel("general")
    env = {**cli_env, "DEV_GUILD_ID": str(guild.id), "LOG_LEVEL": "DEBUG"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await discord_fake.wait_until_connected(timeout=20)
        await discord_fake.wait_until(lambda: bool(discord_fake.commands[guild.id]), timeout=10, what="the dev sync")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "Traceback" not in log
    assert_no_secrets(stdout.decode(), log)
    assert (tmp_path / "data" / "bot.sqlite3").exists()


async def test_say_output_gets_the_usual_permissions_and_the_cache_stays_private(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # The umask of the shell the operator runs it from (022 here) decides, as for any file a program creates.
    code = "import os, sys; os.umask(0o022); from bot.cli import main; sys.exit(main(sys.argv[1:]))"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "say", "Permissions.", "-o", "shared.mp3", env=cli_env, cwd=tmp_path
    )
    assert await process.wait() == 0
    assert stat.S_IMODE((tmp_path / "shared.mp3").stat().st_mode) == 0o644
    cached = list((tmp_path / "data" / "audio-cache").glob("*.audio"))
    assert cached and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in cached)


async def test_voices_prints_aligned_columns_and_counts_in_words(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("voices", "--language", "fr-FR", env=cli_env, cwd=tmp_path)
    assert status == 0, stderr
    *rows, footer = stdout.splitlines()
    assert rows[0].split() == ["uuid", "name", "gender", "language", "quality"]
    assert len(rows) > 2
    # Every value starts where its column's heading does, two spaces after the widest value before it.
    offsets = [rows[0].index(word) for word in ("name", "gender", "language", "quality")]
    for row in rows[1:]:
        for offset in offsets:
            assert row[offset - 2 : offset] == "  " and row[offset] != " ", (row, offset)
    count = len(rows) - 1
    assert footer == f"page 1 of 1, {count} voice" + ("" if count == 1 else "s")

    status, stdout, stderr = await run_cli("voices", "--query", "Amelie", env=cli_env, cwd=tmp_path)
    assert status == 0, stderr
    assert stdout.splitlines()[-1] == "page 1 of 1, 1 voice"
