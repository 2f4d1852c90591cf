"""Low-balance alerts end to end: a warning in the log and, once a UTC day per kind, in the alert channel."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import World

LOW_PREBUILT = "low on prebuilt-voice characters: 5,000 left, under the warning level of 10,000"
LOW_CLONED = "low on cloned-voice characters: 10 left"


def alerts(world: World) -> list[str]:
    return [message["content"] for message in world.discord.channel_messages.get(int(world.text["id"]), [])]


async def start(world: World, **overrides: Any) -> None:
    await world.start_bot(low_balance_characters=10_000, alert_channel_id=int(world.text["id"]), **overrides)


async def test_a_low_balance_is_posted_once_a_day_however_often_it_is_seen(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.unmixr.prebuilt_chars = 5000
    await start(world)
    await world.discord.wait_until(lambda: bool(alerts(world)), what="the low-balance alert")
    [posted] = alerts(world)
    assert LOW_PREBUILT in posted
    assert any(LOW_PREBUILT in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    # /balance reads the balance again and says so, but the channel hears it once a day.
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert LOW_PREBUILT in balance.content()
    await world.stop_bot()
    await start(world)
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert len(alerts(world)) == 1


async def test_cloned_credits_matter_only_while_the_bot_has_a_clone(world: World) -> None:
    world.unmixr.cloned_chars = 10
    await start(world)
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert "low on" not in balance.content() and not alerts(world)

    await world.bot.storage.add_cloned_voice("c0ffee00-0000-4000-8000-000000000001", world.guild.id, "Nell", None, 1)
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert LOW_CLONED in balance.content()
    await world.discord.wait_until(lambda: bool(alerts(world)), what="the cloned-credits alert")
    assert LOW_CLONED in alerts(world)[0]


async def test_without_an_alert_channel_it_is_only_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.unmixr.prebuilt_chars = 5000
    await world.start_bot(low_balance_characters=10_000)
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert LOW_PREBUILT in balance.content()
    assert any(LOW_PREBUILT in r.getMessage() for r in caplog.records)
    assert not world.discord.channel_messages
