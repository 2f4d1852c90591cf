"""Heard in Discord's encrypted voice: the real bot, discord.py and davey against the voice stand-in's DAVE calls.

Since 2026-03-01 Discord carries only end-to-end encrypted audio. Every member in the bot's channel is a simulated
listener with its own MLS member state (``tests/fakes/dave.py``); a frame is heard only when every listener present
decrypts it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from tests.conftest import World
from tests.fakes import dave
from tests.fakes.discord_server import ChannelOption
from tests.fakes.discord_voice import FakeVoiceServer, ReceivedPacket, VoiceSession

# About 8 s of speech at the Unmixr stand-in's 15 characters a second.
LONG_TEXT = "This clip keeps talking for a good while, so that people can come and go while it plays. " * 4


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the voice stand-in")
        await asyncio.sleep(0.02)


def clip_packets(session: VoiceSession, since: float) -> list[ReceivedPacket]:
    return [packet for packet in session.packets if packet.received_at >= since]


async def wait_played(session: VoiceSession, since: float, timeout: float = 20.0) -> list[ReceivedPacket]:
    """Wait until a clip that started after ``since`` has ended (five silence frames) and return its packets."""
    await wait_for(lambda: sum(p.is_silence for p in clip_packets(session, since)) >= 5, timeout)
    return clip_packets(session, since)


async def settled_group(voice_server: FakeVoiceServer, session: VoiceSession, members: int) -> dave.DaveCall:
    """Wait until the bot's call has a group of ``members`` whose last transition was executed."""
    call = voice_server.call(session.guild_id)
    await call.wait_until(
        lambda: (
            len([leaf for leaf in call.leaves if leaf is not None]) == members
            and call.transition is None
            and bool(call.executed)
            and call.executed[-1][1] == call.commits[-1].transition_id
        ),
        timeout=10.0,
    )
    return call


async def play(world: World, text: str, member: object = None) -> float:
    started = time.monotonic()
    answer = await world.say(member, text=text, play=True)  # type: ignore[arg-type]
    await answer.wait_final()
    assert answer.ephemeral, answer.content()
    assert "Brian" in answer.content(), answer.content()
    return started


