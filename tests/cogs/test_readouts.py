"""Readouts as members expect them (PRODUCT.md, Continuity): what each kind of message says, auto-join, and catch-up
when readouts pile up; end to end through the Discord, voice and Unmixr stand-ins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.text import catch_up_rate
from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import ChannelOption
from tests.fakes.discord_voice import FakeVoiceServer

CONNECT = 1 << 20
MOVE_MEMBERS = 1 << 24


async def settings(world: World, subcommand: str, options: dict[str, Any]) -> None:
    changed = await world.slash("settings", options, subcommand=subcommand, member=world.admin)
    await changed.wait_final()
    assert changed.ephemeral and "Server" in changed.content(), changed.content()


async def readout_channel(world: World) -> None:
    await settings(world, "readout-channel", {"channel": ChannelOption(int(world.readout["id"]))})


def readout_texts(world: World, since: int = 0) -> list[str]:
    return [r.json["text"] for r in world.tts_requests()[since:]]


async def spoken(world: World, count: int, since: int = 0, timeout: float = 20.0) -> list[str]:
    """Wait until `count` requests reached Unmixr since request number `since`; their texts."""
    await world.discord.wait_until(
        lambda: len(world.tts_requests()) - since >= count, timeout=timeout, what=f"{count} requests"
    )
    await asyncio.sleep(0.3)  # nothing more comes
    return readout_texts(world, since)


@pytest.fixture
async def listening(world: World, voice_server: FakeVoiceServer) -> World:
    """The bot running with the two members in the voice channel and the readout channel set."""
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.move_member(world.guild, world.other, world.voice)
    await readout_channel(world)
    return world


async def test_each_kind_of_message_is_read_as_members_expect(listening: World, voice_server: FakeVoiceServer) -> None:
    world = listening
    await (await world.slash("join")).wait_final()
    await voice_server.wait_for_session(world.guild.id)
    post = world.discord.post_message
    guild, channel, member, other = world.guild, world.readout, world.member, world.other
    original = await post(guild, world.text, other, "The forwarded words.")

    await post(guild, channel, member, "Look at this", attachments=[("cat.png", b"\x89PNG", "image/png")])
    await post(guild, channel, member, "", attachments=[("dog.jpg", b"\xff\xd8", "image/jpeg")])
    await post(guild, channel, member, "", stickers=["party parrot"])
    await post(
        guild,
        channel,
        other,
        "",
        attachments=[("clip.mp4", b"mp4", "video/mp4"), ("notes.pdf", b"%PDF", "application/pdf")],
    )
    await post(
        guild,
        channel,
        other,
        "",
        attachments=[("one.mp3", b"ID3", "audio/mpeg"), ("two.ogg", b"OggS", "audio/ogg")],
    )
    await post(guild, channel, member, "", forward=original)
    await post(guild, channel, member, "Quietly now.", silent=True)

    assert await spoken(world, 7, timeout=40) == [
        "Mel Member said, Look at this. With an image.",
        # Attachments alone say who sent what: no "said" on top, and the author counts as announced.
        "Mel Member sent an image.",
        "sticker: party parrot",
        "Otto Other sent a video. With a file.",
        "Otto Other sent 2 audio files.",
        "Mel Member said, The forwarded words.",
        "Quietly now.",  # @silent is read like any other message
    ]


async def test_auto_join_brings_the_bot_into_the_authors_channel_only_when_on(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await readout_channel(world)
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.post_message(world.guild, world.readout, world.member, "Nobody comes for this one.")
    await asyncio.sleep(1.0)
    assert world.guild.id not in world.bot.voice.players and world.tts_requests() == []

    await settings(world, "auto-join", {"enabled": True})
    await world.discord.post_message(world.guild, world.readout, world.member, "Come and read this.")
    session = await voice_server.wait_for_session(world.guild.id, timeout=15)
    assert await spoken(world, 1) == ["Mel Member said, Come and read this."]
    await world.discord.wait_until(lambda: session.seconds_received() > 0.5, timeout=15, what="the readout's audio")
    assert world.bot.voice.connected_channel(world.bot.get_guild(world.guild.id)).id == int(world.voice["id"])

    # Off again: a member in another channel brings the bot nowhere.
    await settings(world, "auto-join", {"enabled": False})
    second = world.guild.add_voice_channel("Second")
    await world.discord.announce_channel(world.guild, second)
    await world.discord.move_member(world.guild, world.other, second)
    await world.discord.post_message(world.guild, world.readout, world.other, "Stay where you are.")
    await asyncio.sleep(1.0)
    assert world.bot.voice.connected_channel(world.bot.get_guild(world.guild.id)).id == int(world.voice["id"])
    assert len(world.tts_requests()) == 1


async def test_auto_join_refuses_what_join_refuses_and_nothing_more(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await readout_channel(world)
    await settings(world, "auto-join", {"enabled": True})
    guild, post = world.guild, world.discord.post_message
    # A channel where the bot may not connect: /join would refuse it, so does auto-join.
    closed = guild.add_voice_channel("Closed")
    guild.set_permission_overwrite(closed, role_or_member_id=guild.bot_member, allow=0, deny=CONNECT)
    await world.discord.announce_channel(guild, closed)
    await world.discord.move_member(guild, world.other, closed)
    await post(guild, world.readout, world.other, "Not in there.")
    await asyncio.sleep(1.0)
    assert world.guild.id not in world.bot.voice.players

    # Busy in the Lounge (a long clip playing for a member there): a member elsewhere does not take the bot away...
    await world.discord.move_member(guild, world.member, world.voice)
    long_text = "A clip that keeps the bot busy in the Lounge for a good few seconds, at least ten of them. " * 2
    await (await world.say(text=long_text, play=True)).wait_final()
    second = guild.add_voice_channel("Second")
    await world.discord.announce_channel(guild, second)
    newcomer = guild.add_member("Nia Newcomer", permissions=MEMBER_PERMISSIONS)
    await world.discord.announce_member(guild, newcomer)
    await world.discord.move_member(guild, newcomer, second)
    before = len(world.tts_requests())
    await post(guild, world.readout, newcomer, "Come over here.")
    await asyncio.sleep(1.0)
    lounge = world.bot.voice.connected_channel(world.bot.get_guild(guild.id))
    assert lounge is not None and lounge.id == int(world.voice["id"])
    assert len(world.tts_requests()) == before

    # ...unless they could move members, as /join allows.
    movers = guild.add_role("Movers", permissions=MOVE_MEMBERS)
    await world.discord.announce_role(guild, movers, created=True)
    mover = guild.add_member("Max Mover", roles=[movers], permissions=MEMBER_PERMISSIONS | MOVE_MEMBERS)
    await world.discord.announce_member(guild, mover)
    await world.discord.move_member(guild, mover, second)
    await post(guild, world.readout, mover, "Over here, please.")
    await world.discord.wait_until(
        lambda: any(text.endswith("Over here, please.") for text in readout_texts(world)), timeout=15
    )
    moved = world.bot.voice.connected_channel(world.bot.get_guild(guild.id))
    assert moved is not None and moved.id == int(second["id"])


def test_catch_up_adds_ten_points_a_readout_past_four_at_most_fifty_and_never_past_100() -> None:
    assert [catch_up_rate("+10%", queued) for queued in range(1, 11)] == [
        "+10%",
        "+10%",
        "+10%",
        "+10%",
        "+20%",
        "+30%",
        "+40%",
        "+50%",
        "+60%",
        "+60%",
    ]
    assert catch_up_rate(None, 4) is None and catch_up_rate(None, 5) == "+10%"
    assert catch_up_rate("fast", 6) == "+20%"  # a word rate counts as 0
    assert catch_up_rate("-30%", 7) == "0%"
    assert catch_up_rate("+80%", 9) == "+100%"


async def test_a_burst_of_readouts_is_spoken_faster_while_five_or_more_are_queued(
    listening: World, voice_server: FakeVoiceServer
) -> None:
    world = listening
    await settings(world, "xsaid", {"enabled": False})
    for member, option, value in ((world.member, "rate", "+10%"), (world.other, "voice", "Steffan (Express)")):
        chosen = await world.slash("preferences", {option: value}, subcommand=option, member=member)
        await chosen.wait_final()
    await (await world.slash("join")).wait_final()
    await voice_server.wait_for_session(world.guild.id)
    # Read once alone, at the member's own rate: cached.
    await world.discord.post_message(world.guild, world.readout, world.member, "Same words.")
    await spoken(world, 1)
    player = world.bot.voice.players[world.guild.id]
    await world.discord.wait_until(lambda: player.idle, timeout=10, what="the first readout played")

    # A long /say keeps the bot busy while a burst arrives: 8 readouts of the member, then one of the other member.
    before = len(world.tts_requests())
    long_text = "A long clip, asked for with /say, that plays while the readouts pile up behind it. " * 2
    played = await world.say(member=world.other, text=long_text, play=True, voice="Brian")
    await played.wait_final()
    # The first readout is next in line, so it is sent to Unmixr at once, alone in the queue.
    await world.discord.post_message(world.guild, world.readout, world.member, "One.")
    assert (await spoken(world, 2, since=before))[-1] == "One."
    for text in ["Two.", "Same words.", "Four.", "Five.", "Six.", "Seven.", "Eight."]:
        await world.discord.post_message(world.guild, world.readout, world.member, text)
    await world.discord.post_message(world.guild, world.readout, world.other, "Nine, in a voice without speed.")
    # The burst is all queued behind the /say clip, which still plays (so the counts below are what they say).
    await world.discord.wait_until(lambda: player.readouts_queued() == 9, timeout=10, what="the burst queued")
    assert player.current is not None and not player.current.readout
    await world.discord.wait_until(
        lambda: len(world.tts_requests()) - before == 10, timeout=60, what="every readout synthesised"
    )
    requests = world.tts_requests()[before:]
    rates = {r.json["text"]: r.json.get("speaking_rate") for r in requests}
    # The /say clip is unchanged; the first readout was sent alone, the second with 9 readouts queued (+50 points,
    # the most), then one fewer each time; under 5 the member's own rate; the other member's voice has no speed.
    assert rates == {
        long_text.strip(): None,
        "One.": "+10%",
        "Two.": "+60%",
        "Same words.": "+50%",
        "Four.": "+40%",
        "Five.": "+30%",
        "Six.": "+20%",
        "Seven.": "+10%",
        "Eight.": "+10%",
        "Nine, in a voice without speed.": None,
    }
    # The faster "Same words." was a new request: the cache key is the rate actually sent.
    assert [r.json.get("speaking_rate") for r in world.tts_requests() if r.json["text"] == "Same words."] == [
        "+10%",
        "+50%",
    ]
