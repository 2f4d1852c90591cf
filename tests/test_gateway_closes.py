"""`python -m bot` stops on a gateway close that means a configuration error, with one line saying what to fix.

Discord's close codes 4004, 4010, 4011, 4012 and 4013 cannot be cured by reconnecting
(`topics/opcodes-and-status-codes.mdx`, "Gateway Close Event Codes"): the bot exits with status 1 and the
operator reads which setting is wrong, never "Discord could not be reached". 4014 is not fatal (tests/test_bot_core.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.gateway_closes import CLOSE_CODE_LINES
from tests.cli_support import assert_no_secrets, cli_env, one_line, run_cli
from tests.fakes.discord_server import FakeDiscord

__all__ = ["cli_env"]  # a fixture the tests below use by name


@pytest.mark.parametrize(
    ("code", "environment", "expected"),
    [
        (4004, {}, "DISCORD_TOKEN"),
        (4010, {"SHARD_COUNT": "2"}, "invalid shard"),
        (4011, {}, "SHARD_COUNT is too low"),
        (4013, {}, "invalid intents"),
    ],
)
async def test_a_configuration_close_code_is_one_line_naming_the_fix_and_exit_1(
    cli_env: dict[str, str],
    tmp_path: Path,
    discord_fake: FakeDiscord,
    code: int,
    environment: dict[str, str],
    expected: str,
) -> None:
    discord_fake.add_guild(name="one"), discord_fake.add_guild(name="two")
    if code == 4010:
        discord_fake.shard_multiple = 16  # a large bot told to run a multiple of 16 shards runs 2
    elif code == 4011:
        discord_fake.max_guilds_per_shard = 1  # both servers would land on the one shard Discord recommends
    else:
        discord_fake.refuse_next_identify = code  # a token the gateway refuses; intents Discord does not know
    env = {**cli_env, **environment, "LOG_LEVEL": "WARNING"}
    status, stdout, stderr = await run_cli(env=env, cwd=tmp_path, timeout=60)
    assert {closed for _shard, closed in discord_fake.close_codes} == {code}
    assert status == 1
    line = one_line(stderr)
    assert CLOSE_CODE_LINES[code] in line and expected in line and f"close code {code}" in line
    assert "could not be reached" not in line
    assert_no_secrets(stdout, stderr)