async def test_the_bot_alone_then_a_listener_joins_and_hears_every_frame(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    join = await world.slash("join", {"channel": ChannelOption(int(world.voice["id"]))})
    await join.wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    call = voice_server.call(world.guild.id)
    assert session.dave_protocol_version == 1
    await call.wait_until(lambda: dave.KEY_PACKAGE in session.binary_received)
    assert list(call.members) == [session.user_id] and not call.established

    await world.discord.move_member(world.guild, world.member, world.voice)
    call = await settled_group(voice_server, session, 2)
    assert call.commits[-1].epoch == 1
    assert set(call.leaves) == {session.user_id, world.member.id}

    packets = await wait_played(session, await play(world, "Now someone is here to hear me."))
    assert len(packets) > 25
    assert all(packet.listeners == (world.member.id,) for packet in packets)
    assert [p for p in packets if not p.heard] == []
    (listener,) = voice_server.listeners(world.guild.id)
    assert listener.errors == []
    # The frames were end-to-end encrypted: the transport payload is not the Opus frame the listener decrypted.
    assert len(listener.decrypted_from(session.user_id)) >= len(packets)


async def test_two_listeners_from_the_start_hear_every_frame(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.move_member(world.guild, world.other, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    call = await settled_group(voice_server, session, 3)

    packets = await wait_played(session, await play(world, "Both of you should hear every word of this."))
    assert {packet.listeners for packet in packets} == {(world.member.id, world.other.id)}
    assert [p for p in packets if not p.heard] == []
    assert call.rejected_key_packages == []
    assert all(listener.errors == [] for listener in voice_server.listeners(world.guild.id))


async def test_a_listener_joining_mid_clip_hears_the_rest_and_the_first_hears_no_gap(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    await settled_group(voice_server, session, 2)
    started = await play(world, LONG_TEXT)
    await wait_for(lambda: len(clip_packets(session, started)) > 100)

    await world.discord.move_member(world.guild, world.other, world.voice)
    call = await settled_group(voice_server, session, 3)
    executed_at = call.executed[-1][0]
    packets = await wait_played(session, started, timeout=30.0)

    after = [p for p in packets if p.received_at > executed_at]
    assert len(after) > 50, "the clip should still be playing after the transition"
    assert all(p.listeners == (world.member.id, world.other.id) for p in after)
    assert [p for p in after if not p.heard] == []
    first = voice_server.call(world.guild.id).listeners[world.member.id]
    heard = [f.received_at for f in first.decrypted_from(session.user_id) if f.received_at >= started]
    assert first.undecrypted_from(session.user_id) == []
    assert max(b - a for a, b in itertools.pairwise(heard)) < 0.5


async def test_everyone_leaves_and_one_comes_back_to_a_new_group_that_hears_the_next_clip(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.move_member(world.guild, world.other, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    call = await settled_group(voice_server, session, 3)
    packets = await wait_played(session, await play(world, "Hello to both of you."))
    assert [p for p in packets if not p.heard] == []

    await world.discord.move_member(world.guild, world.other, None)
    await settled_group(voice_server, session, 2)
    await world.discord.move_member(world.guild, world.member, None)
    # The bot is the sole member: the gateway resets the group (op 24 with epoch 1, then op 21 with transition 0).
    await call.wait_until(lambda: not call.established and session.user_id in call.key_packages)

    await world.discord.move_member(world.guild, world.member, world.voice)
    await settled_group(voice_server, session, 2)
    assert call.commits[-1].epoch == 1, "a new group, not the old one"
    packets = await wait_played(session, await play(world, "Welcome back, this is the next clip."))
    assert {p.listeners for p in packets} == {(world.member.id,)}
    assert [p for p in packets if not p.heard] == []


async def test_a_corrupt_welcome_is_reported_and_the_bot_is_welcomed_again(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.move_member(world.guild, world.other, world.voice)
    call = voice_server.call(world.guild.id, int(world.voice["id"]))
    await call.wait_until(lambda: call.established and call.transition is None)
    bot_id = world.discord.application_id
    call.corrupt_welcomes_for.add(bot_id)

    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    await call.wait_until(lambda: call.invalid_reports != [])
    assert call.invalid_reports[0][0] == bot_id
    assert call.invalid_reports[0][1] == call.commits[1].transition_id
    await settled_group(voice_server, session, 3)
    assert call.commits[-1].added == (bot_id,), call.commits

    packets = await wait_played(session, await play(world, "I was welcomed twice, and now you hear me."))
    assert [p for p in packets if not p.heard] == []


async def test_a_voice_server_move_during_playback_keeps_the_clip_heard(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    first = await voice_server.wait_for_session(world.guild.id)
    await settled_group(voice_server, first, 2)
    started = await play(world, LONG_TEXT)
    await wait_for(lambda: len(clip_packets(first, started)) > 50)

    moved_at = time.monotonic()
    await world.discord.voice_server_update(world.guild)
    await wait_for(lambda: voice_server.sessions[world.guild.id] is not first)
    second = await voice_server.wait_for_session(world.guild.id)
    call = await settled_group(voice_server, second, 2)
    assert call.leaves.count(second.user_id) == 1
    packets = await wait_played(second, call.executed[-1][0], timeout=30.0)
    assert len(packets) > 25, "the clip goes on over the new connection"
    assert [p for p in packets if not p.heard] == []
    # Until the move every frame was heard; between the old connection closing (the listener, left alone, starts a
    # new group) and the new group's transition, frames in flight are not, as on Discord.
    before = [p for p in clip_packets(first, started) if p.received_at < moved_at]
    assert len(before) > 50 and [p for p in before if not p.heard] == []


async def test_a_4017_close_is_logged_with_the_fix_and_not_told_as_a_permission_problem(
    world: World, voice_server: FakeVoiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A gateway that has discontinued the bot's protocol version closes it exactly as it closes a client without DAVE.
    voice_server.required_dave_protocol_version = 2
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    caplog.set_level(logging.WARNING)

    join = await world.slash("join")
    await join.wait_final()

    assert voice_server.close_codes_sent[:1] == [4017]
    text = join.content()
    assert join.ephemeral
    assert "permission" not in text.lower() and "Connect" not in text, text
    assert "end-to-end encrypt" in text
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("4017" in m and "discord.py" in m and "davey" in m for m in logged), logged
    assert world.tts_requests() == []
