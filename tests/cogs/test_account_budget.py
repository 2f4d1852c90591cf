"""The account's day: ACCOUNT_DAILY_BUDGET caps what every server spends together per UTC day, with one alert."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_PERMISSIONS, MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.prose import prose

LIMIT_REACHED = "The bot reached ACCOUNT_DAILY_BUDGET, its limit of 150 credits a day for all servers together"


def alerts(world: World) -> list[str]:
    return [message["content"] for message in world.discord.channel_messages.get(int(world.text["id"]), [])]


def next_midnight() -> int:
    return int(datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC).timestamp())


async def final(interaction: FakeInteraction) -> FakeInteraction:
    await interaction.wait_final(timeout=20)
    return interaction


async def test_the_account_budget_caps_every_server_together_and_tells_the_alert_channel_once_a_day(
    world: World, backend: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    elsewhere_text = elsewhere.add_text_channel("general")
    stranger = elsewhere.add_member("Sam Stranger", permissions=MEMBER_PERMISSIONS)
    await world.start_bot(account_daily_budget=150, alert_channel_id=int(world.text["id"]), **backend)
    before = world.unmixr.prebuilt_chars

    # Neither server has a budget of its own: the account's day is shared by both.
    here = await final(await world.say(text=prose(100, salt=1)))
    assert here.files(), here.content()
    there = await final(
        await world.discord.slash(elsewhere, elsewhere_text, stranger, "say", {"text": prose(80, salt=2)})
    )
    assert there.ephemeral and not there.files()
    text = there.content()
    assert "the bot operator's daily limit of 150 credits for all servers together (50 left, this needs 80)" in text
    assert f"it frees up <t:{next_midnight()}:R>" in text and "ACCOUNT_DAILY_BUDGET" in text
    assert world.unmixr.prebuilt_chars == before - 100  # nothing was sent for the refused request

    # What still fits goes through, from either server.
    assert (
        await final(await world.discord.slash(elsewhere, elsewhere_text, stranger, "say", {"text": prose(50, salt=3)}))
    ).files()
    await world.discord.wait_until(lambda: bool(alerts(world)), what="the account-limit alert")
    [posted] = alerts(world)
    assert LIMIT_REACHED in posted and f"<t:{next_midnight()}:R>" in posted
    assert any("ACCOUNT_DAILY_BUDGET" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    # More refusals, from a new process too (a restart), tell the channel nothing more that day.
    assert (
        "150 credits for all servers"
        in (await final(await world.say(member=world.other, text=prose(40, salt=4)))).content()
    )
    await world.stop_bot()
    await world.start_bot()
    again = await final(await world.say(member=world.other, text=prose(40, salt=5)))
    assert "the bot operator's daily limit of 150 credits" in again.content() and not again.files()
    await world.bot.guard.flush()
    assert len(alerts(world)) == 1


async def test_a_request_over_the_whole_days_limit_can_never_fit(world: World) -> None:
    await world.start_bot(account_daily_budget=60, alert_channel_id=int(world.text["id"]))
    refused = await final(await world.say(text=prose(80, salt=6)))
    assert "This needs 80 credits but the bot operator's daily limit is 60 credits for all servers together" in (
        refused.content()
    )
    assert "can never fit" in refused.content() and "<t:" not in refused.content()
    assert not world.tts_requests()
    await world.bot.guard.flush()
    assert not alerts(world)  # the limit was not reached


async def test_balance_shows_the_accounts_day(world: World) -> None:
    await world.start_bot(account_daily_budget=5000)
    admin = world.guild.add_member("Second Admin", permissions=ADMIN_PERMISSIONS)
    assert (await final(await world.say(text=prose(120, salt=7)))).files()
    balance = await final(await world.slash("balance", member=admin))
    assert "**Operator's daily limit**: 120 of 5,000 credits used by all servers today" in balance.content()

    await world.stop_bot()
    await world.start_bot(account_daily_budget=None)
    balance = await final(await world.slash("balance", member=admin))
    assert "Operator's daily limit" not in balance.content()
