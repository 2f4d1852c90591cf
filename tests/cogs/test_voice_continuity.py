"""Voice sessions across restarts, end to end in one process: recorded while connected, rejoined at the next start
one join a second, forgotten where nobody is left or the bot may no longer join (PRODUCT.md, Continuity)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import ChannelOption, FakeGuild, FakeMember
from tests.fakes.discord_voice import FakeVoiceServer

SPEAK = 1 << 21


@dataclass
class VoiceServer:
    """One Discord server of the test: its voice channel and a member in it."""

    guild: FakeGuild
    text: dict[str, Any]
    voice: dict[str, Any]
    member: FakeMember


def seat(guild: FakeGuild, member: FakeMember, channel: dict[str, Any]) -> None:
    """Put a member in a voice channel before the bot connects (it reads them from GUILD_CREATE)."""
    guild.voice_states[member.id] = {"channel_id": str(channel["id"]), "session_id": f"session-{member.id}"}


def joins(world: World, since: int) -> list[tuple[float, int]]:
    """(when, server) of every voice channel the bot asked to join since gateway payload number `since`."""
    return [
        (entry["at"], int(entry["d"]["guild_id"]))
        for entry in world.discord.gateway_log[since:]
        if entry["op"] == 4 and entry["d"].get("channel_id") is not None
    ]


async def recorded_soon(world: World, expected: dict[int, int], timeout: float = 5.0) -> None:
    """Wait until the recorded voice sessions are `expected` (written right after Discord's event)."""
    store = world.bot.storage.continuity()
    deadline = time.monotonic() + timeout
    while (found := await store.voice_sessions()) != expected:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def connected(voice_server: FakeVoiceServer, guild_ids: set[int], after: int, timeout: float) -> None:
    """Wait until each server has a voice session opened after session number `after`."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = {
            session.guild_id
            for session in voice_server.all_sessions[after:]
            if session.connected.is_set() and not session.disconnected.is_set()
        }
        if guild_ids <= fresh:
            return
        assert time.monotonic() < deadline, f"not rejoined: {sorted(guild_ids - fresh)}"
        await asyncio.sleep(0.1)


async def test_thirty_recorded_sessions_are_rejoined_one_a_second_and_empty_or_forbidden_channels_are_forgotten(
    world: World, voice_server: FakeVoiceServer
) -> None:
    servers = [VoiceServer(world.guild, world.text, world.voice, world.member)]
    for number in range(2, 31):
        guild = world.discord.add_guild(name=f"Server {number}")
        servers.append(
            VoiceServer(
                guild,
                guild.add_text_channel("general"),
                guild.add_voice_channel("Lounge"),
                guild.add_member(f"Listener {number}", permissions=MEMBER_PERMISSIONS),
            )
        )
    for server in servers:
        seat(server.guild, server.member, server.voice)
    await world.start_bot()
    readout = ChannelOption(int(world.readout["id"]))
    await (
        await world.slash("settings", {"channel": readout}, subcommand="readout-channel", member=world.admin)
    ).wait_final()
    answers = [await world.discord.slash(s.guild, s.text, s.member, "join") for s in servers]
    for answer in answers:
        await answer.wait_final(timeout=30)
        assert "Joined" in answer.content(), answer.content()
    recorded = {server.guild.id: int(server.voice["id"]) for server in servers}
    assert await world.bot.storage.continuity().voice_sessions() == recorded

    # A clean stop leaves every channel but keeps them recorded.
    await world.stop_bot()
    bot_id = world.discord.application_id
    assert not any(bot_id in server.guild.voice_states for server in servers)
    # Meanwhile one channel emptied, in another the bot lost Speak, and a third channel was deleted.
    emptied, muted, deleted = servers[1], servers[2], servers[3]
    del emptied.guild.voice_states[emptied.member.id]
    muted.guild.set_permission_overwrite(muted.voice, role_or_member_id=muted.guild.bot_member, allow=0, deny=SPEAK)
    del deleted.guild.channels[int(deleted.voice["id"])]
    del deleted.guild.voice_states[deleted.member.id]
    kept = [server for server in servers if server not in (emptied, muted, deleted)]

    since, sessions_before = len(world.discord.gateway_log), len(voice_server.all_sessions)
    await world.start_bot()
    await connected(voice_server, {server.guild.id for server in kept}, sessions_before, timeout=60)
    ready = world.discord.ready_at[0]
    asked = joins(world, since)
    # Each kept server joined once, one a second, the first 25 within 30 s of the shard's READY.
    assert sorted(guild_id for _at, guild_id in asked) == sorted(server.guild.id for server in kept)
    times = [at for at, _guild_id in asked]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    print(f"27 rejoins: the first {times[0] - ready:.1f} s after READY, the 25th {times[24] - ready:.1f} s after")
    print(f"gaps between joins: {min(gaps):.2f} to {max(gaps):.2f} s")
    assert min(gaps) >= 0.9
    assert times[24] - ready <= 30
    assert await world.bot.storage.continuity().voice_sessions() == {
        server.guild.id: int(server.voice["id"]) for server in kept
    }

    # Readouts go on in the first server, in its new voice session.
    session = await voice_server.wait_for_session(world.guild.id)
    await world.discord.post_message(world.guild, world.readout, world.member, "Back after the restart.")
    await world.discord.wait_until(
        lambda: any(r.json["text"].endswith("Back after the restart.") for r in world.tts_requests()), timeout=15
    )
    await world.discord.wait_until(lambda: session.seconds_received() > 0.5, timeout=15, what="the readout's audio")


async def test_a_channel_left_on_purpose_is_not_rejoined(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot(voice_alone_seconds=1)
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    await voice_server.wait_for_session(world.guild.id)
    store = world.bot.storage.continuity()
    assert await store.voice_sessions() == {world.guild.id: int(world.voice["id"])}
    leave = await world.slash("leave")
    await leave.wait_final()
    await recorded_soon(world, {})

    # Alone for VOICE_ALONE_SECONDS: left, and forgotten too.
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    assert await store.voice_sessions() == {world.guild.id: int(world.voice["id"])}
    await world.discord.move_member(world.guild, world.member, None)
    await asyncio.wait_for(session.disconnected.wait(), 10)
    await recorded_soon(world, {})

    # Moved by a moderator: the new channel is the one recorded.
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    await voice_server.wait_for_session(world.guild.id)
    second = world.guild.add_voice_channel("Second")
    await world.discord.announce_channel(world.guild, second)
    await world.discord.move_member(world.guild, world.other, second)
    await world.discord.move_member(world.guild, world.guild.bot_member, second)
    await recorded_soon(world, {world.guild.id: int(second["id"])})
