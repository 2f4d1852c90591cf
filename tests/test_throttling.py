"""The bot under Discord's rate limits: everything is delivered in the end, nothing lost, no error shown.

The stand-in announces its buckets in `X-RateLimit-*` headers and answers 429s on demand
(`topics/rate-limits.mdx`); discord.py honours both. What the bot itself must do: never lose what a throttled
request was for, and not make requests it can do without (every request counts toward the limits).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.cogs.test_say import assert_audio_reply, final, tts_payloads
from tests.conftest import World

LOW_PREBUILT = "low on prebuilt-voice characters"


def bot_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("bot", "cogs"))]


def alerts(world: World) -> list[str]:
    return [message["content"] for message in world.discord.channel_messages.get(int(world.text["id"]), [])]


async def test_say_replies_are_delivered_through_429s(running: World, caplog: pytest.LogCaptureFixture) -> None:
    # The reply is an edit of the deferred response: a 429 there (scope user, then a shared one) is retried.
    running.discord.rate_limits.throttle(r"/messages/@original$", method="PATCH", count=1, scope="user")
    running.discord.rate_limits.throttle(r"/messages/@original$", method="PATCH", count=1, scope="shared")
    said = await final(await running.say(text="Through the rate limits."))
    assert_audio_reply(said)
    assert [r.status for r in running.discord.requests if r.method == "PATCH"] == [429, 429, 200]
    assert running.discord.rate_limits.pending_throttles == 0
    assert not bot_errors(caplog)


async def test_a_low_balance_alert_is_not_lost_when_discord_throttles_its_post(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.unmixr.prebuilt_chars = 5000
    # More 429s than discord.py retries (5): the first post fails.
    world.discord.rate_limits.throttle(r"/channels/\d+/messages$", method="POST", count=5, retry_after=0.2)
    await world.start_bot(low_balance_characters=10_000, alert_channel_id=int(world.text["id"]))
    await world.discord.wait_until(lambda: world.discord.rate_limits.pending_throttles == 0, what="the 429s")
    await world.discord.wait_until(
        lambda: any("could not post the low-balance alert" in r.getMessage() for r in caplog.records),
        what="the failed post",
    )
    assert alerts(world) == []
    # The next check (here the one /balance makes) posts it: the day's alert was not used up by the failure.
    balance = await final(await world.slash("balance", member=world.admin))
    assert LOW_PREBUILT in balance.content()
    await world.discord.wait_until(lambda: len(alerts(world)) == 1, what="the alert")
    assert LOW_PREBUILT in alerts(world)[0]
    again = await final(await world.slash("balance", member=world.admin))
    assert LOW_PREBUILT in again.content() and len(alerts(world)) == 1  # still once a day
    assert not bot_errors(caplog)


async def test_a_member_missing_from_the_cache_is_looked_up_once_through_429s(running: World) -> None:
    # A member who never interacted with the bot: discord.py (no members intent) does not know them.
    zed = running.guild.add_member("Zed Zebra")
    running.discord.rate_limits.throttle(r"/guilds/\d+/members/\d+$", method="GET", count=2, retry_after=0.2)
    for _ in range(3):
        said = await final(await running.say(text=f"hello <@{zed.id}>"))
        assert_audio_reply(said)
        assert tts_payloads(running.unmixr)[-1]["text"] == "hello Zed Zebra"
    lookups: list[Any] = [r.status for r in running.discord.requests if r.path.endswith(f"/members/{zed.id}")]
    # Two 429s retried by discord.py, then one answer kept for the next texts (PRODUCT.md, Replies).
    assert lookups == [429, 429, 200]
