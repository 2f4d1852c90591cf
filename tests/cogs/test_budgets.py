"""Credit guards end to end: server and member budgets, the cache exemption, concurrency, the UTC day, settings."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.cogs.test_settings import press
from tests.cogs.test_voice_credits import unique_text
from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import FakeInteraction, FakeMember
from tests.fakes.prose import prose

RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


async def admin_sets(world: World, subcommand: str, characters: int | None) -> FakeInteraction:
    options = {"characters": characters} if characters is not None else {}
    interaction = await world.slash("settings", options, subcommand=subcommand, member=world.admin)
    await interaction.wait_final()
    return interaction


async def say(world: World, member: FakeMember, text: str, **options: Any) -> FakeInteraction:
    interaction = await world.say(member=member, text=text, **options)
    await interaction.wait_final(timeout=20)
    return interaction


def frees_at(interaction: FakeInteraction) -> datetime:
    found = RELATIVE_TIME.search(interaction.content())
    assert found, interaction.content()
    return datetime.fromtimestamp(int(found.group(1)), UTC)


def spent(world: World, before: int) -> int:
    return before - world.unmixr.prebuilt_chars


async def test_the_server_budget_refuses_with_its_number_and_when_it_frees(running: World) -> None:
    changed = await admin_sets(running, "budget", 130)
    assert "130 credits a day" in changed.content()
    first = await say(running, running.member, prose(100, salt=1))
    assert first.files(), first.content()

    requests = len(running.tts_requests())
    refused = await say(running, running.other, prose(50, salt=2))
    assert refused.ephemeral and not refused.files()
    text = refused.content()
    assert "this server's budget of 130 credits a day" in text and "30 left" in text and "needs 50" in text
    tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    assert frees_at(refused) == tomorrow
    assert len(running.tts_requests()) == requests  # nothing was sent, nothing spent
    # A refusal is one sentence, answered privately before any public "thinking" message.
    assert text.count(". ") == 0 and text.endswith(".")
    assert not [r for r in refused.responses if r.kind == "callback" and r.type == 5]

    # What fits still goes through.
    fits = await say(running, running.other, prose(30, salt=3))
    assert fits.files(), fits.content()


async def test_the_member_budget_is_each_members_own_rolling_hour(running: World) -> None:
    await admin_sets(running, "member-budget", 80)
    started = datetime.now(UTC)
    assert (await say(running, running.member, prose(60, salt=4))).files()
    refused = await say(running, running.member, prose(40, salt=5))
    assert refused.ephemeral and not refused.files()
    assert "your budget in this server of 80 credits an hour" in refused.content()
    # It frees when that first request is 60 minutes old.
    assert abs((frees_at(refused) - started).total_seconds() - 3600) < 30
    # Another member has a budget of their own.
    assert (await say(running, running.other, prose(60, salt=6))).files()


async def test_a_request_larger_than_a_budget_can_never_fit(running: World) -> None:
    await admin_sets(running, "budget", 30)
    refused = await say(running, running.member, prose(45, salt=7))
    assert "can never fit" in refused.content() and "30 credits a day" in refused.content()
    assert "<t:" not in refused.content()
    assert not running.tts_requests()


async def test_cache_hits_are_never_refused_and_never_counted(running: World) -> None:
    text = prose(90, salt=8)
    await admin_sets(running, "budget", 100)
    before = running.unmixr.prebuilt_chars
    assert (await say(running, running.member, text)).files()
    assert spent(running, before) == 90
    assert not (await say(running, running.member, prose(30, salt=9))).files()  # over budget
    again = await say(running, running.other, text)
    assert again.files() and "from cache" in again.content()
    today = await running.bot.storage.usage_for_day(running.guild.id, datetime.now(UTC).date())
    assert today.committed == 90 and today.cache_hits == 1


async def test_fifty_requests_at_once_never_spend_past_the_budget(running: World) -> None:
    await admin_sets(running, "budget", 1000)
    members = [running.guild.add_member(f"Member {n}", permissions=MEMBER_PERMISSIONS) for n in range(50)]
    before = running.unmixr.prebuilt_chars
    answers = await asyncio.gather(
        *(say(running, member, prose(200, salt=100 + n)) for n, member in enumerate(members))
    )
    delivered = [a for a in answers if a.files()]
    refused = [a for a in answers if not a.files()]
    # 10x the budget was asked for: at most the budget plus one request's characters is spent.
    assert spent(running, before) <= 1000 + 200
    assert len(delivered) == 5
    assert all("this server's budget of 1,000 credits a day" in a.content() for a in refused)
    today = await running.bot.storage.usage_for_day(running.guild.id, datetime.now(UTC).date())
    assert today.reserved == 0 and today.credits == spent(running, before)


async def test_the_server_budget_starts_again_at_utc_midnight(running: World) -> None:
    clock = {"now": datetime(2030, 5, 4, 23, 59, 30, tzinfo=UTC)}
    running.bot.guard.clock = lambda: clock["now"]
    await admin_sets(running, "budget", 100)
    assert (await say(running, running.member, prose(90, salt=10))).files()
    refused = await say(running, running.member, prose(50, salt=11))
    assert frees_at(refused) == datetime(2030, 5, 5, tzinfo=UTC)

    clock["now"] = datetime(2030, 5, 5, 0, 0, 5, tzinfo=UTC)
    assert (await say(running, running.member, prose(50, salt=11))).files()
    assert (await running.bot.storage.usage_for_day(running.guild.id, datetime(2030, 5, 4).date())).credits == 90
    assert (await running.bot.storage.usage_for_day(running.guild.id, datetime(2030, 5, 5).date())).credits == 50


async def test_a_server_may_set_a_lower_budget_than_the_operator_never_a_higher_one(world: World) -> None:
    await world.start_bot(server_daily_budget=500, member_hourly_budget=50)
    higher = await admin_sets(world, "budget", 600)
    assert higher.ephemeral and "at most 500 credits a day" in higher.content()
    assert (await world.bot.storage.get_guild_settings(world.guild.id)).budget is None
    lower = await admin_sets(world, "budget", 300)
    assert "300 credits a day" in lower.content()
    # The operator's member budget applies to everyone, admins included.
    refused = await say(world, world.admin, prose(60, salt=12))
    assert "50 credits an hour" in refused.content()

    cleared = await admin_sets(world, "budget", None)
    assert "now 500 credits a day, the bot operator's default" in cleared.content()
    await admin_sets(world, "member-budget", 40)
    asked = await world.slash("settings", {}, subcommand="reset", member=world.admin)
    await asked.wait_final()
    await press(world, asked, "Clear every setting")
    assert (await world.bot.guard.budgets(world.guild.id))[1].limit == 50


async def test_settings_show_and_balance_show_each_budget_and_its_use(running: World) -> None:
    await admin_sets(running, "budget", 5000)
    await admin_sets(running, "member-budget", 700)
    assert (await say(running, running.admin, prose(123, salt=13))).files()

    show = await running.slash("settings", {}, subcommand="show", member=running.admin)
    await show.wait_final()
    description = show.embeds()[0]["description"]
    assert "**budget**: 5,000 credits a day, 123 used today (server setting)" in description
    assert "**member-budget**: 700 credits an hour, 123 used by you in the last 60 minutes (server setting)" in (
        description
    )
    balance = await running.slash("balance", member=running.admin)
    await balance.wait_final()
    assert "**Today's budget**: 123 of 5,000 credits a day (server setting) used" in balance.content()
    assert "**Member budget**: 700 credits an hour (server setting)" in balance.content()


async def test_a_timeout_counts_the_estimate_and_an_error_answer_costs_nothing(running: World) -> None:
    running.bot.unmixr._tts_timeout = 0.5  # test hook: the 25 s timeout is not a setting
    running.unmixr.hang_next(1, endpoint="/short-tts/")
    timed_out = await say(running, running.member, prose(70, salt=14))
    assert "took too long" in timed_out.content()
    today = await running.bot.storage.usage_for_day(running.guild.id, datetime.now(UTC).date())
    assert (today.committed, today.reserved) == (70, 0)  # it may have been charged: counted as spent

    running.unmixr.fail_next(505, endpoint="/short-tts/")
    failed = await say(running, running.member, prose(40, salt=15))
    assert "run out of prebuilt-voice characters" in failed.content()
    today = await running.bot.storage.usage_for_day(running.guild.id, datetime.now(UTC).date())
    assert (today.committed, today.reserved) == (70, 0)


async def test_read_aloud_is_charged_to_the_member_who_asks(running: World) -> None:
    await admin_sets(running, "member-budget", 60)
    message = await running.discord.post_message(running.guild, running.text, running.other, prose(50, salt=16))
    first = await running.discord.message_command(running.guild, running.text, running.member, "Read aloud", message)
    await first.wait_final(timeout=20)
    assert first.files(), first.content()
    second_message = await running.discord.post_message(running.guild, running.text, running.other, prose(40, salt=17))
    refused = await running.discord.message_command(
        running.guild, running.text, running.member, "Read aloud", second_message
    )
    await refused.wait_final()
    assert refused.ephemeral and "your budget in this server of 60 credits an hour" in refused.content()
    # The message's author did not ask: their own budget is untouched.
    mine = await running.bot.storage.member_usage(running.guild.id, running.other.id)
    assert mine.committed == 0


async def settled(world: World) -> None:
    """Wait until nothing is at Unmixr and every hold is settled or given back."""
    for _ in range(200):
        await world.bot.guard.flush()
        today = await world.bot.storage.usage_for_day(world.guild.id, datetime.now(UTC).date())
        if world.unmixr.tts_in_flight == 0 and today.reserved == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("holds still open")


async def test_a_failed_chunk_leaves_the_holds_of_chunks_still_at_unmixr_so_retries_stay_in_budget(
    world: World, backend: dict[str, Any]
) -> None:
    await world.start_bot(**backend)
    await admin_sets(world, "member-budget", 6000)
    # 2,000 characters take 1 s at the stand-in: the other chunks are still at Unmixr when the first one fails.
    world.unmixr.tts_latency_per_char = 0.0005
    before = world.unmixr.prebuilt_chars
    answers = []
    for attempt in range(5):
        text = unique_text(attempt, 5900)  # 3 chunks, none of them cached by an earlier attempt
        world.unmixr.fail_next(
            509, endpoint="/short-tts/", when=lambda request, text=text: text.startswith(request.json["text"])
        )
        answers.append(await say(world, world.member, text))
    assert "could not generate audio" in answers[0].content()
    await settled(world)
    # The chunks of the failed request that Unmixr answered were charged, and held until then: the next
    # requests were refused instead of spending past the member's 6,000 credits an hour.
    spent_now = spent(world, before)
    assert 0 < spent_now <= 6000
    assert all("your budget in this server of 6,000 credits an hour" in a.content() for a in answers[1:]), [
        a.content() for a in answers
    ]
    mine = await world.bot.storage.member_usage(world.guild.id, world.member.id)
    assert mine.committed == mine.credits == spent_now


async def test_without_budgets_a_request_still_shows_its_hold_while_at_unmixr_and_its_spending_once_answered(
    world: World, backend: dict[str, Any]
) -> None:
    # No budget applies, so no check reads the hold: the ledger row waits in memory and is written once, with what
    # the request spent, when a one-chunk answer is out within the delay; a request still at Unmixr then is held.
    await world.start_bot(**backend)
    today = datetime.now(UTC).date()
    quick = await say(world, world.member, prose(70, salt=40))
    assert quick.files()
    await world.bot.guard.flush()
    usage = await world.bot.storage.usage_for_day(world.guild.id, today)
    assert (usage.credits, usage.characters, usage.requests, usage.reserved) == (70, 70, 1, 0)

    world.unmixr.set_latency(1.0, endpoint="/short-tts/")
    slow = await world.say(member=world.other, text=prose(50, salt=41))
    await asyncio.sleep(0.5)  # well past the delay: the request is still at Unmixr
    held = await world.bot.storage.usage_for_day(world.guild.id, today)
    assert (held.reserved, held.credits) == (50, 70)
    await slow.wait_final(timeout=20)
    assert slow.files()
    await world.bot.guard.flush()
    usage = await world.bot.storage.usage_for_day(world.guild.id, today)
    assert (usage.credits, usage.requests, usage.reserved) == (120, 2, 0)
