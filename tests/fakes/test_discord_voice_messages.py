"""The Discord stand-in's voice-message rules, each from the section of discord/discord-api-docs it follows.

resources/message.mdx "Voice Messages" and the attachment object; resources/webhook.mdx "Execute Webhook" (flags);
interactions/receiving-and-responding.mdx (the callback's flags); topics/permissions.mdx (SEND_VOICE_MESSAGES);
topics/opcodes-and-status-codes.mdx (50159-50162, 50173). Raw HTTP shows what the stand-in answers.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.test_discord_server import TOKEN, World, act, errors_at, world

__all__ = ["world"]  # the fixture, used by name below

HEADERS = {"Authorization": f"Bot {TOKEN}"}
OGG = b"OggS" + bytes(200)  # the stand-in keeps the bytes; Discord does not promise to read them either
WAVEFORM = base64.b64encode(bytes(range(0, 250, 10))).decode()


def attachment(**changes: Any) -> dict[str, Any]:
    """The attachment request of a well-formed voice message, with some fields changed (None drops one)."""
    entry: dict[str, Any] = {"id": 0, "filename": "voice-message.ogg", "duration_secs": 2.5, "waveform": WAVEFORM}
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def voice_body(**changes: Any) -> dict[str, Any]:
    """A well-formed voice message's JSON part, with some top-level fields changed."""
    return {"flags": p.FLAG_VOICE_MESSAGE, "attachments": [attachment()], **changes}


def form(payload: dict[str, Any], files: list[tuple[str, bytes, str]] | None = None) -> aiohttp.FormData:
    """A multipart body as discord.py builds it: payload_json, then files[n] with their own Content-Type."""
    data = aiohttp.FormData(quote_fields=False)
    data.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for index, (name, content, content_type) in enumerate(
        files if files is not None else [("voice-message.ogg", OGG, "audio/ogg")]
    ):
        data.add_field(f"files[{index}]", io.BytesIO(content), filename=name, content_type=content_type)
    return data


async def create(world: World, http: aiohttp.ClientSession, body: aiohttp.FormData) -> tuple[int, Any]:
    """Create Message in the text channel as the bot; return the status and the JSON answer."""
    url = f"{world.fake.api_base}/channels/{world.text['id']}/messages"
    async with http.post(url, data=body, headers=HEADERS) as response:
        return response.status, await response.json()


async def unanswered(world: World) -> FakeInteraction:
    """A live /act interaction the bot leaves for the test to answer with raw HTTP."""

    async def nothing(interaction: discord.Interaction) -> None:
        return None

    return await act(world, nothing)


async def callback(
    world: World, http: aiohttp.ClientSession, interaction: FakeInteraction, body: aiohttp.FormData
) -> tuple[int, Any]:
    url = f"{world.fake.api_base}/interactions/{interaction.id}/{interaction.token}/callback?with_response=1"
    async with http.post(url, data=body) as response:
        return response.status, await response.json()


def callback_form(callback_type: int, data: dict[str, Any], files: list[tuple[str, bytes, str]] | None = None) -> Any:
    return form({"type": callback_type, "data": data}, files)


# ---------------------------------------------------------------- what is kept


async def test_create_message_keeps_a_voice_message_and_its_attachment_fields(
    world: World, http: aiohttp.ClientSession
) -> None:
    # permissions.mdx: a voice message needs Send Voice Messages, not Attach Files.
    world.guild.bot_permissions = (world.guild.bot_permissions | p.SEND_VOICE_MESSAGES) & ~p.ATTACH_FILES
    status, message = await create(world, http, form(voice_body()))
    assert status == 200, message
    assert message["flags"] & p.FLAG_VOICE_MESSAGE
    assert message["content"] == ""
    (stored,) = message["attachments"]
    assert stored["duration_secs"] == 2.5 and stored["waveform"] == WAVEFORM
    assert stored["content_type"] == "audio/ogg"
    assert world.fake.files_of(message) == [("voice-message.ogg", OGG)]


async def test_a_type_4_response_may_be_a_voice_message(world: World, http: aiohttp.ClientSession) -> None:
    interaction = await unanswered(world)
    status, answer = await callback(world, http, interaction, callback_form(4, voice_body()))
    assert status == 200, answer
    message = interaction.final_message()
    assert message is not None and message["flags"] & p.FLAG_VOICE_MESSAGE
    assert message["attachments"][0]["waveform"] == WAVEFORM


# ---------------------------------------------------------------- what is refused


