"""Voice audio as Opus: encoded once by ffmpeg, played by discord.py as it is, cached for replays."""

from __future__ import annotations

import asyncio
import io
import math
import os
import subprocess
from pathlib import Path

import discord
import pytest
from discord.oggparse import OggStream

from bot.audio import opus
from bot.audio.cache import AudioCache
from bot.audio.sources import OpusSource
from tests.fakes.discord_voice import SILENCE_FRAME
from tests.fakes.test_discord_voice import TONE_HERTZ, VoiceWorld, voice_world, wait_for, zero_crossings

__all__ = ["voice_world"]  # the fixture, shared with the voice stand-in's tests

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
# libopus's look-ahead, which ffmpeg's encoder puts before the audio (RFC 7845 pre-skip).
PRE_SKIP_SAMPLES = 312


def tone(seconds: float, *, extension: str = "wav", rate: int = SAMPLE_RATE) -> bytes:
    """A sine tone of exactly `seconds`, in a format ffmpeg writes to a pipe."""
    return subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"sine=frequency={TONE_HERTZ}:duration={seconds}:sample_rate={rate}",
            "-ac", "1", "-f", extension, "pipe:1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout  # fmt: skip


def ogg_audio_packets(data: bytes) -> list[bytes]:
    """The audio packets of an Ogg Opus file, read independently of the code under test."""
    packets = list(OggStream(io.BytesIO(data)).iter_packets())
    assert packets[0].startswith(b"OpusHead") and packets[1].startswith(b"OpusTags")
    return packets[2:]


def ffmpeg_children() -> list[int]:
    """The ffmpeg processes this test process started that are still alive (or not yet waited for)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Name", "").strip() == "ffmpeg" and fields.get("PPid", "").strip() == str(os.getpid()):
            found.append(int(entry.name))
    return found


async def finished(encoding: opus.OpusEncoding) -> opus.OpusEncoding:
    await wait_for(lambda: encoding.complete, timeout=30.0)
    return encoding


async def test_an_encoding_holds_one_20_ms_packet_per_frame_of_audio() -> None:
    encoding = await finished(await opus.encode(tone(1.0)))

    assert encoding.error is None
    packets = list(encoding.packets())
    # The headers are not audio and are never sent; the look-ahead adds part of a frame at the start.
    assert packets == ogg_audio_packets(encoding.data())
    assert len(packets) == math.ceil((SAMPLE_RATE + PRE_SKIP_SAMPLES) / FRAME_SAMPLES)
    decoder = discord.opus.Decoder()
    pcm = b"".join(decoder.decode(packet, fec=False) for packet in packets)
    assert len(pcm) == len(packets) * FRAME_SAMPLES * 2 * 2
    assert zero_crossings(pcm) == pytest.approx(2 * TONE_HERTZ, rel=0.05)


async def test_mp3_at_another_rate_is_encoded_at_the_same_pace() -> None:
    encoding = await finished(await opus.encode(tone(2.0, extension="mp3", rate=24_000)))

    assert encoding.error is None
    # An mp3 carries the encoder's padding too: a frame or two more, never fewer.
    assert 100 <= len(list(encoding.packets())) <= 104


async def test_playback_starts_before_the_encoder_finishes() -> None:
    encoding = await opus.encode(tone(120.0))

    # The first page of audio is enough to start; two minutes of audio take the encoder much longer.
    assert not encoding.complete
    assert encoding.data().count(b"OggS") >= 3
    await finished(encoding)
    assert len(list(encoding.packets())) == math.ceil((120 * SAMPLE_RATE + PRE_SKIP_SAMPLES) / FRAME_SAMPLES)


async def test_a_reader_waits_for_pages_that_have_not_arrived() -> None:
    whole = await finished(await opus.encode(tone(1.0)))
    data = whole.data()
    expected = list(whole.packets())
    growing = opus.OpusEncoding()
    read: list[bytes] = []
    reading = asyncio.create_task(asyncio.to_thread(lambda: read.extend(growing.packets())))

    half = len(data) // 2
    growing._append(data[:half])
    await growing.wait_audio()
    assert growing.has_audio
    await wait_for(lambda: len(read) > 0)
    # The thread has read what the first half holds and waits for the rest.
    assert not reading.done()
    assert len(read) < len(expected)
    growing._append(data[half:])
    growing._finish(None)
    await reading
    assert read == expected


async def test_a_replay_is_served_from_the_cache_without_an_encoder(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=10_000_000)
    audio = tone(1.0)
    first = await finished(await opus.encode(audio, cache))
    await cache.flush()
    started = opus.encodings_started()

    replay = await opus.encode(audio, cache)

    assert replay.complete
    assert opus.encodings_started() == started
    assert list(replay.packets()) == list(first.packets())
    # Other audio is encoded again.
    await finished(await opus.encode(tone(0.5), cache))
    assert opus.encodings_started() == started + 1


async def test_audio_ffmpeg_cannot_read_ends_with_an_error_and_no_packets(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=10_000_000)
    encoding = await finished(await opus.encode(b"this is not audio at all" * 100, cache))

    assert encoding.error
    assert not encoding.has_audio
    assert list(encoding.packets()) == []
    await cache.flush()
    assert len(cache) == 0


async def test_audio_in_a_container_off_the_whitelist_is_not_read() -> None:
    # Sun AU is audio ffmpeg decodes from a pipe, but not a container audio comes in here.
    encoding = await finished(await opus.encode(tone(1.0, extension="au")))

    assert encoding.error
    assert list(encoding.packets()) == []


async def test_discord_py_sends_every_packet_as_it_is_then_five_silence_frames(voice_world: VoiceWorld) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)
    encoding = await opus.encode(tone(1.5))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Exception | None] = loop.create_future()
    source = OpusSource(encoding)

    voice_client.play(source, after=lambda error: loop.call_soon_threadsafe(done.set_result, error))

    assert await asyncio.wait_for(done, 10.0) is None
    await wait_for(lambda: sum(packet.is_silence for packet in session.packets) == 5)
    sent = [packet.opus for packet in session.packets]
    assert sent == [*ogg_audio_packets(encoding.data()), *[SILENCE_FRAME] * 5]
    assert [clip.frames for clip in session.clips(gap=0.5)] == [len(sent) - 5]
    # The source was cleaned up after playing, and the encoder has been waited for.
    assert source.read() == b""
    await wait_for(lambda: not ffmpeg_children(), timeout=10.0)


async def test_stopping_mid_clip_ends_playback_at_once_and_leaves_no_process(voice_world: VoiceWorld) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)
    encoding = await opus.encode(tone(30.0))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Exception | None] = loop.create_future()
    voice_client.play(OpusSource(encoding), after=lambda error: loop.call_soon_threadsafe(done.set_result, error))
    await wait_for(lambda: len(session.packets) >= 10)

    voice_client.stop()

    assert await asyncio.wait_for(done, 2.0) is None
    await wait_for(lambda: encoding.complete, timeout=30.0)
    await wait_for(lambda: not ffmpeg_children(), timeout=10.0)
    audio = [packet for packet in session.packets if not packet.is_silence]
    assert len(audio) < 30 * 50 / 2
