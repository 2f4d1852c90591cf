"""The clone quota end to end: MAX_CLONES_PER_SERVER is checked before the upload, atomically."""

from __future__ import annotations

import asyncio

from tests.cogs.test_clone import clone_requests, media, run_clone  # noqa: F401 (fixture)
from tests.conftest import World


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


async def test_a_name_this_server_already_uses_is_refused_before_the_upload(
    world: World,
    media: dict[str, bytes],  # noqa: F811
) -> None:
    await world.start_bot()
    first = await run_clone(world, "nell.mp3", media["speech40.mp3"], name="My voice")
    assert "Cloned **My voice**" in first.content()
    again = await run_clone(world, "other.mp3", media["speech40.mp3"], name="MY VOICE")
    assert again.ephemeral
    assert again.content() == (
        "This server already has a cloned voice called “MY VOICE” (names are compared without regard to case); "
        "pick another name."
    )
    assert len(clone_requests(world)) == 1
    # Refused at once, before the defer after which the recording is downloaded.
    assert not [r for r in again.responses if r.kind == "callback" and r.type == 5]


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
    assert sum("already has a cloned voice called" in answer.content() for answer in answers) == 1
