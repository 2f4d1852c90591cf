"""The Discord stand-ins' rules on who can be heard in voice, stages, and which channels' messages the bot receives.

Each test names the section of discord/discord-api-docs it follows: voice states (`resources/voice.mdx`), timeouts
(`topics/permissions.mdx`, `resources/guild.mdx`), stages (`resources/stage-instance.mdx`), events
(`events/gateway.mdx`). Raw HTTP shows what the stand-in answers; the real discord.py shows that a client gets
through and sees what Discord would show it; the voice stand-in shows which frames count as heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord
import pytest

from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeDiscord, FakeGuild
from tests.fakes.test_discord_server import TOKEN, World, world
from tests.fakes.test_discord_voice import VoiceWorld, play, tones, voice_world, wait_for

__all__ = ["tones", "voice_world", "world"]  # fixtures, used by name below

HEADERS = {"Authorization": f"Bot {TOKEN}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as started:
        yield started


def in_voice(guild: FakeGuild, user_id: int, channel: dict[str, object], **state: object) -> None:
    """Put someone in a voice channel without a gateway (for the rules that need no client)."""
    guild.voice_states[user_id] = {"channel_id": str(channel["id"]), "session_id": "s", **state}


# ---------------------------------------------------------------- who can be heard


async def test_a_sender_is_unheard_when_muted_without_speak_timed_out_or_in_a_stage_audience(
    fake: FakeDiscord,
) -> None:
    guild = fake.add_guild()
    lounge = guild.add_voice_channel("Lounge")
    bot = guild.bot_member
    assert guild.unheard_because(bot.id) == ("not in voice",)
    in_voice(guild, bot.id, lounge)
    assert guild.unheard_because(bot.id) == ()
    # voice.mdx, "Voice State Object": `mute` is the server's mute, kept by the member.
    bot.mute = True
    assert guild.unheard_because(bot.id) == ("server-muted",)
    assert guild.voice_state_payload(bot.id)["mute"] is True
    bot.mute = False
    # permissions.mdx, SPEAK: an overwrite on the channel takes it away.
    guild.set_permission_overwrite(lounge, role_or_member_id=bot, allow=0, deny=p.SPEAK)
    assert guild.unheard_because(bot.id) == ("no Speak permission",)
    guild.set_permission_overwrite(lounge, role_or_member_id=bot, allow=0, deny=0)
    # permissions.mdx, "Permissions For Timed Out Members": everything but View Channel and Read Message History.
    bot.communication_disabled_until = "2999-01-01T00:00:00+00:00"
    assert guild.unheard_because(bot.id) == ("timed out",)
    assert guild.compute_permissions(bot.id, bot.roles, int(lounge["id"])) == p.VIEW_CHANNEL | p.READ_MESSAGE_HISTORY
    bot.communication_disabled_until = "2000-01-01T00:00:00+00:00"  # "a time in the past": not timed out
    assert guild.unheard_because(bot.id) == ()
    # Administrators are exempt from a timeout's loss of permissions.
    admin = guild.add_member("Ada", roles=[guild.add_role("admins", permissions=p.ADMINISTRATOR)])
    in_voice(guild, admin.id, lounge)
    admin.communication_disabled_until = "2999-01-01T00:00:00+00:00"
    assert guild.unheard_because(admin.id) == ()
    # stage-instance.mdx, "Definitions": a speaker is not suppressed and has no request_to_speak_timestamp.
    stage = guild.add_stage_channel("Stage")
    in_voice(guild, bot.id, stage, suppress=True)
    assert guild.unheard_because(bot.id) == ("not a speaker",)
    in_voice(guild, bot.id, stage, suppress=False, request_to_speak_timestamp=p.iso_now())
    assert guild.unheard_because(bot.id) == ("not a speaker",)
    in_voice(guild, bot.id, stage, suppress=False)
    assert guild.unheard_because(bot.id) == ()


async def test_the_hearers_are_the_members_present_who_are_neither_bots_nor_deafened(fake: FakeDiscord) -> None:
    guild = fake.add_guild()
    lounge, other = guild.add_voice_channel("Lounge"), guild.add_voice_channel("Other")
    bot = guild.bot_member
    listener, deafened, self_deafened, robot, elsewhere = (
        guild.add_member("Lia"),
        guild.add_member("Dee"),
        guild.add_member("Sid"),
        guild.add_member("Robo", bot=True),
        guild.add_member("Eli"),
    )
    for member in (bot, listener, deafened, self_deafened, robot):
        in_voice(guild, member.id, lounge)
    in_voice(guild, elsewhere.id, other)
    deafened.deaf = True  # voice.mdx: `deaf`, deafened by the server
    guild.voice_states[self_deafened.id]["self_deaf"] = True  # `self_deaf`, locally deafened
    assert guild.hearers(int(lounge["id"]), bot.id) == (listener.id,)
    assert guild.hearers(int(lounge["id"]), bot.id, also=[4242]) == tuple(sorted((listener.id, 4242)))


async def test_set_voice_state_and_time_out_dispatch_what_discord_does(world: World) -> None:
    fake, bot, guild = world.fake, world.bot, world.guild
    stage = guild.add_stage_channel("Stage")
    await fake.announce_channel(guild, stage)
    await fake.move_member(guild, world.alice, stage)
    cached = bot.get_guild(guild.id)
    assert cached is not None
    await fake.wait_until(lambda: cached.get_member(world.alice.id) is not None)
    alice = cached.get_member(world.alice.id)
    assert alice is not None and alice.voice is not None
    # Everyone joins a stage in the audience.
    assert isinstance(alice.voice.channel, discord.StageChannel) and alice.voice.suppress
    with pytest.raises(ValueError, match="not in voice"):
        await fake.set_voice_state(guild, guild.bot_member, mute=True)  # guild.mdx: 400 outside voice
    # voice.mdx, "Modify User Voice State": unsuppressed, a member who is not a bot is invited to speak.
    await fake.set_voice_state(guild, world.alice, suppress=False)
    await fake.wait_until(lambda: alice.voice is not None and not alice.voice.suppress)
    assert alice.voice.requested_to_speak_at is not None
    await fake.set_voice_state(guild, world.alice, mute=True, self_deaf=True)
    await fake.wait_until(lambda: alice.voice is not None and alice.voice.mute)
    assert alice.voice.self_deaf
    # A server mute stays with the member in another channel.
    await fake.move_member(guild, world.alice, world.voice)
    await fake.wait_until(lambda: alice.voice is not None and alice.voice.channel.id == int(world.voice["id"]))
    assert alice.voice.mute and alice.voice.self_deaf and not alice.voice.suppress
    with pytest.raises(ValueError, match="stage"):
        await fake.set_voice_state(guild, world.alice, suppress=False)


async def test_a_timeout_of_the_bot_itself_arrives_without_the_members_intent(world: World) -> None:
    fake, bot, guild = world.fake, world.bot, world.guild
    cached = bot.get_guild(guild.id)
    assert cached is not None
    assert not bot.intents.members
    lounge = cached.get_channel(int(world.voice["id"]))
    assert isinstance(lounge, discord.VoiceChannel)
    assert lounge.permissions_for(cached.me).speak
    # gateway.mdx, "Caveats": Guild Member Update is sent for the current user regardless of the intent.
    await fake.time_out(guild, guild.bot_member, 60)
    await fake.wait_until(lambda: cached.me.is_timed_out())
    assert not lounge.permissions_for(cached.me).speak
    await fake.time_out(guild, world.alice, 60)  # anyone else's: not without the intent
    await asyncio.sleep(0.2)
    assert "GUILD_MEMBER_UPDATE" in bot.seen["events"]
    assert bot.seen["events"].count("GUILD_MEMBER_UPDATE") == 1
    await fake.time_out(guild, guild.bot_member, None)
    await fake.wait_until(lambda: not cached.me.is_timed_out())


# ---------------------------------------------------------------- Modify Current User Voice State


async def test_modify_current_user_voice_state_follows_its_caveats(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    guild = fake.add_guild()
    lounge, stage = guild.add_voice_channel("Lounge"), guild.add_stage_channel("Stage")
    bot = guild.bot_member
    url = f"{fake.api_base}/guilds/{guild.id}/voice-states/@me"

    async def patch(body: dict[str, object]) -> tuple[int, int | None]:
        async with http.patch(url, json=body, headers=HEADERS) as response:
            code = (await response.json()).get("code") if response.status != 204 else None
            return response.status, code

    # voice.mdx, "Modify Current User Voice State", caveats: a stage the user has joined, Mute Members to
    # unsuppress, Request to Speak to request; suppressing oneself and clearing one's request always work.
    assert await patch({"channel_id": str(stage["id"]), "suppress": False}) == (404, 10065)
    in_voice(guild, bot.id, lounge)
    assert await patch({"channel_id": str(lounge["id"]), "suppress": False}) == (400, 50024)
    in_voice(guild, bot.id, stage, suppress=True)
    assert await patch({"channel_id": str(stage["id"]), "suppress": False}) == (403, 50013)
    now = p.iso_now()
    assert await patch({"channel_id": str(stage["id"]), "request_to_speak_timestamp": now}) == (403, 50013)
    assert await patch({"channel_id": str(stage["id"]), "suppress": True, "request_to_speak_timestamp": None}) == (
        204,
        None,
    )
    guild.set_permission_overwrite(stage, role_or_member_id=bot, allow=p.REQUEST_TO_SPEAK, deny=0)
    assert await patch({"request_to_speak_timestamp": "2000-01-01T00:00:00"}) == (400, 50035)  # not present
    assert await patch({"channel_id": str(stage["id"]), "request_to_speak_timestamp": now}) == (204, None)
    assert guild.voice_states[bot.id]["request_to_speak_timestamp"] == now
    assert guild.unheard_because(bot.id) == ("not a speaker",)
    guild.set_permission_overwrite(stage, role_or_member_id=bot, allow=p.MUTE_MEMBERS, deny=0)
    assert await patch({"suppress": False, "request_to_speak_timestamp": None}) == (204, None)
    assert guild.unheard_because(bot.id) == ()


# ---------------------------------------------------------------- messages the bot can see


async def test_message_events_come_only_from_channels_the_bot_can_view(world: World) -> None:
    fake, bot, guild = world.fake, world.bot, world.guild
    hidden, unhistoried = guild.add_text_channel("hidden"), guild.add_text_channel("no-history")
    guild.set_permission_overwrite(hidden, role_or_member_id=guild.bot_role_id, allow=0, deny=p.VIEW_CHANNEL)
    guild.set_permission_overwrite(
        unhistoried, role_or_member_id=guild.bot_role_id, allow=0, deny=p.READ_MESSAGE_HISTORY
    )
    for channel in (hidden, unhistoried):
        await fake.announce_channel(guild, channel)
    await fake.post_message(guild, hidden, world.alice, "nobody reads this")
    await fake.post_message(guild, unhistoried, world.alice, "new messages arrive all the same")
    await fake.post_message(guild, world.text, world.alice, "and here")
    await fake.wait_until(lambda: len(bot.seen["message"]) >= 2)
    await asyncio.sleep(0.2)
    assert [message.content for message in bot.seen["message"]] == ["new messages arrive all the same", "and here"]
    # message.mdx, "Get Channel Messages": without Read Message History the list is empty; "Get Channel Message"
    # needs it; a channel the bot cannot view is Missing Access.
    no_history = bot.get_channel(int(unhistoried["id"]))
    assert isinstance(no_history, discord.TextChannel)
    assert [message async for message in no_history.history(limit=5)] == []
    with pytest.raises(discord.Forbidden):
        await no_history.fetch_message(bot.seen["message"][0].id)
    unseen = bot.get_channel(int(hidden["id"]))
    assert isinstance(unseen, discord.TextChannel)
    with pytest.raises(discord.Forbidden):
        await unseen.fetch_message(1)
    fake.invalid_requests.clear()  # the two 403s were asked for


# ---------------------------------------------------------------- the voice stand-in: what counts as heard


async def test_frames_are_heard_only_while_the_sender_can_be_heard_by_someone_listening(
    voice_world: VoiceWorld, tones: dict[float, Path]
) -> None:
    fake, guild, voice = voice_world.fake, voice_world.guild, voice_world.voice
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice.wait_for_session(guild.id)
    listener = guild.add_member("Lia")
    await fake.move_member(guild, listener, voice_world.channel.id)
    call = voice.call(guild.id)
    await call.wait_until(lambda: call.established and call.transition is None, timeout=5)

    async def round_heard() -> list[bool]:
        start = len(session.packets)
        await play(voice_client, tones[0.5])
        await wait_for(lambda: sum(packet.is_silence for packet in session.packets[start:]) == 5)
        return [packet.heard for packet in session.packets[start:]]

    assert all(await round_heard())
    await fake.set_voice_state(guild, guild.bot_member, mute=True)
    assert not any(await round_heard())
    assert session.packets[-1].unheard_because == ("server-muted",)
    await fake.set_voice_state(guild, guild.bot_member, mute=False)
    await fake.set_voice_state(guild, listener, self_deaf=True)
    assert not any(await round_heard())  # someone present, but deafened: no hearer
    assert session.packets[-1].hearers == () and session.packets[-1].listeners == (listener.id,)
    await fake.set_voice_state(guild, listener, self_deaf=False)
    guild.set_permission_overwrite(voice_world.channel.id, role_or_member_id=guild.bot_member, allow=0, deny=p.SPEAK)
    assert not any(await round_heard())
    guild.set_permission_overwrite(voice_world.channel.id, role_or_member_id=guild.bot_member, allow=0, deny=0)
    assert all(await round_heard())


async def test_a_stage_is_not_end_to_end_encrypted_and_its_audience_hears_only_speakers(
    voice_world: VoiceWorld, tones: dict[float, Path]
) -> None:
    fake, guild, voice, client = voice_world.fake, voice_world.guild, voice_world.voice, voice_world.client
    stage_payload = guild.add_stage_channel("Stage")
    guild.set_permission_overwrite(stage_payload, role_or_member_id=guild.bot_member, allow=p.MUTE_MEMBERS, deny=0)
    await fake.announce_channel(guild, stage_payload)
    await wait_for(lambda: client.get_channel(int(stage_payload["id"])) is not None)
    stage = client.get_channel(int(stage_payload["id"]))
    assert isinstance(stage, discord.StageChannel)
    listener = guild.add_member("Lia")
    await fake.move_member(guild, listener, stage.id)
    voice_client = await stage.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice.wait_for_session(guild.id)
    assert session.dave_protocol_version == 0 and not session.e2ee
    assert voice.listeners(guild.id, stage.id) == []  # no MLS group on a stage
    me = stage.guild.me
    await wait_for(lambda: me.voice is not None and me.voice.suppress)

    await play(voice_client, tones[0.5])
    await wait_for(lambda: sum(packet.is_silence for packet in session.packets) == 5)
    assert not any(packet.heard for packet in session.packets)
    assert session.packets[0].unheard_because == ("not a speaker",)

    await me.edit(suppress=False)  # PATCH /guilds/{id}/voice-states/@me, allowed by Mute Members
    await wait_for(lambda: me.voice is not None and not me.voice.suppress)
    start = len(session.packets)
    await play(voice_client, tones[0.5])
    await wait_for(lambda: sum(packet.is_silence for packet in session.packets[start:]) == 5)
    assert all(packet.heard for packet in session.packets[start:])
    assert session.packets[-1].hearers == (listener.id,)
