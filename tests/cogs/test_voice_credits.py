"""Credits in voice: queued clips are synthesised only when about to play; dropped ones cost nothing."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.cogs.test_voice import speaking, wait_clips  # noqa: F401 (fixtures)
from tests.conftest import World
from tests.fakes.discord_server import ChannelOption, FakeInteraction, FakeMember
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.prose import prose

RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


def unique_text(clip: int, length: int) -> str:
    """Text whose every sentence is its own, so no chunk of one clip is in the cache for another."""
    sentences = " ".join(f"Clip {clip} says sentence number {number} of many." for number in range(length // 20))
    return sentences[:length].rsplit(" ", 1)[0] + "."


async def play(world: World, text: str) -> str:
    interaction = await world.say(member=world.member, text=text, play=True)
    await interaction.wait_final(timeout=20)
    return interaction.content()


def characters_sent(world: World) -> int:
    return sum(len(request.json["text"]) for request in world.tts_requests())


async def held(world: World) -> int:
    return (await world.bot.storage.usage_for_day(world.guild.id, datetime.now(UTC).date())).reserved


async def test_twenty_long_clips_then_stop_spend_at_most_two_clips(
    speaking: World,  # noqa: F811
    voice_server: FakeVoiceServer,
) -> None:
    before = speaking.unmixr.prebuilt_chars
    answers = [await play(speaking, unique_text(n, 6000)) for n in range(20)]
    assert answers[0].startswith("Queued at position 1 (playing now)")
    assert answers[19].startswith("Queued at position 20")
    session = await voice_server.wait_for_session(speaking.guild.id)
    await speaking.discord.wait_until(lambda: bool(session.packets), what="the first clip playing")
    # Only the playing clip and the next one have reached Unmixr; the other 18 only hold their estimate.
    assert characters_sent(speaking) <= 2 * 6000
    assert await held(speaking) >= 18 * 5900

    stop = await speaking.slash("stop")
    await stop.wait_final()
    assert "cleared 20 clips" in stop.content()
    # Nothing more is sent, and every hold is given back or settled.
    for _ in range(100):
        if await held(speaking) == 0:
            break
        await asyncio.sleep(0.05)
    assert await held(speaking) == 0
    spent = before - speaking.unmixr.prebuilt_chars
    assert spent == characters_sent(speaking) <= 2 * 6000
    today = await speaking.bot.storage.usage_for_day(speaking.guild.id, datetime.now(UTC).date())
    assert today.credits == spent


async def test_the_next_clip_is_synthesised_while_the_current_one_plays(
    speaking: World,  # noqa: F811
    voice_server: FakeVoiceServer,
) -> None:
    texts = [prose(40, salt=n) for n in range(4)]
    for text in texts:
        await play(speaking, text)
    session = await voice_server.wait_for_session(speaking.guild.id)
    assert [r.json["text"] for r in speaking.tts_requests()] == texts[:2]
    await wait_clips(session, 4, timeout=30)
    assert [r.json["text"] for r in speaking.tts_requests()] == texts
    assert await held(speaking) == 0


async def test_a_queued_clip_that_fails_is_skipped_and_its_requester_told(
    speaking: World,  # noqa: F811
    voice_server: FakeVoiceServer,
) -> None:
    await play(speaking, prose(40, salt=20))
    await play(speaking, prose(40, salt=21))
    speaking.unmixr.fail_next(509, endpoint="/short-tts/")  # the third clip's turn to be synthesised
    third = await speaking.say(member=speaking.member, text=prose(40, salt=22), play=True)
    await third.wait_final()
    assert third.content().startswith("Queued at position 3")
    await play(speaking, prose(40, salt=23))
    session = await voice_server.wait_for_session(speaking.guild.id)
    await wait_clips(session, 3, timeout=30)
    told = await third.wait_for(lambda response: response.kind == "followup" and response.status < 300)
    assert "was skipped: Unmixr could not generate audio for this text" in told.json["content"]
    assert told.json["flags"] & 64  # ephemeral
    assert await held(speaking) == 0


async def test_a_readout_over_the_authors_budget_is_skipped_and_logged(
    speaking: World,  # noqa: F811
    voice_server: FakeVoiceServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for subcommand, options in (
        ("readout-channel", {"channel": ChannelOption(int(speaking.readout["id"]))}),
        ("xsaid", {"enabled": False}),
        ("member-budget", {"characters": 60}),
    ):
        await (await speaking.slash("settings", options, subcommand=subcommand, member=speaking.admin)).wait_final()
    await (await speaking.slash("join")).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)

    first = prose(50, salt=30)
    await speaking.discord.post_message(speaking.guild, speaking.readout, speaking.member, first)
    await wait_clips(session, 1)
    caplog.set_level(logging.INFO, logger="cogs")
    await speaking.discord.post_message(speaking.guild, speaking.readout, speaking.member, prose(40, salt=31))
    await speaking.discord.post_message(speaking.guild, speaking.readout, speaking.other, prose(40, salt=32))
    await wait_clips(session, 2)
    # The author over their budget is skipped; the other member, with a budget of their own, is read.
    assert [r.json["text"] for r in speaking.tts_requests()] == [first, prose(40, salt=32)]
    assert any("readout skipped" in r.getMessage() and "member budget" in r.getMessage() for r in caplog.records)


async def test_a_skipped_clips_chunks_still_waiting_for_an_upstream_slot_are_never_sent(
    world: World,
    voice_server: FakeVoiceServer,
) -> None:
    # One upstream request at a time: the clip's other chunks wait for the slot while the first is out.
    await world.start_bot(unmixr_max_concurrency=1)
    await world.discord.move_member(world.guild, world.member, world.voice)
    world.unmixr.set_latency(1.0, endpoint="/short-tts/")
    before = world.unmixr.prebuilt_chars
    play_task = asyncio.create_task(play(world, unique_text(0, 6000)))
    await world.discord.wait_until(lambda: len(world.tts_requests()) == 1, what="the first chunk sent")
    # Skipped while its first chunk is still being synthesised (1 s) and the others wait for the slot.
    skipped = await world.slash("skip")
    await skipped.wait_final()
    assert "Skipped" in skipped.content()
    await play_task
    # The chunks that were waiting for the slot are dropped; nothing more is sent, and every hold is back.
    for _ in range(100):
        if await held(world) == 0:
            break
        await asyncio.sleep(0.05)
    assert await held(world) == 0
    assert len(world.tts_requests()) == 1
    spent = before - world.unmixr.prebuilt_chars
    today = await world.bot.storage.usage_for_day(world.guild.id, datetime.now(UTC).date())
    assert today.credits == spent == len(world.tts_requests()[0].json["text"])


async def say_as(world: World, member: FakeMember, text: str, **options: Any) -> FakeInteraction:
    interaction = await world.say(member=member, text=text, **options)
    await interaction.wait_final(timeout=20)
    return interaction


async def set_member_budget(world: World, characters: int) -> None:
    options = {"characters": characters}
    await (await world.slash("settings", options, subcommand="member-budget", member=world.admin)).wait_final()


def sent_for(world: World, texts: set[str]) -> int:
    """Characters sent to Unmixr for these texts."""
    return sum(len(request.json["text"]) for request in world.tts_requests() if request.json["text"] in texts)


def queue_empty(world: World) -> bool:
    player = world.bot.get_cog("Voice").players.get(world.guild.id)
    return player is None or player.idle


async def long_clips(world: World, *members: FakeMember) -> None:
    """Each member queues a clip of 8 characters that plays for 16 s, so what is queued after them waits."""
    world.unmixr.chars_per_second = 0.5
    for number, member in enumerate(members):
        assert (await say_as(world, member, f"Wait {number:02d}.", play=True)).content().startswith("Queued")
    await world.discord.wait_until(lambda: len(world.tts_requests()) >= len(members), what="the long clips made")
    world.unmixr.chars_per_second = 15.0


async def test_a_clip_queued_from_the_cache_holds_its_estimate_so_an_eviction_cannot_pass_the_budget(
    world: World, voice_server: FakeVoiceServer, backend: dict[str, Any]
) -> None:
    # A cache of 1 MB, which two other members' wav replies fill.
    await world.start_bot(audio_cache_max_mb=1, **backend)
    for member in (world.member, world.other, world.admin):
        await world.discord.move_member(world.guild, member, world.voice)
    await set_member_budget(world, 200)
    mine = {prose(100, salt=40), prose(100, salt=41)}
    for text in sorted(mine):
        assert (await say_as(world, world.member, text)).files()  # 200 credits: the member's whole hour
    await long_clips(world, world.other, world.admin)
    session = await voice_server.wait_for_session(world.guild.id)

    # Queued while their audio is cached.
    queued = [await say_as(world, world.member, text, play=True) for text in sorted(mine)]
    # Other members' replies push the member's audio out of the cache; then everything queued plays.
    for member, salt in ((world.other, 42), (world.admin, 43)):
        assert (await say_as(world, member, prose(189, salt=salt), format="wav")).files()
    for _ in range(2):
        await (await world.slash("skip", member=world.other)).wait_final()
    await world.discord.wait_until(lambda: queue_empty(world), timeout=30, what="the queue")
    await wait_clips(session, 1)

    # Never more than the member's 200 credits for their texts: each queued clip held its estimate, so
    # neither fitted the member's hour.
    assert sent_for(world, mine) <= 200
    for answer in queued:
        assert "your budget in this server of 200 credits an hour" in answer.content(), answer.content()
    usage = await world.bot.storage.member_usage(world.guild.id, world.member.id)
    assert usage.reserved == 0 and usage.committed == 200


async def test_a_queued_clip_still_cached_when_it_plays_gives_its_hold_back(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    for member in (world.member, world.other, world.admin):
        await world.discord.move_member(world.guild, member, world.voice)
    await set_member_budget(world, 300)
    text = prose(100, salt=44)
    assert (await say_as(world, world.member, text)).files()
    await long_clips(world, world.other, world.admin)
    queued = await say_as(world, world.member, text, play=True)
    assert queued.content().startswith("Queued at position 3")
    usage = await world.bot.storage.member_usage(world.guild.id, world.member.id)
    assert (usage.credits, usage.reserved) == (100, 100)  # held like any clip until it is synthesised

    for _ in range(2):
        await (await world.slash("skip", member=world.other)).wait_final()
    await world.discord.wait_until(lambda: queue_empty(world), timeout=30, what="the queue")
    await world.bot.guard.flush()
    usage = await world.bot.storage.member_usage(world.guild.id, world.member.id)
    assert (usage.credits, usage.reserved, usage.cache_hits) == (100, 0, 1)  # played from the cache: free
    assert sent_for(world, {text}) == 100


async def in_voice(world: World, backend: dict[str, Any]) -> None:
    await world.start_bot(**backend)
    for member in (world.member, world.other, world.admin):
        await world.discord.move_member(world.guild, member, world.voice)


async def play_out(world: World, skips: int) -> None:
    """Skip the clips ahead, then wait until the queue has played and every hold is settled."""
    for _ in range(skips):
        await (await world.slash("skip", member=world.other)).wait_final()
    await world.discord.wait_until(lambda: queue_empty(world), timeout=30, what="the queue")
    await world.bot.guard.flush()


async def test_a_clip_queued_before_midnight_holds_until_charged_and_counts_on_the_day_it_is_charged(
    world: World, voice_server: FakeVoiceServer, backend: dict[str, Any]
) -> None:
    await in_voice(world, backend)
    clock = {"now": datetime(2030, 5, 4, 23, 59, 30, tzinfo=UTC)}
    world.bot.guard.clock = lambda: clock["now"]
    await (await world.slash("settings", {"characters": 100}, subcommand="budget", member=world.admin)).wait_final()
    await long_clips(world, world.other, world.admin)  # 2 x 8 credits, spent at 23:59:30
    late = prose(50, salt=45)
    assert (await say_as(world, world.member, late, play=True)).content().startswith("Queued at position 3")

    # After midnight the clip still waits: its 50 credits are held, and count against the new day.
    clock["now"] = datetime(2030, 5, 5, 0, 0, 10, tzinfo=UTC)
    early = await say_as(world, world.other, prose(60, salt=46))
    await play_out(world, skips=2)
    before = await world.bot.storage.usage_for_day(world.guild.id, datetime(2030, 5, 4).date())
    after = await world.bot.storage.usage_for_day(world.guild.id, datetime(2030, 5, 5).date())
    # Charged after midnight, it counts on the new day; the server never passed 100 credits in a day.
    assert (before.credits, after.credits) == (16, 50)
    assert "this server's budget of 100 credits a day" in early.content() and not early.files()
    assert RELATIVE_TIME.search(early.content()).group(1) == str(int(datetime(2030, 5, 6, tzinfo=UTC).timestamp()))


async def test_a_clip_waiting_over_an_hour_still_counts_in_the_members_hour_and_from_when_it_is_charged(
    world: World, voice_server: FakeVoiceServer, backend: dict[str, Any]
) -> None:
    await in_voice(world, backend)
    start = datetime.now(UTC)
    clock = {"now": start}
    world.bot.guard.clock = lambda: clock["now"]
    await set_member_budget(world, 100)
    await long_clips(world, world.other, world.admin)
    waiting, meanwhile, after = prose(90, salt=47), prose(60, salt=48), prose(40, salt=49)
    assert (await say_as(world, world.member, waiting, play=True)).content().startswith("Queued at position 3")

    clock["now"] = start + timedelta(minutes=61)  # the clip has waited over an hour: its hold still counts
    refused = await say_as(world, world.member, meanwhile)
    await play_out(world, skips=2)  # charged now, 61 minutes after it was queued
    clock["now"] = start + timedelta(minutes=120)  # 59 minutes after the charge: it still counts
    again = await say_as(world, world.member, after)

    # Within the hour after the charge, the member spent no more than their 100 credits.
    assert sent_for(world, {waiting, meanwhile, after}) == 90
    assert "your budget in this server of 100 credits an hour" in refused.content() and not refused.files()
    assert "your budget in this server of 100 credits an hour" in again.content() and not again.files()
