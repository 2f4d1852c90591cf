"""The discord.py internals bot/voice_internals.py reads are still there: these fail loudly if an update moves them."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from bot.voice_internals import connection_task, dave_protocol_version, view_takes
from tests.cogs.test_voices import button, controls, message_now, run_voices, shorten_view_timeout
from tests.conftest import World
from tests.fakes.discord_gateway import FakeGateway
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


async def test_the_view_store_tells_whether_a_live_view_takes_a_press(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool | None] = []

    async def record(interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.component:
            seen.append(view_takes(interaction))

    running.bot.add_listener(record, "on_interaction")
    shorten_view_timeout(monkeypatch)
    listing = await run_voices(running, running.member)
    await running.discord.click(
        listing, button(listing, "▶")["custom_id"], running.member, guild=running.guild, channel=running.text
    )
    await running.discord.wait_until(lambda: seen == [True], what="the live press")
    await running.discord.wait_until(
        lambda: all(c.get("disabled") for c in controls(message_now(running, listing))), what="the view to time out"
    )
    await running.discord.click(
        listing,
        button(listing, "▶")["custom_id"],
        running.member,
        guild=running.guild,
        channel=running.text,
        client_checks=False,
    )
    await running.discord.wait_until(lambda: seen == [True, False], what="the stale press")


async def test_the_dave_version_check_reports_is_the_one_discord_py_offers_the_gateway(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    assert dave_protocol_version() == 1
    assert session.max_dave_protocol_version == dave_protocol_version()


async def test_the_bots_own_messages_never_reach_on_message_while_members_messages_do(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, Any]] = []
    dispatch = FakeGateway._send_dispatch

    async def recording(self: FakeGateway, session: Any, event: str, data: Any) -> None:
        sent.append((event, data))
        await dispatch(self, session, event, data)

    monkeypatch.setattr(FakeGateway, "_send_dispatch", recording)
    seen: list[discord.Message] = []

    async def record(message: discord.Message) -> None:
        seen.append(message)

    running.bot.add_listener(record, "on_message")
    said = await running.say(text="Hello from the bot.")
    await said.wait_final()
    await running.discord.post_message(running.guild, running.text, running.member, "A member's own line.")
    await running.discord.wait_until(lambda: bool(seen), what="the member's message")
    bot_id = str(running.bot.user.id)
    own = {event for event, data in sent if isinstance(data, dict) and data.get("author", {}).get("id") == bot_id}
    # Discord sends the reply's creation (the deferred "thinking" message) and its edit (the audio) to the bot too.
    assert {"MESSAGE_CREATE", "MESSAGE_UPDATE"} <= own
    # The gateway is ordered: the member's message came after the bot's own, which were dropped unparsed.
    assert [message.content for message in seen] == ["A member's own line."]
