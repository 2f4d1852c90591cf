"""The discord.py internals bot/voice_internals.py reads are still there: these fail loudly if an update moves them."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator

import discord
import pytest

from bot.audio.sources import MemoryAudioSource
from bot.voice_internals import connection_task, ffmpeg_output
from tests.conftest import World
from tests.fakes.discord_voice import FakeVoiceServer


@pytest.fixture
async def voice_server(world: World) -> AsyncIterator[FakeVoiceServer]:
    server = FakeVoiceServer()
    await server.start()
    server.attach(world.discord)
    server.trust_in_process()
    yield server
    await world.stop_bot()
    await server.close()


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


def short_wav() -> bytes:
    """A tenth of a second of silence as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


def test_the_ffmpeg_output_pipe_is_found_and_closed_on_cleanup() -> None:
    source = MemoryAudioSource(short_wav())
    pipe = ffmpeg_output(source)
    assert isinstance(pipe, io.IOBase), "discord.py moved FFmpegAudio._stdout"
    assert not pipe.closed
    # Play it to the end, so ffmpeg has read all its input before it is stopped.
    frames = 0
    while source.read():
        frames += 1
    assert frames >= 5
    source.cleanup()
    assert pipe.closed
    assert ffmpeg_output(source) is None
