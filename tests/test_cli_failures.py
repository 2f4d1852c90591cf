"""The operator's command line reports every failure as one line on stderr, with exit status 1 (2 for bad usage)."""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import shutil
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import build_parser
from bot.connect import DISCORD_ANSWER_SECONDS
from bot.settings import PLACEHOLDERS
from tests.cli_support import assert_no_secrets, base_env, cli_env, one_line, run_cli
from tests.fakes.discord_server import FakeDiscord

__all__ = ["cli_env"]  # a fixture the tests below use by name

REPOSITORY = Path(__file__).resolve().parent.parent
CLOSED_PORT_URL = "http://127.0.0.1:9"


def test_settings_know_the_placeholders_of_env_example() -> None:
    shipped = dict(
        line.split("=", 1) for line in (REPOSITORY / ".env.example").read_text().splitlines() if re.match(r"\w+=", line)
    )
    assert {name: shipped[name] for name in PLACEHOLDERS} == PLACEHOLDERS


async def test_env_example_copied_unchanged_counts_as_missing(tmp_path: Path) -> None:
    shutil.copy(REPOSITORY / ".env.example", tmp_path / ".env")
    status, stdout, stderr = await run_cli("check", env=base_env(tmp_path), cwd=tmp_path)
    assert status == 2
    assert stdout == "", "never 'Configuration: OK' for placeholder values"
    line = one_line(stderr)
    assert line.startswith("Missing required settings: DISCORD_TOKEN (still the placeholder from .env.example")
    assert "UNMIXR_API_KEY (still the placeholder from .env.example" in line


def test_every_option_has_help_and_categories_are_listed() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in subparsers.choices.items():
        for action in command._actions:
            assert action.help, f"`{name} {'/'.join(action.option_strings) or action.dest}` has no help text"
    help_text = subparsers.choices["voices"].format_help()
    for category in ("prebuilt-voices", "clones", "chat-voices", "animation-voices"):
        assert category in help_text


