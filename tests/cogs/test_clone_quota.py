"""The clone quota end to end: MAX_CLONES_PER_SERVER is checked before the upload, atomically."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import clones
from tests.cogs.test_clone import clone_requests, media, run_clone  # noqa: F401 (fixture)
from tests.conftest import World


def isoformat(moment: datetime) -> str:
    """A time as Unmixr writes `date_created`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_a_clone_beyond_the_quota_is_refused_with_the_count_before_any_upload(
    world: World,
    media: dict[str, bytes],  # noqa: F811
) -> None:
    await world.start_bot(max_clones_per_server=1)
    first = await run_clone(world, "nell.mp3", media["speech40.mp3"])
    assert "Cloned **Narrator Nell**" in first.content()

    second = await run_clone(world, "other.mp3", media["speech40.mp3"], name="Second Voice")
    assert second.ephemeral
    assert "has 1 cloned voice (" in second.content() and "at most 1" in second.content()
    assert len(clone_requests(world)) == 1
    # Refused at once, before the defer after which the recording is downloaded.
    assert not [r for r in second.responses if r.kind == "callback" and r.type == 5]


async def test_two_clones_at_once_cannot_both_take_the_last_slot(
    world: World,
    media: dict[str, bytes],  # noqa: F811
) -> None:
    await world.start_bot(max_clones_per_server=1)
    answers = await asyncio.gather(
        run_clone(world, "a.mp3", media["speech40.mp3"], name="Voice A"),
        run_clone(world, "b.mp3", media["speech40.mp3"], name="Voice B"),
    )
    assert len(clone_requests(world)) == 1
    assert sum("Cloned" in answer.content() for answer in answers) == 1
    assert sum("at most 1" in answer.content() for answer in answers) == 1
    assert await world.bot.storage.count_cloned_voices(world.guild.id) == 1


async def test_a_failed_upload_gives_its_slot_back(world: World, media: dict[str, bytes]) -> None:  # noqa: F811
    await world.start_bot(max_clones_per_server=1)
    world.unmixr.fail_next(501, endpoint="/clone-voice/")
    failed = await run_clone(world, "nell.mp3", media["speech40.mp3"])
    assert "failed to create the cloned voice" in failed.content()
    again = await run_clone(world, "nell.mp3", media["speech40.mp3"])
    assert "Cloned **Narrator Nell**" in again.content()


async def awaited_clone_setup(world: World, backend: dict[str, Any], limit: int = 1) -> None:
    await world.start_bot(max_clones_per_server=limit, **backend)
    # Test hook: /clone-voice/'s 25 s timeout is not a setting. 2 s is time enough for an answer that comes.
    world.bot.unmixr._tts_timeout = 2.0


async def test_timed_out_clones_never_make_more_voices_than_the_servers_slots(
    world: World,
    media: dict[str, bytes],  # noqa: F811
    backend: dict[str, Any],
) -> None:
    await awaited_clone_setup(world, backend)
    # Unmixr makes the voice of every upload, but its answers never arrive.
    world.unmixr.hang_after_next(3, endpoint="/clone-voice/")
    answers = [await run_clone(world, "nell.mp3", media["speech40.mp3"]) for _ in range(3)]

    # The first upload's voice is found in the clone list at once and recorded; the slot stays taken.
    assert len(world.unmixr.clones) == 1
    [made] = world.unmixr.clones
    assert "it made the voice: cloned **Narrator Nell**" in answers[0].content()
    assert [voice.voice_id for voice in await world.bot.storage.list_cloned_voices(world.guild.id)] == [made["uuid"]]
    assert all("at most 1" in answer.content() for answer in answers[1:])
    assert len(clone_requests(world)) == 1
    # Usable at once, like any clone of the server.
    said = await world.say(text="Hello from my new voice.", voice="Narrator Nell")
    await said.wait_final(timeout=20)
    assert said.files(), said.content()


