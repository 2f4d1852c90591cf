"""bot/voice_message.py's helper against the installed discord.py: these fail loudly if an update changes its shape.

discord.py 2.7.1 cannot send a voice message (flag 8192, an attachment's `duration_secs` and `waveform`), so the
helper sends one through discord.py's HTTP client (`Route`, `HTTPClient.request` with a multipart form) and then
marks the interaction answered (bot/voice_internals.py). The stand-in's own bot (tests/fakes/test_discord_server.py)
runs the real client; the Discord stand-in refuses what Discord refuses.
"""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path
from typing import Any
from unittest import mock

import discord
import pytest
from discord.http import HTTPClient, Route

from bot.audio.voice_message import VoiceMessageAudio
from bot.voice_message import (
    IS_VOICE_MESSAGE,
    NO_CHANNEL,
    NO_PERMISSION,
    NO_SEND_MESSAGES,
    _send,
    cannot_post,
    cannot_respond,
    post,
    respond,
)
from tests.fakes import discord_payloads as p
from tests.fakes.test_discord_server import World, act, world

__all__ = ["world"]  # the fixture, used by name below

AUDIO = VoiceMessageAudio(ogg=b"OggS" + bytes(300), duration=1.25, waveform=bytes([0, 64, 255, 128]))


def test_the_installed_discord_py_still_has_what_the_helper_uses_and_still_lacks_voice_messages() -> None:
    # Route: a method, a path template and its parameters; the URL is read from Route.BASE when built.
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=42)
    assert route.url == f"{Route.BASE}/channels/42/messages" and route.method == "POST"
    # HTTPClient.request takes the files (reset on a retry) and the multipart form as lists of add_field keywords.
    parameters = inspect.signature(HTTPClient.request).parameters
    assert {"route", "files", "form"} <= parameters.keys()
    # What Discord calls IS_VOICE_MESSAGE and SEND_VOICE_MESSAGES (message.mdx, permissions.mdx).
    assert discord.MessageFlags(voice=True).value == IS_VOICE_MESSAGE == p.FLAG_VOICE_MESSAGE
    assert discord.Permissions(send_voice_messages=True).value == p.SEND_VOICE_MESSAGES
    assert callable(discord.Interaction.is_guild_integration)
    # discord.py's own File still cannot carry a voice message's fields (PR #10230): when it can, use it instead.
    described = discord.File(io.BytesIO(b"x"), filename="voice-message.ogg").to_dict(0)
    assert "duration_secs" not in described and "waveform" not in described, "discord.py sends voice messages now"