@pytest.mark.parametrize(
    ("changes", "files", "code"),
    [
        # "No content, stickers, etc...": 50159 "Voice messages do not support additional content."
        ({"content": "hello"}, None, 50159),
        ({"embeds": [{"title": "t"}]}, None, 50159),
        ({"sticker_ids": ["1"]}, None, 50159),
        # "Only a single audio attachment is allowed": 50160.
        (
            {"attachments": [attachment(), attachment(id=1)]},
            [("a.ogg", OGG, "audio/ogg"), ("b.ogg", OGG, "audio/ogg")],
            50160,
        ),
        ({}, [("voice.png", b"\x89PNG", "image/png")], 50160),
        ({}, [], 50160),
        # `duration_secs` and `waveform` are "required for voice messages": 50161 "must have supporting metadata".
        ({"attachments": [attachment(duration_secs=None)]}, None, 50161),
        ({"attachments": [attachment(waveform=None)]}, None, 50161),
        ({"attachments": [attachment(duration_secs=0)]}, None, 50161),
        ({"attachments": [attachment(waveform="not base64!")]}, None, 50161),
        # "no more than 256 datapoints are in the waveform".
        ({"attachments": [attachment(waveform=base64.b64encode(bytes(257)).decode())]}, None, 50161),
        ({"attachments": None}, None, 50161),
    ],
)
async def test_a_malformed_voice_message_gets_discords_code(
    world: World,
    http: aiohttp.ClientSession,
    changes: dict[str, Any],
    files: list[tuple[str, bytes, str]] | None,
    code: int,
) -> None:
    body = {key: value for key, value in voice_body(**changes).items() if value is not None}
    status, refused = await create(world, http, form(body, files))
    assert (status, refused["code"]) == (400, code), refused
    assert refused["message"].startswith("Voice messages")
    assert not world.fake.channel_messages.get(int(world.text["id"]))


async def test_a_malformed_voice_response_is_refused_and_acknowledges_nothing(
    world: World, http: aiohttp.ClientSession
) -> None:
    interaction = await unanswered(world)
    status, refused = await callback(world, http, interaction, callback_form(4, voice_body(content="the text")))
    assert (status, refused["code"]) == (400, 50159)
    assert interaction.callback_type is None
    status, _answer = await callback(world, http, interaction, callback_form(4, voice_body()))
    assert status == 200


async def test_without_send_voice_messages_the_channel_refuses_with_50173(
    world: World, http: aiohttp.ClientSession
) -> None:
    world.guild.bot_permissions &= ~p.SEND_VOICE_MESSAGES
    status, refused = await create(world, http, form(voice_body()))
    assert (status, refused) == (403, {"code": 50173, "message": "You cannot send voice messages in this channel."})
    interaction = await unanswered(world)
    status, refused = await callback(world, http, interaction, callback_form(4, voice_body()))
    assert (status, refused["code"]) == (403, 50173)
    assert interaction.callback_type is None
    # The same file without the flag is an ordinary attachment, which Attach Files allows.
    status, message = await create(world, http, form({"attachments": [attachment()]}))
    assert status == 200 and not message["flags"] & p.FLAG_VOICE_MESSAGE
    # Both 403s count toward the invalid request limit, as Discord counts them.
    assert [(r.status, r.code) for r in world.fake.wasted_requests()] == [(403, 50173), (403, 50173)]


async def test_a_follow_up_or_a_deferred_response_cannot_carry_the_flag(
    world: World, http: aiohttp.ClientSession
) -> None:
    interaction = await unanswered(world)
    # receiving-and-responding.mdx: after DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE only EPHEMERAL is valid.
    status, refused = await callback(world, http, interaction, form({"type": 5, "data": {"flags": 8192}}, []))
    assert status == 400 and errors_at(refused, "data.flags") == ["MESSAGE_FLAGS_INVALID"]
    status, _deferred = await callback(world, http, interaction, form({"type": 5, "data": {}}, []))
    assert status == 200
    # webhook.mdx, Execute Webhook: IS_VOICE_MESSAGE is not among the flags a follow-up can set.
    url = f"{world.fake.api_base}/webhooks/{world.fake.application_id}/{interaction.token}?wait=1"
    async with http.post(url, data=form(voice_body())) as response:
        assert response.status == 400
        assert errors_at(await response.json(), "flags") == ["MESSAGE_FLAGS_INVALID"]
    # An edit may not set it either; message.mdx: other flags are "ignored without error", so it is a plain file.
    edit = f"{world.fake.api_base}/webhooks/{world.fake.application_id}/{interaction.token}/messages/@original"
    async with http.patch(edit, data=form(voice_body())) as response:
        assert response.status == 200
        assert not (await response.json())["flags"] & p.FLAG_VOICE_MESSAGE


async def test_a_voice_message_cannot_be_edited(world: World, http: aiohttp.ClientSession) -> None:
    status, message = await create(world, http, form(voice_body()))
    assert status == 200
    url = f"{world.fake.api_base}/channels/{world.text['id']}/messages/{message['id']}"
    async with http.patch(url, json={"content": "now with words"}, headers=HEADERS) as response:
        assert (response.status, (await response.json())["code"]) == (400, 50162)
    interaction = await unanswered(world)
    status, _answer = await callback(world, http, interaction, callback_form(4, voice_body()))
    assert status == 200
    edit = f"{world.fake.api_base}/webhooks/{world.fake.application_id}/{interaction.token}/messages/@original"
    async with http.patch(edit, json={"content": "a caption"}) as response:
        assert (response.status, (await response.json())["code"]) == (400, 50162)
    final = interaction.final_message()
    assert final is not None and final["content"] == ""