async def test_a_timed_out_clone_keeps_its_slot_and_name_until_a_list_ten_minutes_later_lacks_it(
    world: World,
    media: dict[str, bytes],  # noqa: F811
    backend: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await awaited_clone_setup(world, backend, limit=2)
    world.unmixr.hang_next(1, endpoint="/clone-voice/")  # no answer, and (so far) no voice
    sent = datetime.now(UTC)
    first = await run_clone(world, "nell.mp3", media["speech40.mp3"], description="Calm")
    assert first.ephemeral and "slot and the name “Narrator Nell” stay reserved" in first.content()
    # The name is reserved (in any case); the other slot is free.
    same_name = await run_clone(world, "nell.mp3", media["speech40.mp3"], name="narrator NELL")
    assert "already has a cloned voice named “narrator NELL”" in same_name.content()
    other = await run_clone(world, "otto.mp3", media["speech40.mp3"], name="Otto")
    assert "Cloned **Otto**" in other.content()
    full = await run_clone(world, "third.mp3", media["speech40.mp3"], name="Third")
    assert "has 2 cloned voices" in full.content() and "at most 2" in full.content()
    assert len(clone_requests(world)) == 2

    # A list fetched 9 minutes later still lacks it: reserved still. At 10 minutes: both are free again.
    world.bot.catalogue.clock = lambda: sent + timedelta(minutes=9)
    await world.bot.catalogue.refresh_clones()
    assert "at most 2" in (await run_clone(world, "third.mp3", media["speech40.mp3"], name="Third")).content()
    world.bot.catalogue.clock = lambda: sent + timedelta(minutes=10, seconds=5)
    await world.bot.catalogue.refresh_clones()
    again = await run_clone(world, "nell.mp3", media["speech40.mp3"], description="Calm")
    assert "Cloned **Narrator Nell**" in again.content()

    # Unmixr's voice of the first upload appears later still: with no slot free it is only logged.
    caplog.set_level(logging.WARNING, logger="bot.clones")
    late = {
        **world.unmixr.clones[-1],
        "uuid": str(uuid.uuid4()),
        "date_created": isoformat(sent + timedelta(seconds=2)),
    }
    world.unmixr.clones.append(late)
    await world.bot.catalogue.refresh_clones()
    assert await world.bot.storage.get_cloned_voice(late["uuid"]) is None
    assert any(late["uuid"] in record.getMessage() and record.levelno == logging.WARNING for record in caplog.records)


async def test_a_voice_appearing_after_its_slot_was_freed_goes_to_the_server_if_a_slot_is_free(
    world: World,
    media: dict[str, bytes],  # noqa: F811
    backend: dict[str, Any],
) -> None:
    await awaited_clone_setup(world, backend)
    world.unmixr.hang_next(1, endpoint="/clone-voice/")
    sent = datetime.now(UTC)
    first = await run_clone(world, "nell.mp3", media["speech40.mp3"])
    assert "stay reserved" in first.content()
    world.bot.catalogue.clock = lambda: sent + timedelta(minutes=11)
    await world.bot.catalogue.refresh_clones()  # lacks it: the slot is freed

    # The voice shows up now, made at the time of the upload. Another server's voice of the same name made
    # before the upload, and a voice already recorded, are not taken for it.
    voice = {
        "uuid": str(uuid.uuid4()),
        "character": "Narrator Nell",
        "description": "",
        "date_created": isoformat(sent + timedelta(seconds=3)),
        "is_available": True,
        "category": "clones",
    }
    older = {**voice, "uuid": str(uuid.uuid4()), "date_created": isoformat(sent - timedelta(hours=1))}
    world.unmixr.clones.extend([older, voice])
    await world.bot.catalogue.refresh_clones()
    [recorded] = await world.bot.storage.list_cloned_voices(world.guild.id)
    assert recorded.voice_id == voice["uuid"] and recorded.name == "Narrator Nell"
    assert recorded.created_by == world.admin.id
    refused = await run_clone(world, "other.mp3", media["speech40.mp3"], name="Other")
    assert "at most 1" in refused.content()


async def test_the_bot_looks_again_by_itself_when_the_ten_minutes_are_up(
    world: World,
    media: dict[str, bytes],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clones, "LIST_AGAIN_SECONDS", 3)  # 10 minutes, in a test (longer than the 2 s timeout)
    await awaited_clone_setup(world, {})
    world.unmixr.hang_next(1, endpoint="/clone-voice/")
    assert "stay reserved" in (await run_clone(world, "nell.mp3", media["speech40.mp3"])).content()
    lists = len([r for r in world.unmixr.requests if r.endpoint == "/cloned-voice-list/"])
    # No refresh of the catalogue is due for hours: the bot fetches the clone list itself and frees the slot.
    await world.discord.wait_until(
        lambda: len([r for r in world.unmixr.requests if r.endpoint == "/cloned-voice-list/"]) > lists,
        timeout=10,
        what="the clone list fetched again",
    )
    for _ in range(100):
        if not await world.bot.storage.clone_names(world.guild.id):
            break
        await asyncio.sleep(0.05)
    assert "Cloned **Narrator Nell**" in (await run_clone(world, "nell.mp3", media["speech40.mp3"])).content()


async def test_a_name_is_unique_in_its_server_in_any_case_and_refused_before_the_upload(
    world: World,
    media: dict[str, bytes],  # noqa: F811
) -> None:
    await world.start_bot()
    assert "Cloned **Narrator Nell**" in (await run_clone(world, "nell.mp3", media["speech40.mp3"])).content()
    refused = await run_clone(world, "nell.mp3", media["speech40.mp3"], name="NARRATOR nell")
    assert refused.ephemeral and "already has a cloned voice named “NARRATOR nell”" in refused.content()
    assert len(clone_requests(world)) == 1
    assert not [r for r in refused.responses if r.kind == "callback" and r.type == 5]  # before the download too


async def test_two_uploads_of_one_name_at_once_make_one_voice(
    world: World,
    media: dict[str, bytes],  # noqa: F811
) -> None:
    await world.start_bot()
    answers = await asyncio.gather(
        run_clone(world, "a.mp3", media["speech40.mp3"], name="Twin"),
        run_clone(world, "b.mp3", media["speech40.mp3"], name="twin"),
    )
    assert len(clone_requests(world)) == 1
    assert sum("Cloned" in answer.content() for answer in answers) == 1
    assert sum("already has a cloned voice named" in answer.content() for answer in answers) == 1