async def test_the_response_and_the_post_reach_discord_as_it_takes_them_and_discord_py_knows_it_answered(
    world: World,
) -> None:
    assert isinstance(world.bot.http, HTTPClient)  # Client.http, the client the helper sends through
    seen: dict[str, Any] = {}

    async def voice(interaction: discord.Interaction) -> None:
        await respond(interaction, AUDIO)
        seen["done"] = interaction.response.is_done()  # mark_responded, through InteractionResponse._response_type
        try:
            await interaction.response.send_message("a second response")
        except discord.InteractionResponded:
            seen["second"] = "refused by discord.py, never sent"
        seen["posted"] = await post(interaction, AUDIO)

    interaction = await act(world, voice)
    await world.fake.wait_until(lambda: "posted" in seen, what="the voice message to be posted")

    assert seen["done"] and seen["second"] == "refused by discord.py, never sent"
    (answer,) = [r for r in interaction.responses if r.kind == "callback"]
    assert (answer.status, answer.type) == (200, 4)
    assert answer.json["data"] == {
        "flags": 8192,
        "attachments": [{"id": 0, "filename": "voice-message.ogg", "duration_secs": 1.25, "waveform": "AED/gA=="}],
    }
    assert answer.files == [("voice-message.ogg", AUDIO.ogg)]
    response = interaction.final_message()
    assert response is not None and response["flags"] & p.FLAG_VOICE_MESSAGE
    channel = world.fake.channel_messages[int(world.text["id"])]
    assert [int(message["id"]) for message in channel] == [seen["posted"]]
    assert channel[0]["flags"] & p.FLAG_VOICE_MESSAGE and channel[0]["attachments"][0]["content_type"] == "audio/ogg"
    created = [r for r in world.fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert created[-1].json["flags"] == 8192 and created[-1].files == [("voice-message.ogg", AUDIO.ogg)]


async def test_discord_refuses_a_voice_message_as_a_follow_up_or_with_text(world: World) -> None:
    async def follow_up(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        webhook = Route(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            webhook_id=interaction.application_id,
            webhook_token=interaction.token,
        )
        message = {"flags": IS_VOICE_MESSAGE, "attachments": [{"id": 0, "duration_secs": 1.0, "waveform": "AA=="}]}
        await _send(interaction.client.http, webhook, message, AUDIO)

    interaction = await act(world, follow_up)
    await world.fake.wait_until(lambda: bool(world.bot.seen["refused"]), what="discord.py to raise")
    status, code, _text = world.bot.seen["refused"][0]
    assert (status, code) == (400, 50035)
    assert [r.kind for r in interaction.responses if r.status < 300] == ["callback"]

    async def with_text(interaction: discord.Interaction) -> None:
        channel = Route("POST", "/channels/{channel_id}/messages", channel_id=interaction.channel_id)
        message = {
            "content": "the text, too",
            "flags": IS_VOICE_MESSAGE,
            "attachments": [{"id": 0, "duration_secs": 1.0, "waveform": "AA=="}],
        }
        await _send(interaction.client.http, channel, message, AUDIO)
        await interaction.response.send_message("tried", ephemeral=True)

    await act(world, with_text)
    await world.fake.wait_until(lambda: len(world.bot.seen["refused"]) == 2, what="discord.py to raise")
    assert world.bot.seen["refused"][1][:2] == (400, 50159)


async def test_where_a_voice_message_may_go_comes_from_the_interaction(world: World) -> None:
    found: list[tuple[str | None, str | None]] = []

    async def ask(interaction: discord.Interaction) -> None:
        found.append((cannot_respond(interaction), cannot_post(interaction)))
        await interaction.response.send_message("asked", ephemeral=True)

    for _ in range(3):
        await (await act(world, ask)).wait_final()
        if len(found) == 1:
            world.guild.set_permission_overwrite(
                world.text, role_or_member_id=world.guild.bot_role_id, allow=0, deny=p.SEND_MESSAGES
            )
        elif len(found) == 2:
            world.guild.bot_permissions &= ~p.SEND_VOICE_MESSAGES
    assert found == [(None, None), (None, NO_SEND_MESSAGES), (NO_PERMISSION, NO_PERMISSION)]


@pytest.mark.parametrize(("guild_id", "guild_integration"), [(None, False), (123, False)])
def test_a_dm_or_a_server_without_the_bot_has_no_channel_to_post_in(
    guild_id: int | None, guild_integration: bool
) -> None:
    interaction = mock.Mock(spec_set=discord.Interaction)
    interaction.guild_id = guild_id
    interaction.channel_id = 456
    interaction.is_guild_integration.return_value = guild_integration
    interaction.app_permissions = discord.Permissions(send_voice_messages=True, send_messages=True)
    assert cannot_post(interaction) == NO_CHANNEL


def test_the_readmes_invite_asks_for_send_voice_messages_and_its_integer_adds_up() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    step = re.search(r"these permissions: (.+?) \(integer `(\d+)`\)", readme, re.DOTALL)
    assert step is not None, "the README's invite step moved"
    names, integer = step.group(1), int(step.group(2))
    # The names as the Developer Portal shows them, onto discord.py's flags.
    flags = {
        "View Channels": "view_channel",
        "Send Messages": "send_messages",
        "Embed Links": "embed_links",
        "Attach Files": "attach_files",
        "Read Message History": "read_message_history",
        "Connect": "connect",
        "Speak": "speak",
        "Send Voice Messages": "send_voice_messages",
    }
    listed = [name.strip() for name in re.split(r",\s*", " ".join(names.split()))]
    assert set(listed) == set(flags), listed
    assert integer == discord.Permissions(**dict.fromkeys(flags.values(), True)).value
    assert f"permissions={integer}" in readme
    # The stand-in gives the bot's role what this link asks for (and Use Voice Activity, as it always has).
    assert p.DEFAULT_BOT_PERMISSIONS == integer | p.USE_VAD
