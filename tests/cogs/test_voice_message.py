"""`format: voice-message` end to end: the real bot, discord.py and both stand-ins (PRODUCT.md, Reach).

New audio is deferred, the response becomes the usual line, and the voice message is posted to the channel;
audio cached on this machine is the initial response itself; where the bot may send neither, an mp3 comes with
the reason. The Discord stand-in refuses a voice message the way Discord does, so what it accepts here is what
Discord accepts.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from bot.audio import voice_message as voice_audio
from tests.cogs.test_read_aloud import read_aloud
from tests.cogs.test_say import (
    admin_sets,
    assert_audio_reply,
    every_interaction_answered,
    ffprobe,
    final,
    reply_credits,
    reply_seconds,
    tts_payloads,
    usage_today,
)
from tests.cogs.test_voice import wait_clips
from tests.conftest import World
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.discord_voice import FakeVoiceServer

__all__ = ["every_interaction_answered"]  # the autouse check that every interaction got its answer


def accepted(interaction: FakeInteraction) -> list[tuple[str, int | None]]:
    """The kinds (and callback types) of the answers the stand-in accepted, in order."""
    return [(response.kind, response.type) for response in interaction.responses if response.status < 300]


def voice_messages_in(world: World) -> list[dict[str, Any]]:
    """The voice messages the bot posted to the text channel (Create Message)."""
    return [
        message
        for message in world.discord.channel_messages.get(int(world.text["id"]), [])
        if message["flags"] & p.FLAG_VOICE_MESSAGE
    ]


async def posted_voice_message(world: World, count: int = 1) -> dict[str, Any]:
    """Wait for the bot's `count`-th voice message in the text channel and return it."""
    await world.discord.wait_until(lambda: len(voice_messages_in(world)) >= count, what="the voice message")
    return voice_messages_in(world)[count - 1]


async def assert_voice_message(world: World, message: dict[str, Any]) -> tuple[bytes, float]:
    """A voice message as Discord shows one: no text, one Ogg Opus file, its duration and a waveform."""
    assert message["flags"] & p.FLAG_VOICE_MESSAGE
    assert message["content"] == "" and message["embeds"] == [] and message["components"] == []
    (attachment,) = message["attachments"]
    ((name, ogg),) = world.discord.files_of(message)
    assert name.endswith(".ogg") and attachment["content_type"] == "audio/ogg"
    probe = await ffprobe(ogg)
    assert probe["format"] == "ogg" and probe["codec"] == "opus"
    assert attachment["duration_secs"] == pytest.approx(probe["duration"], abs=0.1)
    points = base64.b64decode(attachment["waveform"], validate=True)
    # message.mdx: at most one point per 100 ms, at most 256; the loudest is full scale.
    assert 0 < len(points) <= min(256, int(attachment["duration_secs"] * 10) + 1)
    assert max(points) == 255
    return ogg, attachment["duration_secs"]


# New text: deferred line, then the voice message in the channel -----------------------------------------


async def test_new_text_is_the_deferred_line_then_a_voice_message_in_the_channel(running: World) -> None:
    text = "A voice message, with its waveform, in the channel."
    interaction = await final(await running.say(text=text, format="voice-message"))

    assert accepted(interaction) == [("callback", 5), ("edit_original", None)]
    line = interaction.content()
    assert "Brian" in line and reply_credits(line) == len(text)
    assert not interaction.files(), "the line carries no file: the voice message is its own message"
    message = await posted_voice_message(running)
    ogg, seconds = await assert_voice_message(running, message)
    assert reply_seconds(line) == pytest.approx(seconds, abs=0.15)
    # Unmixr was asked for the mp3 the voice message is made from: the format is ours, not Unmixr's.
    (payload,) = tts_payloads(running.unmixr)
    assert payload.get("output_type", "mp3") == "mp3"
    assert (await usage_today(running)).credits == len(text)
    assert len(ogg) < 20_000, "Opus at 32 kb/s: a few seconds of speech"


