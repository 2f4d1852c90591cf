"""The bot end to end against an Unmixr that answers unlike the reference's one example of each (PRODUCT.md,
Unmixr responses): odd and extra fields, same-origin redirects, an ignored `page`, gateway errors; and a new
clone known in full at once."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.cogs.test_clone import run_clone
from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.prose import prose
from tests.fakes.unmixr_catalogue import BRIAN_ID


async def said(world: World, text: str, **options: Any) -> FakeInteraction:
    interaction = await world.say(member=world.member, text=text, **options)
    await interaction.wait_final(timeout=20)
    return interaction


async def test_the_bot_works_against_every_variation_at_once(world: World) -> None:
    brian = next(voice for voice in world.unmixr.voices if voice["uuid"] == BRIAN_ID)
    # A voice with one capability, which the odd answers send as a string rather than a list.
    world.unmixr.voices.append({**brian, "uuid": "5010c0de-0000-4000-8000-000000000001", "character": "Solo"})
    world.unmixr.voices[-1]["capabilities"] = ["intensity"]
    world.unmixr.vary("all")
    await world.start_bot()
    spoken = await said(world, "Hello through every variation.", voice="Solo", intensity=20)
    assert spoken.files(), spoken.content()
    tts = [request for request in world.tts_requests() if request.path.startswith("/moved/")]
    assert tts and tts[-1].json["intensity"] == 20
    # What could be read is kept: Brian still speaks the locale whose sample URL came as null.
    australian = await said(world, "G'day.", voice="Brian", language="en-AU")
    assert australian.files(), australian.content()
    # The entries without a uuid or a name are not offered.
    offered = await world.discord.autocomplete(world.guild, world.text, world.member, "say", {"voice": "Name"}, "voice")
    await offered.wait_final()
    assert "Nameless Uuid" not in [choice["name"] for choice in offered.choices()]
    nameless = await said(world, "Who?", voice="0badc0de-0000-4000-8000-000000000000")
    assert nameless.ephemeral and not nameless.files()
    assert "no voice called" in nameless.content()
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    assert f"{world.unmixr.prebuilt_chars:,} prebuilt characters" in balance.content()


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
async def test_a_gateway_timeout_on_say_is_a_timeout_counted_as_spent(running: World, html: bool) -> None:
    running.unmixr.gateway_error_next(504, endpoint="/short-tts/", html=html)
    timed_out = await said(running, prose(70, salt=31))
    assert timed_out.ephemeral and not timed_out.files()
    assert "took too long" in timed_out.content()
    assert len(running.tts_requests()) == 1, "not retried: Unmixr may have done (and charged) it"
    today = await running.bot.storage.usage_for_day(running.guild.id, datetime.now(UTC).date())
    assert (today.committed, today.reserved) == (70, 0)


async def test_a_gateway_502_on_say_is_retried(running: World) -> None:
    running.unmixr.gateway_error_next(502, endpoint="/short-tts/", html=True)
    spoken = await said(running, "Through a flaky gateway.")
    assert spoken.files(), spoken.content()
    assert [request.status for request in running.tts_requests()] == [502, 200]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 35 s mp3 recording, made once."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    target = tmp_path_factory.mktemp("real-unmixr") / "speech35.mp3"
    source = ["-f", "lavfi", "-i", "sine=frequency=220:duration=35", "-ac", "1", "-b:a", "32k"]
    subprocess.run([ffmpeg, "-v", "error", "-y", *source, str(target)], check=True, timeout=60)
    return target.read_bytes()


async def test_a_new_clone_speaks_its_languages_at_once(running: World, recording: bytes) -> None:
    cloned = await run_clone(running, "nell.mp3", recording)
    assert "Narrator Nell" in cloned.content(), cloned.content()
    [clone] = running.unmixr.clones
    assert [request.path for request in running.unmixr.requests if request.endpoint == "/voice/"] == [
        f"/api/v1/voice/{clone['uuid']}/"
    ]
    # German is among the languages Unmixr gives a new clone: usable now, not at the next refresh.
    spoken = await said(running, "Guten Tag.", voice="Narrator Nell", language="de")
    assert spoken.files(), spoken.content()
    assert running.tts_requests()[-1].json["language"] == "de"


async def test_a_new_clone_whose_details_fail_is_usable_as_created(running: World, recording: bytes) -> None:
    running.unmixr.fail_next(404, n=3, endpoint="/voice/")
    cloned = await run_clone(running, "nell.mp3", recording)
    assert "Narrator Nell" in cloned.content(), cloned.content()
    spoken = await said(running, "Hello from the clone.", voice="Narrator Nell")
    assert spoken.files(), spoken.content()
