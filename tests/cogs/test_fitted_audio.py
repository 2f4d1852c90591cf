"""Audio over the upload limit: fitted once and cached, and the ffmpeg lanes shared fairly between servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import FakeInteraction, FakeMember
from tests.fakes.prose import prose

# A 6,000-character wav from the stand-in is 400 s of 24 kHz 16-bit mono: 19.2 MB, over any upload limit here.
LONG_WAV = 6_000
UPLOAD_LIMIT = 2 * 1024 * 1024
# Requests of one server that need a transcode at once, more than the replies lane's four slots, each of 200 s.
BUSY = 6
BUSY_WAV = 3_000


class Spawned:
    """Every program the bot starts, with its arguments, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        real_exec = asyncio.create_subprocess_exec

        async def spying_exec(program: str, *arguments: str, **kwargs: Any) -> asyncio.subprocess.Process:
            self.calls.append([program, *arguments])
            return await real_exec(program, *arguments, **kwargs)

        monkeypatch.setattr(asyncio, "create_subprocess_exec", spying_exec)

    def _bots(self) -> list[tuple[int, list[str]]]:
        # The bot's calls pass its door's format whitelist; the Unmixr stand-in's own ffmpeg (making tones) does not.
        return [(index, call) for index, call in enumerate(self.calls) if "-format_whitelist" in call]

    def transcodes(self) -> list[int]:
        """Positions of the bot's transcodes to a smaller mp3 (its only calls that pick an mp3 bitrate)."""
        return [index for index, call in self._bots() if "libmp3lame" in call and "-b:a" in call]

    def joins(self) -> list[int]:
        """Positions of the bot's joins of several chunks (the concat demuxer)."""
        return [index for index, call in self._bots() if "concat" in call]


async def long_wav(world: World, member: FakeMember, text: str) -> FakeInteraction:
    """A /say of `text` as wav, in the world's server, with an upload limit the wav is over."""
    return await world.discord.slash(
        world.guild, world.text, member, "say", {"text": text, "format": "wav"}, attachment_size_limit=UPLOAD_LIMIT
    )


def fitted_reply(interaction: FakeInteraction) -> bytes:
    """The one mp3 of a reply fitted to the upload limit."""
    assert "smaller mp3" in interaction.content(), interaction.content()
    [(name, audio)] = interaction.files()
    assert name.endswith(".mp3") and len(audio) <= UPLOAD_LIMIT
    return audio


async def test_a_repeat_of_audio_over_the_upload_limit_transcodes_nothing(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned = Spawned(monkeypatch)
    text = prose(LONG_WAV, salt=1)
    first = await long_wav(running, running.member, text)
    await first.wait_final(timeout=60)
    fitted = fitted_reply(first)
    assert len(spawned.transcodes()) >= 1
    spawned.calls.clear()
    tts_before = len(running.tts_requests())

    again = await long_wav(running, running.other, text)
    await again.wait_final(timeout=60)
    assert fitted_reply(again) == fitted
    assert "from cache" in again.content()
    assert spawned.calls == [], "a repeat runs no ffmpeg at all"
    assert len(running.tts_requests()) == tts_before


async def test_repeats_at_once_share_one_transcode(running: World, monkeypatch: pytest.MonkeyPatch) -> None:
    text = prose(LONG_WAV, salt=2)
    # The wav is synthesised once where it fits as it is (and is cached); then eight members of a server with a
    # smaller upload limit repeat it at the same moment.
    first = await running.discord.slash(
        running.guild,
        running.text,
        running.member,
        "say",
        {"text": text, "format": "wav"},
        attachment_size_limit=25 * 1024 * 1024,
    )
    await first.wait_final(timeout=60)
    [(name, _)] = first.files()
    assert name.endswith(".wav")
    spawned = Spawned(monkeypatch)
    members = [running.guild.add_member(f"Repeater {n}", permissions=MEMBER_PERMISSIONS) for n in range(8)]
    repeats = [await long_wav(running, member, text) for member in members]
    for repeat in repeats:
        await repeat.wait_final(timeout=60)
    assert len({fitted_reply(repeat) for repeat in repeats}) == 1
    # One transcode (a second one if the first bitrate came out a little too large), not one per member.
    assert 1 <= len(spawned.transcodes()) <= 2, spawned.calls


async def test_a_freed_ffmpeg_slot_goes_to_a_server_that_holds_none(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    channel = elsewhere.add_text_channel("general")
    neighbour = elsewhere.add_member("Nia Neighbour", permissions=MEMBER_PERMISSIONS)
    members = [world.guild.add_member(f"Busy {n}", permissions=MEMBER_PERMISSIONS) for n in range(BUSY)]
    await world.start_bot()
    # The other server's voice was heard at this length before, so the Unmixr stand-in has its tone ready (it
    # makes tones with ffmpeg, which would compete with the bot's transcodes for the cores).
    warm = await world.discord.slash(elsewhere, channel, neighbour, "say", {"text": prose(3_000, salt=98)})
    await warm.wait_final(timeout=30)
    spawned = Spawned(monkeypatch)
    # Six different long wavs in one server: six transcodes for a replies lane of four slots.
    busy = [await long_wav(world, member, prose(BUSY_WAV, salt=10 + n)) for n, member in enumerate(members)]
    while len(spawned.transcodes()) < 4:
        await asyncio.sleep(0.01)
    # Every busy request has its audio and waits for a slot by now (a transcode takes a second or more).
    await world.discord.wait_until(lambda: all(r.finished_at for r in world.tts_requests()), timeout=30, what="tts")
    await asyncio.sleep(0.2)
    waiting_transcodes = len(spawned.transcodes())
    # The other server's 3,000-character /say: two mp3 chunks joined by ffmpeg, in the same lane.
    other = await world.discord.slash(elsewhere, channel, neighbour, "say", {"text": prose(3_000, salt=99)})
    await other.wait_final(timeout=60)
    [join] = spawned.joins()
    transcodes_before_join = sum(1 for index in spawned.transcodes() if index < join)
    # It took the first slot freed, before any of the transcodes still waiting.
    assert transcodes_before_join <= waiting_transcodes, (transcodes_before_join, waiting_transcodes)
    assert transcodes_before_join < BUSY
    for interaction in busy:
        await interaction.wait_final(timeout=120)
        fitted_reply(interaction)
