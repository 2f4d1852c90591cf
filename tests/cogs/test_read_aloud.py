"""End-to-end tests of the Read aloud message command through the real discord.py and both stand-ins."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cogs.test_say import (
    admin_sets,
    assert_audio_reply,
    assert_error_followup,
    assert_refused_at_once,
    every_interaction_answered,
    ffprobe,
    final,
    is_answer,
    mentions_allowed,
    reply_seconds,
    tts_payloads,
    usage_today,
    voice_uuid,
)
from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction, FakeMember
from tests.fakes.unmixr_catalogue import BRIAN_ID

__all__ = ["every_interaction_answered"]  # the autouse check that every interaction got its answer


async def prefer_voice(world: World, member: FakeMember, voice: str) -> None:
    """A member picks their own voice in the server."""
    interaction = await final(await world.slash("preferences", {"voice": voice}, subcommand="voice", member=member))
    assert interaction.ephemeral
    assert voice in interaction.content()


async def read_aloud(world: World, message: dict[str, Any], member: FakeMember) -> FakeInteraction:
    """A member uses Read aloud on a message of the text channel and waits for the answer."""
    return await final(await world.discord.message_command(world.guild, world.text, member, "Read aloud", message))


async def test_read_aloud_speaks_the_cleaned_message_with_the_callers_voice(running: World) -> None:
    await prefer_voice(running, running.member, "Hans")  # the author's voice: not the one to use
    await prefer_voice(running, running.other, "Jenny")  # the caller's voice
    message = await running.discord.post_message(
        running.guild,
        running.text,
        running.member,
        f"Look at https://example.com/a/page?x=1 <:party:123> hey <@{running.admin.id}> "
        "```python\nprint('not read')\n``` done!",
    )

    interaction = await read_aloud(running, message, running.other)

    _, audio = assert_audio_reply(interaction)
    probe = await ffprobe(audio)
    assert probe["codec"] == "mp3"
    assert reply_seconds(interaction.content()) == pytest.approx(probe["duration"], abs=0.15)
    (payload,) = tts_payloads(running.unmixr)
    assert payload["text"] == "Look at link party hey Ada Admin done!"
    assert payload["voice_id"] == voice_uuid(running.unmixr, "Jenny")
    assert payload["response_type"] == "url"
    assert "Jenny" in interaction.content()
    answers = [r for r in interaction.responses if is_answer(r)]
    assert answers and all(mentions_allowed(r) == {"parse": []} for r in answers)
    assert (await usage_today(running)).credits == len(payload["text"])


async def test_read_aloud_without_preference_uses_the_default_voice_and_nicknames(running: World) -> None:
    nickname = await final(
        await running.slash("preferences", {"nickname": "Addy"}, subcommand="nickname", member=running.admin)
    )
    assert nickname.ephemeral
    message = await running.discord.post_message(
        running.guild, running.text, running.member, f"Thanks <@{running.admin.id}>, see <#{running.readout['id']}>."
    )

    interaction = await read_aloud(running, message, running.other)

    assert_audio_reply(interaction)
    (payload,) = tts_payloads(running.unmixr)
    assert payload["text"] == "Thanks Addy, see readouts."
    assert payload["voice_id"] == BRIAN_ID
    assert "Brian" in interaction.content()


async def test_read_aloud_of_a_message_with_nothing_to_say(running: World) -> None:
    for content in ("```only code here```", "!!! ...", "||a spoiler|| ?"):
        message = await running.discord.post_message(running.guild, running.text, running.member, content)
        interaction = await read_aloud(running, message, running.other)
        assert_refused_at_once(interaction, "nothing to say")
    assert running.tts_requests() == []


async def test_read_aloud_cuts_a_message_over_max_length_with_and_so_on(running: World) -> None:
    await admin_sets(running, "max-length", {"length": 60})
    long_text = "This message goes on for quite a while, because its author had a great deal to say about everything."
    message = await running.discord.post_message(running.guild, running.text, running.member, long_text)

    interaction = await read_aloud(running, message, running.other)

    assert_audio_reply(interaction)  # the caller did not write it: cut, not refused
    spoken = tts_payloads(running.unmixr)[-1]["text"]
    assert len(spoken) <= 60
    assert spoken.endswith("and so on")
    assert long_text.startswith(spoken.removesuffix(" and so on"))

    short = await running.discord.post_message(running.guild, running.text, running.member, "Short and sweet.")
    await read_aloud(running, short, running.other)
    assert tts_payloads(running.unmixr)[-1]["text"] == "Short and sweet."


async def test_read_aloud_twice_is_served_from_cache(running: World) -> None:
    message = await running.discord.post_message(running.guild, running.text, running.member, "Once more, please.")
    first = await read_aloud(running, message, running.other)
    second = await read_aloud(running, message, running.admin)
    assert_audio_reply(first)
    assert_audio_reply(second)
    assert len(running.tts_requests()) == 1
    assert "from cache" in second.content()
    assert first.files()[0][1] == second.files()[0][1]


async def test_read_aloud_surfaces_unmixr_errors_as_ephemeral_follow_ups(running: World) -> None:
    message = await running.discord.post_message(running.guild, running.text, running.member, "Read this to me.")
    running.unmixr.fail_next(509, endpoint="/short-tts/")
    failed = await read_aloud(running, message, running.other)
    assert_error_followup(failed, "could not generate")

    retried = await read_aloud(running, message, running.other)
    assert_audio_reply(retried)


async def test_a_read_aloud_is_kept_a_day_and_a_say_under_the_size_cap(running: World) -> None:
    message = await running.discord.post_message(running.guild, running.text, running.member, "My private words.")
    assert_audio_reply(await read_aloud(running, message, running.other))
    said = await final(await running.say(text="A clip I made on purpose."))
    assert_audio_reply(said)
    await running.bot.audio_cache.flush()
    cache = running.settings.audio_cache_dir
    # The member's message is in messages/, removed within 24 hours; the /say clip is in the folder itself.
    assert len(list((cache / "messages").glob("*.audio"))) == 1
    assert len(list(cache.glob("*.audio"))) == 1
