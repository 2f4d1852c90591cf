"""The discord.py internals bot/voice_internals.py reads are still there: these fail loudly if an update moves them."""

from __future__ import annotations

import asyncio

import discord

from bot.voice_internals import connection_task, dave_protocol_version
from tests.conftest import World
from tests.fakes.discord_voice import FakeVoiceServer


async def test_the_voice_connection_task_ends_with_the_error_that_dropped_it(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    joined = await world.slash("join")
    await joined.wait_final()
    guild = world.bot.get_guild(world.guild.id)
    client = guild.voice_client
    assert isinstance(client, discord.VoiceClient) and client.is_connected()
    task = connection_task(client)
    assert isinstance(task, asyncio.Task), "discord.py moved VoiceClient._connection._runner"
    assert not task.done()
    await voice_server.wait_for_session(world.guild.id)
    await voice_server.disconnect(world.guild.id, code=1001)  # a network failure
    await asyncio.wait([task], timeout=10)
    assert task.done() and not task.cancelled()
    error = task.exception()
    assert isinstance(error, discord.ConnectionClosed) and error.code == 1001


async def test_the_dave_version_check_reports_is_the_one_discord_py_offers_the_gateway(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    assert dave_protocol_version() == 1
    assert session.max_dave_protocol_version == dave_protocol_version()
