"""Running `python -m bot ...` as a real subprocess against the stand-ins, for the command-line tests."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import DISCORD_TOKEN, UNMIXR_KEY
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr import FakeUnmixr

SECRETS = (DISCORD_TOKEN, UNMIXR_KEY)


def base_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: nothing of the test runner's own settings leaks in."""
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


def stand_in_env(home: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord) -> dict[str, str]:
    """The environment of a bot configured against the stand-ins, keeping its data in `home`/data."""
    return {
        **base_env(home),
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "UNMIXR_API_KEY": unmixr.api_key,
        "UNMIXR_BASE_URL": unmixr.base_url,
        "DISCORD_API_BASE": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DATABASE_PATH": str(home / "data" / "bot.sqlite3"),
        "AUDIO_CACHE_DIR": str(home / "data" / "audio-cache"),
    }


@pytest.fixture
def cli_env(tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord) -> dict[str, str]:
    """The environment of a bot configured against the stand-ins."""
    return stand_in_env(tmp_path, unmixr, discord_fake)


async def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 30) -> tuple[int, str, str]:
    """Run `python -m bot ARGS` without blocking the loop the stand-ins run in; return (status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def assert_no_secrets(*texts: str) -> None:
    """Neither secret appears in any output."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def one_line(stderr: str) -> str:
    """The single line a failure prints on stderr (asserting there is exactly one, and no traceback)."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]