async def test_an_unknown_category_is_bad_usage_naming_the_categories(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("voices", "--category", "robots", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 2
    line = one_line(stderr)
    assert "invalid choice: 'robots'" in line and "prebuilt-voices" in line and "chat-voices" in line


async def test_a_missing_argument_is_one_line_of_usage(cli_env: dict[str, str], tmp_path: Path) -> None:
    status, stdout, stderr = await run_cli("say", "Hello.", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 2
    assert "-o/--output" in one_line(stderr)


async def test_sync_to_a_server_the_bot_is_not_in_is_one_line(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    status, stdout, stderr = await run_cli("sync", "--guild", "123456789012345678", env=cli_env, cwd=tmp_path)
    assert status == 1
    line = one_line(stderr)
    assert line.startswith("Discord refused to sync the commands to server 123456789012345678 (403 Missing Access)")
    assert "applications.commands" in line
    assert_no_secrets(stdout, stderr)
    # The one 403 is Discord's answer to the operator's server id, and nothing follows it.
    assert [r.status for r in discord_fake.invalid_requests] == [403]
    discord_fake.invalid_requests.clear()


async def test_tools_name_discord_when_it_cannot_be_reached(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "DISCORD_API_BASE": f"{CLOSED_PORT_URL}/api/v10"}
    status, stdout, stderr = await run_cli("sync", env=env, cwd=tmp_path)
    assert status == 1
    assert one_line(stderr).startswith(f"Discord could not be reached at {CLOSED_PORT_URL} (")
    assert stdout == ""

    status, stdout, stderr = await run_cli("check", env=env, cwd=tmp_path)
    assert status == 1
    assert one_line(stderr).startswith(f"Problem: Discord could not be reached at {CLOSED_PORT_URL}")
    assert "Unmixr: OK" in stdout and stdout.endswith("\n1 problem found.\n")


async def test_balance_names_unmixr_when_it_cannot_be_reached(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "UNMIXR_BASE_URL": f"{CLOSED_PORT_URL}/api/v1"}
    status, stdout, stderr = await run_cli("balance", env=env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    assert one_line(stderr) == (
        f"Unmixr could not be reached at {CLOSED_PORT_URL}/api/v1 (Connection refused); check the network and "
        "UNMIXR_BASE_URL."
    )


async def test_running_the_bot_without_discord_is_one_line_naming_discord(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "DISCORD_API_BASE": f"{CLOSED_PORT_URL}/api/v10", "LOG_LEVEL": "WARNING"}
    status, stdout, stderr = await run_cli(env=env, cwd=tmp_path)
    assert status == 1
    line = one_line(stderr)
    assert f"Discord could not be reached at {CLOSED_PORT_URL}" in line and "ERROR" in line
    assert_no_secrets(stdout, stderr)


async def test_running_the_bot_on_a_taken_metrics_port_is_one_line(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**cli_env, "METRICS_PORT": str(port), "LOG_LEVEL": "WARNING"}
        status, stdout, stderr = await run_cli(env=env, cwd=tmp_path)
        assert stdout == "", stdout
    assert status == 1
    line = one_line(stderr)
    assert f"Cannot serve monitoring on METRICS_HOST 127.0.0.1 port {port} (Address already in use)" in line


async def test_sync_leaves_the_monitoring_port_to_the_running_bot(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**cli_env, "METRICS_PORT": str(taken.getsockname()[1])}
        status, stdout, stderr = await run_cli("sync", env=env, cwd=tmp_path)
    assert status == 0, stderr
    assert "global commands" in stdout


async def test_the_readme_operator_commands_run_as_written(cli_env: dict[str, str], tmp_path: Path) -> None:
    readme = (REPOSITORY / "README.md").read_text()
    bare = re.findall(r"python3 -m (?!venv)\S+", readme)
    assert bare == [], "a bare python3 has none of the bot's packages after the README's install into .venv"
    block = readme.split("## Operator tools", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #", 1)[0].replace(" [--guild ID]", "") for line in block.splitlines() if line.strip()]
    assert len(commands) == 5
    for command in commands:
        words = shlex.split(command)
        # The suite runs in the interpreter the README's own install made (.venv/bin/python in CI).
        assert words[:3] == [".venv/bin/python", "-m", "bot"], command
        status, stdout, stderr = await run_cli(*words[3:], env=cli_env, cwd=tmp_path)
        assert status == 0, (command, stdout, stderr)
        assert stderr == "", (command, stderr)
    assert (tmp_path / "hello.mp3").stat().st_size > 0


async def test_a_secret_shorter_than_8_characters_is_refused_at_start(tmp_path: Path) -> None:
    # The README once suggested DISCORD_TOKEN=x for the stand-ins: masking "x" garbled every message.
    env = {
        **base_env(tmp_path),
        "DISCORD_TOKEN": "x",
        "UNMIXR_API_KEY": "test-unmixr-key-abcdef",
        "OPENAI_API_KEY": "sk-1",
    }
    for command in ([], ["check"], ["say", "Hello.", "-o", "nonexistent/x.mp3"]):
        status, stdout, stderr = await run_cli(*command, env=env, cwd=tmp_path)
        assert status == 2, (command, stderr)
        assert stdout == ""
        assert one_line(stderr) == (
            "Invalid settings: DISCORD_TOKEN: is shorter than 8 characters, so it cannot be a real one; copy it "
            "again; OPENAI_API_KEY: is shorter than 8 characters, so it cannot be a real one; copy it again. "
            "Set them in the environment or in a .env file (see .env.example)."
        )
    assert not (tmp_path / "data").exists()


async def test_messages_are_not_garbled_by_masking(cli_env: dict[str, str], tmp_path: Path) -> None:
    # An 8-character secret that also occurs inside ordinary words is still masked, and nothing else is.
    env = {**cli_env, "DISCORD_TOKEN": "nonexist"}
    status, _, stderr = await run_cli("say", "Hello.", "-o", "nonexistent/x.mp3", env=env, cwd=tmp_path)
    assert status == 1
    assert one_line(stderr).startswith("Cannot write [redacted]ent/x.mp3")
    status, _, stderr = await run_cli("say", "Hello.", "-o", "missing/x.mp3", env=cli_env, cwd=tmp_path)
    assert status == 1
    assert one_line(stderr).startswith("Cannot write missing/x.mp3")


def test_the_readme_gives_no_secret_too_short_to_start() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    given = re.findall(r"\b(?:DISCORD_TOKEN|UNMIXR_API_KEY|OPENAI_API_KEY)=([^\s`]+)", readme)
    assert given, "the README shows how to run against the stand-ins"
    assert all(len(value) >= 8 for value in given), given


class SilentServer:
    """Accepts connections and never answers (a firewall or proxy holding them): TCP, or a WebSocket without Hello."""

    def __init__(self, *, websocket: bool = False) -> None:
        self.websocket = websocket
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> SilentServer:
        if self.websocket:
            app = web.Application()
            app.router.add_get("/gateway", self._never_hello)
            self._runner = web.AppRunner(app, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = self._runner.addresses[0][1]
        else:
            self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while await reader.read(4096):
            pass
        writer.close()

    async def _never_hello(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        async for _message in socket_:
            pass
        return socket_


async def run_with_short_timeout(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`python -m bot ARGS` with Discord's answer timeout shortened from 30 s to 1 s (the only difference)."""
    code = (
        "import sys, bot.connect; bot.connect.DISCORD_ANSWER_SECONDS = 1.0; "
        "from bot.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def test_discord_gets_30_seconds_to_answer() -> None:
    assert DISCORD_ANSWER_SECONDS == 30


async def test_a_discord_that_never_answers_the_login_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    async with SilentServer() as silent:
        env = {**cli_env, "DISCORD_API_BASE": f"http://127.0.0.1:{silent.port}/api/v10", "LOG_LEVEL": "WARNING"}
        status, stdout, stderr = await run_with_short_timeout(env=env, cwd=tmp_path)
        assert silent.connections >= 1
        assert status == 1
        line = one_line(stderr)
        assert "ERROR" in line and line.endswith(
            f"Discord did not answer at http://127.0.0.1:{silent.port} within 1 s while logging in; check the "
            "network (a firewall or proxy may be holding the connection), then start again."
        )
        status, stdout, stderr = await run_with_short_timeout("check", env=env, cwd=tmp_path)
        assert status == 1
        assert one_line(stderr).startswith(f"Problem: Discord did not answer at http://127.0.0.1:{silent.port} within")
        assert_no_secrets(stdout, stderr)


@pytest.mark.parametrize("websocket", [False, True], ids=["no-handshake", "no-hello"])
async def test_a_gateway_that_never_answers_is_one_line(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord, websocket: bool
) -> None:
    async with SilentServer(websocket=websocket) as silent:
        gateway = f"ws://127.0.0.1:{silent.port}/gateway"
        # With SHARD_COUNT set, discord.py connects to DISCORD_GATEWAY_URL itself (not the URL /gateway/bot gives).
        env = {**cli_env, "DISCORD_GATEWAY_URL": gateway, "SHARD_COUNT": "1", "LOG_LEVEL": "WARNING"}
        status, stdout, stderr = await run_with_short_timeout(env=env, cwd=tmp_path)
        assert silent.connections >= 1
    assert status == 1
    line = one_line(stderr)
    assert "ERROR" in line and line.endswith(
        f"Discord's gateway at {gateway} did not answer within 1 s; check the network (a firewall or proxy may be "
        "holding the connection), then start again."
    )
    assert stdout == ""