async def test_the_same_text_again_is_the_initial_response_with_no_upstream_call_and_no_transcode(
    running: World,
) -> None:
    text = "Said once as a voice message, then again from the cache."
    first = await final(await running.say(text=text, format="voice-message"))
    first_ogg, _ = await assert_voice_message(running, await posted_voice_message(running))
    encoded = voice_audio.encodings_made()
    spent = (await usage_today(running)).credits

    second = await final(await running.say(text=text, format="voice-message", member=running.other))

    assert accepted(second) == [("callback", 4)], "the voice message is the response itself: no defer, no line"
    message = second.final_message()
    assert message is not None
    ogg, _ = await assert_voice_message(running, message)
    assert ogg == first_ogg
    assert len(running.tts_requests()) == 1, "a cached voice message must not reach Unmixr again"
    assert voice_audio.encodings_made() == encoded, "nor be transcoded again"
    assert len(voice_messages_in(running)) == 1, "nothing more is posted to the channel"
    usage = await usage_today(running)
    assert (usage.credits, usage.cache_hits) == (spent, 1)
    assert accepted(first)[0] == ("callback", 5)


async def test_mp3_audio_already_cached_is_made_into_a_voice_message_without_credits(running: World) -> None:
    text = "First as an mp3, then as a voice message."
    await final(await running.say(text=text))
    interaction = await final(await running.say(text=text, format="voice-message"))
    assert accepted(interaction) == [("callback", 5), ("edit_original", None)]
    assert "from cache" in interaction.content()
    await assert_voice_message(running, await posted_voice_message(running))
    assert len(running.tts_requests()) == 1


# Where a voice message cannot go: an mp3 and the reason ------------------------------------------------------


async def test_without_send_voice_messages_an_mp3_comes_with_the_reason(running: World) -> None:
    running.guild.bot_permissions &= ~p.SEND_VOICE_MESSAGES
    text = "No voice messages allowed for the bot here."
    for _ in range(2):  # new, then cached: neither tries what Discord would refuse
        interaction = await final(await running.say(text=text, format="voice-message"))
        assert_audio_reply(interaction, extension="mp3")
        assert "Send Voice Messages" in interaction.content()
        assert "Brian" in interaction.content()
    assert voice_messages_in(running) == []
    assert len(running.tts_requests()) == 1
    # conftest: no 403 was provoked (the bot read the permission from the interaction first).


async def test_without_send_messages_new_audio_comes_as_an_mp3_but_cached_audio_is_still_a_voice_message(
    running: World,
) -> None:
    text = "Posting needs Send Messages; answering does not."
    made = await final(await running.say(text=text, format="voice-message"))
    await posted_voice_message(running)
    running.guild.set_permission_overwrite(
        running.text, role_or_member_id=running.guild.bot_role_id, allow=0, deny=p.SEND_MESSAGES
    )

    fresh = await final(await running.say(text="Something new to say here.", format="voice-message"))
    assert_audio_reply(fresh, extension="mp3")
    assert "Send Messages" in fresh.content()
    cached = await final(await running.say(text=text, format="voice-message"))
    assert accepted(cached) == [("callback", 4)]
    assert accepted(made)[0] == ("callback", 5)


async def test_a_voice_message_discord_refuses_after_the_line_becomes_an_mp3_on_that_line(running: World) -> None:
    running.unmixr.set_latency(0.5, endpoint="/short-tts/")
    interaction = await running.say(text="The channel closes to voice messages meanwhile.", format="voice-message")
    # After the interaction was created (its permissions said yes), before the bot posts.
    running.guild.set_permission_overwrite(
        running.text, role_or_member_id=running.guild.bot_role_id, allow=0, deny=p.SEND_VOICE_MESSAGES
    )
    await final(interaction)
    await running.discord.wait_until(lambda: "mp3" in interaction.content(), what="the mp3 on the line")

    assert_audio_reply(interaction, extension="mp3")
    assert "Discord did not accept a voice message" in interaction.content()
    assert voice_messages_in(running) == []
    refused = [(r.status, r.code) for r in running.discord.invalid_requests]
    assert refused == [(403, 50173)]
    running.discord.invalid_requests.clear()  # provoked on purpose, checked above


async def test_a_voice_message_over_the_upload_limit_comes_as_an_mp3_that_fits(running: World) -> None:
    limit = 12_000  # a few seconds of 32 kb/s Opus do not fit; a lower-rate mp3 does
    interaction = await final(
        await running.discord.slash(
            running.guild,
            running.text,
            running.member,
            "say",
            {"text": "Rather long for such a small upload limit, this one.", "format": "voice-message"},
            attachment_size_limit=limit,
        )
    )
    # The line comes first; the mp3 replaces the voice message on it once that turns out too large.
    await running.discord.wait_until(lambda: bool(interaction.files()), what="the mp3 on the line")
    _, mp3 = assert_audio_reply(interaction, extension="mp3")
    assert len(mp3) <= limit
    assert "larger than this server's upload limit" in interaction.content()
    assert voice_messages_in(running) == []


