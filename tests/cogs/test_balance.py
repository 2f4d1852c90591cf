"""/balance end to end: the account's credits from the Unmixr stand-in and this server's own use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import UNMIXR_KEY, World
from tests.fakes.discord_server import FakeInteraction, FakeMember

MANAGE_SERVER = "needs the Manage Server permission"


async def run_balance(world: World, *, member: FakeMember | None = None) -> FakeInteraction:
    """Run /balance (as the admin by default) and wait for its answer."""
    interaction = await world.slash("balance", member=member or world.admin)
    await interaction.wait_final()
    return interaction


def line(text: str, starts: str) -> str:
    """The line of the answer that starts with `starts`."""
    found = [row for row in text.splitlines() if row.startswith(starts)]
    assert found, f"no line starting with {starts!r} in {text!r}"
    return found[0]


async def test_balance_shows_both_credit_kinds_and_nothing_used_yet(running: World) -> None:
    running.unmixr.prebuilt_chars = 987_654
    running.unmixr.cloned_chars = 12_345
    before = [r.endpoint for r in running.unmixr.requests].count("/credit-balance/")
    shown = await run_balance(running)
    assert shown.ephemeral
    text = shown.content()
    # Thousands separators, as the command line shows them.
    assert "987,654 prebuilt" in text
    assert "12,345 cloned" in text
    assert "0 credits" in line(text, "**This server today")
    assert "0 credits" in line(text, f"**This server in {datetime.now(UTC):%B %Y}")
    # One read for /balance (the low-balance watch also reads it at start).
    assert [r.endpoint for r in running.unmixr.requests].count("/credit-balance/") == before + 1


async def test_balance_counts_this_servers_credits_and_cache_hits_cost_nothing(running: World) -> None:
    before = running.unmixr.prebuilt_chars
    said = await running.say(member=running.member, text="Counting the credits of this sentence.")
    await said.wait_final()
    assert said.files()
    spent = before - running.unmixr.prebuilt_chars
    assert spent > 0
    again = await running.say(member=running.other, text="Counting the credits of this sentence.")
    await again.wait_final()
    assert again.files() and len(running.tts_requests()) == 1  # answered from the cache
    shown = await run_balance(running)
    text = shown.content()
    today = line(text, "**This server today")
    month = line(text, "**This server in")
    for row in (today, month):
        assert f"{spent} credits" in row
        assert "2 requests" in row and "1 from cache" in row
    assert f"{running.unmixr.prebuilt_chars:,} prebuilt" in text


async def test_balance_is_for_admins_only(running: World) -> None:
    before = len(running.unmixr.requests)
    refused = await run_balance(running, member=running.member)
    assert refused.ephemeral
    assert MANAGE_SERVER in refused.content()
    assert "/credit-balance/" not in [r.endpoint for r in running.unmixr.requests[before:]]


async def test_an_invalid_key_is_a_clear_answer_without_the_key(
    running: World, caplog: pytest.LogCaptureFixture
) -> None:
    running.unmixr.api_key = "a-key-that-was-revoked"
    shown = await run_balance(running)
    assert shown.ephemeral
    text = shown.content()
    assert "API key" in text
    assert "credits left" not in text
    assert UNMIXR_KEY not in text and "401" not in text
    assert "UNMIXR_API_KEY" in caplog.text  # the operator is told which setting to check...
    assert UNMIXR_KEY not in caplog.text and "a-key-that-was-revoked" not in caplog.text  # ...never the key


async def test_balance_command_carries_the_manage_server_default(running: World) -> None:
    command = next(c for c in running.discord.commands[running.guild.id] if c["name"] == "balance")
    assert int(command["default_member_permissions"]) == 1 << 5
    assert not command.get("options")
