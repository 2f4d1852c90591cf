"""Credits in voice: queued clips are synthesised only when about to play; dropped ones cost nothing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from tests.cogs.test_voice import speaking, wait_clips  # noqa: F401 (fixtures)
from tests.conftest import World
from tests.fakes.discord_server import ChannelOption
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.prose import prose


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
