"""/clone end to end: real recordings made with ffmpeg, checked by the bot, uploaded to the Unmixr stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.audio import probe
from tests.conftest import ADMIN_PERMISSIONS, MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import FakeInteraction, FakeMember
from tests.fakes.recordings import (
    FifoTrap,
    TagSkippingUploads,
    ffconcat_script,
    hls_playlist,
    long_mp3,
    tagged_mp3,
    tone_mp3,
)
from tests.fakes.unmixr_catalogue import BRIAN_ID
from tests.gauges import LoopStalls, PeakMemory

MANAGE_SERVER = "needs the Manage Server permission"
SUPPORTED = "mp3, wav, ogg, opus, flac, aac, m4a, mp4, mov, webm or mkv"


def _ffmpeg(folder: Path, name: str, *arguments: str) -> bytes:
    """Make a file with ffmpeg from lavfi sources and return its bytes."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is installed system-wide"
    target = folder / name
    subprocess.run([ffmpeg, "-v", "error", "-y", *arguments, str(target)], check=True, timeout=60)
    return target.read_bytes()


def _sine(seconds: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}", "-ac", "1", "-b:a", "32k"]


def _picture(seconds: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=5:duration={seconds}"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Recordings and videos of known lengths, made once for the whole module."""
    folder = tmp_path_factory.mktemp("clone-media")
    speech = _ffmpeg(folder, "speech40.mp3", *_sine(40))
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    return {
        "speech40.mp3": speech,
        "short10.mp3": _ffmpeg(folder, "short10.mp3", *_sine(10)),
        "long90.mp3": _ffmpeg(folder, "long90.mp3", *_sine(90)),
        "edge30.mp3": _ffmpeg(folder, "edge30.mp3", *_sine(30)),
        "edge80.mp3": _ffmpeg(folder, "edge80.mp3", *_sine(80)),
        "talk35.mp4": _ffmpeg(
            folder,
            "talk35.mp4",
            *_picture(35),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=35",
            *video,
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-shortest",
        ),
        "mute35.mp4": _ffmpeg(folder, "mute35.mp4", *_picture(35), *video, "-an"),
        # The first 50 kB of the 40 s recording: its header still claims 40 s, but only ~12 s decode.
        "cut.mp3": speech[:50_000],
    }


class UploadSpy:
    """Remembers the file part of every upload the Unmixr stand-in reads."""

    def __init__(self, world: World) -> None:
        self.parts: list[dict[str, Any]] = []
        original = world.unmixr._read_file_part

        async def read_file_part(part: Any) -> tuple[bytes, int]:
            data, size = await original(part)
            self.parts.append(
                {"filename": part.filename, "content_type": part.headers.get("Content-Type"), "data": data}
            )
            return data, size

        world.unmixr._read_file_part = read_file_part  # type: ignore[method-assign]


def clone_requests(world: World) -> list[Any]:
    """The /clone-voice/ requests Unmixr received."""
    return [r for r in world.unmixr.requests if r.endpoint == "/clone-voice/"]


def balance(world: World) -> tuple[int, int]:
    """The Unmixr account's prebuilt and cloned character credits, as the stand-in holds them."""
    return world.unmixr.prebuilt_chars, world.unmixr.cloned_chars


def assert_refused_for_free(world: World, refused: FakeInteraction, before: tuple[int, int], *words: str) -> None:
    """The answer is one ephemeral sentence with these words, nothing was uploaded and no credit was spent."""
    assert refused.ephemeral
    answer = refused.content()
    assert answer.count(". ") == 0 and answer.endswith("."), answer
    for word in words:
        assert word in answer, answer
    assert clone_requests(world) == []
    assert world.unmixr.clones == []
    assert balance(world) == before


class ProcessSpy:
    """Remembers the programs the bot starts (ffmpeg, ffprobe) while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.programs: list[str] = []
        real_exec = asyncio.create_subprocess_exec

        async def spying_exec(program: str, *arguments: str, **kwargs: Any) -> asyncio.subprocess.Process:
            self.programs.append(program)
            return await real_exec(program, *arguments, **kwargs)

        monkeypatch.setattr(asyncio, "create_subprocess_exec", spying_exec)


async def run_clone(
    world: World,
    filename: str,
    data: bytes,
    *,
    content_type: str = "audio/mpeg",
    member: FakeMember | None = None,
    timeout: float = 20,
    **options: Any,
) -> FakeInteraction:
    """Run /clone as the admin (by default) with one attachment, and wait for the final answer."""
    values: dict[str, Any] = {"name": "Narrator Nell", "consent": True}
    values.update(options)
    interaction = await world.slash(
        "clone", values, member=member or world.admin, attachments={"audio": (filename, data, content_type)}
    )
    await interaction.wait_final(timeout=timeout)
    return interaction


async def test_clone_uploads_once_and_the_voice_is_usable_here(running: World, media: dict[str, bytes]) -> None:
    spy = UploadSpy(running)
    cloned = await run_clone(
        running, "nell.mp3", media["speech40.mp3"], description="Our narrator, recorded with consent"
    )
    assert cloned.ephemeral
    assert "Narrator Nell" in cloned.content()
    assert "40." in cloned.content()  # the measured length
    [upload] = clone_requests(running)
    assert upload.form == {"name": "Narrator Nell", "description": "Our narrator, recorded with consent"}
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert upload.file_size == len(media["speech40.mp3"])
    assert spy.parts[0]["data"] == media["speech40.mp3"]
    [clone] = running.unmixr.clones
    record = await running.bot.storage.get_cloned_voice(clone["uuid"])
    assert record is not None
    assert (record.guild_id, record.created_by, record.name) == (running.guild.id, running.admin.id, "Narrator Nell")
    said = await running.say(member=running.member, text="Hello from the clone.", voice="Narrator Nell")
    await said.wait_final()
    assert said.files(), said.content()
    assert running.tts_requests()[-1].json["voice_id"] == clone["uuid"]
    # The clone is offered by the voice autocomplete of this server.
    offered = await running.discord.autocomplete(
        running.guild, running.text, running.member, "say", {"voice": "Narrator"}, "voice"
    )
    await offered.wait_final()
    assert clone["uuid"] in [choice["value"] for choice in offered.choices()]


async def test_a_clone_is_neither_offered_nor_accepted_in_another_server(world: World, media: dict[str, bytes]) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    elsewhere_text = elsewhere.add_text_channel("general")
    stranger = elsewhere.add_member("Sam Stranger", permissions=MEMBER_PERMISSIONS)
    await world.start_bot()
    cloned = await run_clone(world, "nell.mp3", media["speech40.mp3"])
    assert "Narrator Nell" in cloned.content()
    [clone] = world.unmixr.clones
    tts_before = len(world.tts_requests())
    said = await world.discord.slash(
        elsewhere, elsewhere_text, stranger, "say", {"text": "Borrowing a voice.", "voice": "Narrator Nell"}
    )
    await said.wait_final()
    assert said.ephemeral and not said.files()
    assert "no voice called" in said.content()
    by_id = await world.discord.slash(
        elsewhere, elsewhere_text, stranger, "say", {"text": "Borrowing a voice.", "voice": clone["uuid"]}
    )
    await by_id.wait_final()
    assert by_id.ephemeral and not by_id.files()
    assert len(world.tts_requests()) == tts_before
    offered = await world.discord.autocomplete(
        elsewhere, elsewhere_text, stranger, "say", {"voice": "Narrator"}, "voice"
    )
    await offered.wait_final()
    assert clone["uuid"] not in [choice["value"] for choice in offered.choices()]
    assert not any("Nell" in choice["name"] for choice in offered.choices())


async def test_consent_is_required_before_anything_is_uploaded(running: World, media: dict[str, bytes]) -> None:
    refused = await run_clone(running, "nell.mp3", media["speech40.mp3"], consent=False)
    assert refused.ephemeral
    assert "consent" in refused.content()
    assert clone_requests(running) == []
    assert await running.bot.storage.list_cloned_voices(running.guild.id) == []


async def test_a_text_file_named_mp3_is_not_audio(running: World) -> None:
    text = b"These are the lyrics, not a recording of anyone.\n" * 40
    before = balance(running)
    refused = await run_clone(running, "song.mp3", text, content_type="audio/mpeg")
    assert_refused_for_free(running, refused, before, "not audio", SUPPORTED)


@pytest.mark.parametrize(
    ("recording", "expected"),
    [("short10.mp3", ("10.0 s", "at least 30 s")), ("long90.mp3", ("90.0 s", "at most 80 s"))],
)
async def test_the_length_must_be_30_to_80_seconds(
    running: World, media: dict[str, bytes], recording: str, expected: tuple[str, str]
) -> None:
    refused = await run_clone(running, recording, media[recording])
    assert refused.ephemeral
    for part in expected:
        assert part in refused.content()
    assert clone_requests(running) == []


@pytest.mark.parametrize("recording", ["edge30.mp3", "edge80.mp3"])
async def test_recordings_of_exactly_30_and_80_seconds_are_accepted(
    running: World, media: dict[str, bytes], recording: str
) -> None:
    # The range is inclusive, and an mp3's encoder padding (80 s decodes to about 80.05 s) does not count.
    cloned = await run_clone(running, recording, media[recording])
    assert cloned.ephemeral
    assert "Cloned" in cloned.content(), cloned.content()
    assert len(clone_requests(running)) == 1


async def test_a_file_declared_over_120_mb_is_refused_before_download(running: World, media: dict[str, bytes]) -> None:
    # The stand-in serves what it is given; only the resolved attachment's size field is made to lie.
    fake = running.discord
    data = fake._command_data(
        running.guild,
        running.text,
        running.admin,
        "clone",
        {"name": "Huge", "consent": True},
        subcommand=None,
        group=None,
        attachments={"audio": ("huge.wav", media["speech40.mp3"], "audio/wav")},
        focused=None,
        client_checks=True,
        permissions=None,
    )
    for attachment in data["resolved"]["attachments"].values():
        attachment["size"] = 120_000_001
    interaction = await fake._send_interaction(
        fake._new_interaction(
            interaction_type=2, guild=running.guild, channel=running.text, member=running.admin, data=data
        )
    )
    await interaction.wait_final()
    assert interaction.ephemeral
    assert "120 MB" in interaction.content() and "120.0 MB" in interaction.content()
    assert clone_requests(running) == []


async def test_a_truncated_recording_cannot_be_decoded(running: World, media: dict[str, bytes]) -> None:
    refused = await run_clone(running, "cut.mp3", media["cut.mp3"])
    assert refused.ephemeral
    assert "decoded" in refused.content()
    assert clone_requests(running) == []


async def test_a_corrupt_video_cannot_be_decoded(running: World, media: dict[str, bytes]) -> None:
    # An mp4 cut short loses its index (written last), so no player can read it.
    refused = await run_clone(running, "clip.mp4", media["talk35.mp4"][:30_000], content_type="video/mp4")
    assert refused.ephemeral
    assert "decoded" in refused.content()
    assert clone_requests(running) == []


async def test_garbage_after_an_mp3_header_cannot_be_decoded(running: World, media: dict[str, bytes]) -> None:
    corrupt = media["speech40.mp3"][:600] + bytes(range(256)) * 400
    refused = await run_clone(running, "noise.mp3", corrupt)
    assert refused.ephemeral
    assert "decoded" in refused.content()
    assert clone_requests(running) == []


async def test_a_video_with_sound_has_its_audio_extracted_and_uploaded_as_mp3(
    running: World, media: dict[str, bytes]
) -> None:
    spy = UploadSpy(running)
    cloned = await run_clone(running, "interview.mp4", media["talk35.mp4"], content_type="video/mp4")
    assert cloned.ephemeral and "Narrator Nell" in cloned.content(), cloned.content()
    [request] = clone_requests(running)
    [part] = spy.parts
    assert part["filename"] == "interview.mp3"
    assert part["content_type"] == "audio/mpeg"
    uploaded = await probe(part["data"])
    assert uploaded.format_name == "mp3" and uploaded.has_audio and not uploaded.has_video
    assert uploaded.duration is not None and 34 < uploaded.duration < 36
    assert request.file_size == len(part["data"]) != len(media["talk35.mp4"])
    assert len(running.unmixr.clones) == 1


async def test_a_video_without_sound_is_refused(running: World, media: dict[str, bytes]) -> None:
    refused = await run_clone(running, "silent.mp4", media["mute35.mp4"], content_type="video/mp4")
    assert refused.ephemeral
    assert "without sound" in refused.content()
    assert clone_requests(running) == []


@pytest.mark.parametrize(
    ("status", "words"),
    [(402, ("limit",)), (501, ("failed",)), (500, ("internal error",))],
)
async def test_unmixr_clone_errors_are_clear_and_never_retried(
    running: World, media: dict[str, bytes], status: int, words: tuple[str, ...]
) -> None:
    running.unmixr.fail_next(status, n=3, endpoint="/clone-voice/")
    failed = await run_clone(running, "nell.mp3", media["speech40.mp3"])
    assert failed.ephemeral
    for word in words:
        assert word in failed.content().casefold()
    assert str(status) not in failed.content()
    assert len(clone_requests(running)) == 1
    assert await running.bot.storage.list_cloned_voices(running.guild.id) == []
    said = await running.say(member=running.member, text="Still missing.", voice="Narrator Nell")
    await said.wait_final()
    assert "no voice called" in said.content()


async def test_a_member_cannot_clone_even_without_discords_gate(running: World, media: dict[str, bytes]) -> None:
    # The stand-in ignores default_member_permissions, like an Integrations override that shows the command.
    refused = await run_clone(running, "nell.mp3", media["speech40.mp3"], member=running.member)
    assert refused.ephemeral
    assert MANAGE_SERVER in refused.content()
    assert clone_requests(running) == []
    assert running.unmixr.clones == []


async def test_the_clone_command_carries_the_manage_server_default(running: World) -> None:
    command = next(c for c in running.discord.commands[running.guild.id] if c["name"] == "clone")
    assert int(command["default_member_permissions"]) == 1 << 5
    options = {option["name"]: option for option in command["options"]}
    assert options["audio"]["type"] == 11 and options["audio"]["required"]
    assert options["consent"]["type"] == 5 and options["consent"]["required"]
    assert options["name"]["required"] and not options.get("description", {}).get("required")


async def test_a_clone_named_like_a_catalogue_voice_wins_only_in_its_server(
    world: World, media: dict[str, bytes]
) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    elsewhere_text = elsewhere.add_text_channel("general")
    stranger = elsewhere.add_member("Sam Stranger", permissions=MEMBER_PERMISSIONS)
    await world.start_bot()
    cloned = await run_clone(world, "brian.mp3", media["speech40.mp3"], name="Brian")
    assert "Brian" in cloned.content()
    [clone] = world.unmixr.clones
    here = await world.say(member=world.member, text="Which Brian am I?", voice="brian")
    await here.wait_final()
    assert world.tts_requests()[-1].json["voice_id"] == clone["uuid"]
    there = await world.discord.slash(
        elsewhere, elsewhere_text, stranger, "say", {"text": "Which Brian am I?", "voice": "brian"}
    )
    await there.wait_final()
    assert there.files()
    assert world.tts_requests()[-1].json["voice_id"] == BRIAN_ID


# Untrusted media: files that are not what their name says, and files that would keep ffmpeg busy.


@pytest.mark.parametrize("make", [hls_playlist, ffconcat_script], ids=["hls playlist", "ffconcat script"])
async def test_a_playlist_or_script_named_mp3_gets_the_supported_formats_and_opens_nothing(
    running: World, tmp_path: Path, make: Any
) -> None:
    # The classic attack: a "voice.mp3" that names a file on the bot's machine. ffmpeg sniffs content, not names.
    before = balance(running)
    with FifoTrap(tmp_path / "recording.mp4") as trap:
        refused = await run_clone(running, "voice.mp3", make(trap.path))
    assert_refused_for_free(running, refused, before, "not audio in a supported format", SUPPORTED)
    assert not trap.opened


async def test_an_image_gets_the_supported_formats(running: World, tmp_path: Path) -> None:
    image = _ffmpeg(tmp_path, "photo.png", "-f", "lavfi", "-i", "color=c=blue:s=64x64:d=0.1", "-frames:v", "1")
    before = balance(running)
    refused = await run_clone(running, "photo.png", image, content_type="image/png")
    assert_refused_for_free(running, refused, before, SUPPORTED)


async def test_a_file_without_an_audio_track_is_refused(running: World, tmp_path: Path) -> None:
    subtitles = tmp_path / "words.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:40,000\nHello there.\n")
    only_text = _ffmpeg(tmp_path, "words.mkv", "-i", str(subtitles), "-c:s", "srt")
    before = balance(running)
    refused = await run_clone(running, "words.mkv", only_text, content_type="video/x-matroska")
    assert_refused_for_free(running, refused, before, "no audio track")


async def test_a_two_hour_recording_is_refused_at_once_with_its_length(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real 2-hour recording (8 kbps): its length is known from ffprobe, so nothing of it is decoded.
    recording = long_mp3(2 * 3600)
    declared = (await probe(recording)).duration
    assert declared is not None and declared > 7000
    spy = ProcessSpy(monkeypatch)
    before = balance(running)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    refused = await run_clone(running, "meeting.mp3", recording)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert_refused_for_free(running, refused, before, f"{declared:.1f} s", "at most 80 s")
    assert spy.programs == ["ffprobe"]
    # CPU time, not wall time, so a busy machine does not matter: decoding 2 hours would take seconds.
    used = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    assert used < 1.0


async def test_a_recording_that_declares_no_length_is_decoded_only_up_to_81_seconds(
    running: World, tmp_path: Path
) -> None:
    # Written to a pipe, the webm muxer records no duration: only decoding can tell its length.
    streamed = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=95"),
            *("-c:a", "libopus", "-b:a", "16k", "-f", "webm", "pipe:1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert (await probe(streamed)).duration is None
    before = balance(running)
    refused = await run_clone(running, "long.webm", streamed, content_type="audio/webm")
    assert_refused_for_free(running, refused, before, "longer than 81 s", "at most 80 s")


# The outside review's file: 119,999,999 bytes, nearly all one ID3 tag of control bytes, around real audio.
REVIEW_FILE_BYTES = 119_999_999
MEMORY_GROWTH_LIMIT = 50_000_000
STALL_LIMIT_SECONDS = 0.050


async def test_a_119_mb_metadata_tag_is_refused_for_its_length_without_memory_or_stalls(running: World) -> None:
    # Before: ffprobe printed the tag as 720 MB of JSON, read whole and parsed on the event loop (about 2 GB).
    data = tagged_mp3(tone_mp3(20), REVIEW_FILE_BYTES)
    before = balance(running)
    with PeakMemory() as memory:
        async with LoopStalls() as stalls:
            refused = await run_clone(running, "tagged.mp3", data, timeout=90)
    assert_refused_for_free(running, refused, before, "20.0 s", "at least 30 s")
    assert memory.growth <= MEMORY_GROWTH_LIMIT, f"{memory.growth / 1e6:.0f} MB more"
    assert stalls.longest <= STALL_LIMIT_SECONDS, f"the event loop stalled for {stalls.longest * 1000:.0f} ms"


async def test_an_accepted_119_mb_recording_is_streamed_to_unmixr_without_holding_it(running: World) -> None:
    # 80 s of audio behind the tag pass every check: the whole file is uploaded, a block at a time from disk.
    data = tagged_mp3(tone_mp3(80), REVIEW_FILE_BYTES)
    uploads = TagSkippingUploads(running.unmixr)
    with PeakMemory() as memory:
        async with LoopStalls() as stalls:
            cloned = await run_clone(running, "tagged.mp3", data, timeout=90)
    assert "Cloned **Narrator Nell** from 80.0 s" in cloned.content(), cloned.content()
    assert uploads.files == [(REVIEW_FILE_BYTES, hashlib.sha256(data).hexdigest())]
    assert memory.growth <= MEMORY_GROWTH_LIMIT, f"{memory.growth / 1e6:.0f} MB more"
    assert stalls.longest <= STALL_LIMIT_SECONDS, f"the event loop stalled for {stalls.longest * 1000:.0f} ms"


async def test_one_servers_slow_upload_keeps_no_other_server_waiting(world: World, media: dict[str, bytes]) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    elsewhere_text = elsewhere.add_text_channel("general")
    elsewhere_admin = elsewhere.add_member("Eve Elsewhere", permissions=ADMIN_PERMISSIONS)
    await world.start_bot()
    held = world.discord.cdn_holds["slow.mp3"] = asyncio.Event()
    slow = await world.slash(
        "clone",
        {"name": "Slow Sam", "consent": True},
        member=world.admin,
        attachments={"audio": ("slow.mp3", media["speech40.mp3"] * 40, "audio/mpeg")},
    )
    try:
        # The first server's file is still arriving; the other server's /clone is checked and made meanwhile.
        quick = await world.discord.slash(
            elsewhere,
            elsewhere_text,
            elsewhere_admin,
            "clone",
            {"name": "Quick Quinn", "consent": True},
            attachments={"audio": ("quick.mp3", media["speech40.mp3"], "audio/mpeg")},
        )
        await quick.wait_final(timeout=20)
        assert "Cloned **Quick Quinn**" in quick.content(), quick.content()
        assert [request.form["name"] for request in clone_requests(world)] == ["Quick Quinn"]
    finally:
        held.set()
    await slow.wait_final(timeout=20)
    assert "at most 80 s" in slow.content(), slow.content()