# The format as a server default, Read aloud, voice playback ---------------------------------------------------


async def test_settings_format_voice_message_is_the_servers_default_for_say_and_read_aloud(running: World) -> None:
    await admin_sets(running, "format", {"format": "voice-message"})
    shown = await final(await running.slash("settings", subcommand="show", member=running.admin))
    assert re.search(r"voice-message", shown.content() + str(shown.embeds()))

    said = await final(await running.say(text="The server's default format is a voice message."))
    assert accepted(said)[0] == ("callback", 5)
    await assert_voice_message(running, await posted_voice_message(running))

    message = await running.discord.post_message(running.guild, running.text, running.member, "Read me as one too.")
    await read_aloud(running, message, running.other)
    await assert_voice_message(running, await posted_voice_message(running, 2))

    # The member's own choice still wins over the server's.
    mp3 = await final(await running.say(text="But this one as an mp3.", format="mp3"))
    assert_audio_reply(mp3, extension="mp3")
    assert len(voice_messages_in(running)) == 2


async def test_the_option_offers_voice_message_as_a_choice_everywhere(running: World) -> None:
    scope = running.discord.commands[running.guild.id]
    say = next(command for command in scope if command["name"] == "say")
    settings = next(command for command in scope if command["name"] == "settings")
    subcommand = next(option for option in settings["options"] if option["name"] == "format")
    for options in (say["options"], subcommand["options"]):
        format_option = next(option for option in options if option["name"] == "format")
        assert [choice["value"] for choice in format_option["choices"]] == ["mp3", "wav", "voice-message"]


async def test_in_voice_playback_the_format_does_not_matter(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot()
    await admin_sets(world, "format", {"format": "voice-message"})
    await world.discord.move_member(world.guild, world.member, world.voice)
    play = await final(await world.say(text="Played in voice, whatever the format.", play=True))
    assert play.ephemeral and not play.files()
    session = await voice_server.wait_for_session(world.guild.id)
    (clip,) = await wait_clips(session, 1)
    assert clip.seconds > 1.0
    assert voice_messages_in(world) == []


async def test_a_repeat_transcodes_nothing_on_either_backend(world: World, backend: dict[str, Any]) -> None:
    await world.start_bot(**backend)
    text = "Once made, a voice message is kept with the audio."
    await final(await world.say(text=text, format="voice-message"))
    first_ogg, _ = await assert_voice_message(world, await posted_voice_message(world))
    encoded = voice_audio.encodings_made()

    again = await final(await world.say(text=text, format="voice-message", member=world.other))

    if backend:
        # PostgreSQL: /say defers before its first query, so the voice message is posted after the line.
        assert accepted(again) == [("callback", 5), ("edit_original", None)]
        assert "from cache" in again.content()
        message = await posted_voice_message(world, 2)
    else:
        assert accepted(again) == [("callback", 4)]
        message = again.final_message()
        assert message is not None
    ogg, _ = await assert_voice_message(world, message)
    assert ogg == first_ogg
    assert len(world.tts_requests()) == 1
    assert voice_audio.encodings_made() == encoded


async def test_a_read_aloud_voice_message_is_kept_a_day_like_the_rest_of_its_audio(running: World) -> None:
    # PRODUCT.md, Privacy: audio of members' messages stays in the cache at most 24 hours, in every form.
    await admin_sets(running, "format", {"format": "voice-message"})
    message = await running.discord.post_message(running.guild, running.text, running.member, "Keep this a day.")
    await read_aloud(running, message, running.other)
    await assert_voice_message(running, await posted_voice_message(running))
    await running.bot.audio_cache.flush()
    cache = running.settings.audio_cache_dir
    # The mp3 from Unmixr and the voice message made from it, both in messages/; nothing in the folder itself.
    assert len(list((cache / "messages").glob("*.audio"))) == 2
    assert list(cache.glob("*.audio")) == []
