"""Logs during outages, from a real `python -m bot` process: one WARNING per kind of failure, with the address and
the reason; no traceback at the default level."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

from tests.cli_support import cli_env
from tests.fakes.discord_server import FakeDiscord

__all__ = ["cli_env"]  # a fixture the tests below use by name

CLOSED_PORT_URL = "http://127.0.0.1:9"


class BotProcess:
    """`python -m bot` with its log lines collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stderr is not None
        self._reader = asyncio.create_task(self._read(process.stderr))

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode().rstrip("\n"))

    async def wait_for(self, pattern: str, timeout: float = 20.0) -> None:
        """Wait until a log line matches `pattern`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(re.search(pattern, line) for line in self.lines):
            assert asyncio.get_running_loop().time() < deadline, "\n".join(self.lines)
            assert self.process.returncode is None, "\n".join(self.lines)
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """SIGTERM, then the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return status

    def at(self, level: str) -> list[str]:
        """The lines logged at `level`."""
        return [line for line in self.lines if f" {level} " in line]


async def test_unmixr_down_at_start_is_one_warning_naming_the_address_and_the_reason(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "UNMIXR_BASE_URL": f"{CLOSED_PORT_URL}/api/v1"}
    bot = await BotProcess.start(env, tmp_path)
    try:
        await bot.wait_for(r"connected: this process runs")
        # The catalogue's categories, the clone list and the balance each fail three times within these seconds.
        await asyncio.sleep(3)
    finally:
        status = await bot.stop()
    assert status == 0, "\n".join(bot.lines)
    warnings = bot.at("WARNING")
    assert len(warnings) == 1, "\n".join(warnings)
    assert re.search(
        rf"Unmixr at {CLOSED_PORT_URL}/api/v1 could not be reached \(Connection refused; GET /", warnings[0]
    )
    assert "Traceback" not in "\n".join(bot.lines)


async def test_a_discord_outage_is_one_warning_and_no_traceback(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    bot = await BotProcess.start({**cli_env, "LOG_LEVEL": "INFO"}, tmp_path)
    try:
        await bot.wait_for(r"connected: this process runs")
        # Discord's gateway goes away: every resume and reconnect attempt fails for a while.
        discord_fake.refuse_gateway = True
        await discord_fake.disconnect_gateway(4000)
        await bot.wait_for(r"Discord's gateway at .* could not be reached")
        await asyncio.sleep(6)  # discord.py retries several times meanwhile (back-off from 1 s)
        discord_fake.refuse_gateway = False
        await discord_fake.wait_until_connected(timeout=30)
    finally:
        status = await bot.stop()
    assert status == 0, "\n".join(bot.lines)
    assert "Traceback" not in "\n".join(bot.lines)
    assert not bot.at("ERROR"), "\n".join(bot.lines)
    outage = [line for line in bot.at("WARNING") if "Discord's gateway" in line]
    assert len(outage) == 1, "\n".join(bot.lines)
    assert f"Discord's gateway at {discord_fake.gateway_url} could not be reached: 503" in outage[0], outage[0]


async def test_at_debug_the_tracebacks_are_there(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    bot = await BotProcess.start({**cli_env, "LOG_LEVEL": "DEBUG"}, tmp_path)
    try:
        await bot.wait_for(r"connected: this process runs")
        discord_fake.refuse_gateway = True
        await discord_fake.disconnect_gateway(4000)
        await bot.wait_for(r"Traceback")
        discord_fake.refuse_gateway = False
    finally:
        await bot.stop()
    assert any(" DEBUG " in line and "bot.outages" in line for line in bot.lines)
