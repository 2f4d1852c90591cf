"""A voice message's audio: Ogg Opus as Discord's clients make it, its duration, its waveform, its cache entry."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import struct
from pathlib import Path

import pytest

from bot.audio import AudioError
from bot.audio.voice_message import WAVEFORM_POINTS, VoiceMessageAudio, encode, pack, unpack, waveform


async def ffmpeg_audio(filter_graph: str, seconds: float) -> bytes:
    """An mp3 made by ffmpeg from a lavfi source (the test's own input, not a member's file)."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", filter_graph, "-t", str(seconds),
        "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await process.communicate()
    assert process.returncode == 0, errors.decode(errors="replace")
    return output


async def probe(data: bytes, tmp_path: Path) -> dict[str, str]:
    """What ffprobe reads in the file (from disk: an Ogg file's length is found at its end)."""
    path = tmp_path / "probed.ogg"
    path.write_bytes(data)
    process = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries",
        "format=format_name,duration:stream=codec_name,channels,sample_rate", "-of", "json", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate()
    report = json.loads(output)
    return {**report["format"], **report["streams"][0]}


async def test_the_audio_is_mono_48_khz_opus_in_ogg_like_discords_clients_send(tmp_path: Path) -> None:
    mp3 = await ffmpeg_audio("sine=frequency=440:sample_rate=44100", 3.0)
    message = await encode(mp3)
    found = await probe(message.ogg, tmp_path)
    assert found["format_name"] == "ogg" and found["codec_name"] == "opus"
    assert (found["channels"], found["sample_rate"]) == (1, "48000")
    assert message.duration == pytest.approx(3.0, abs=0.05)
    assert float(found["duration"]) == pytest.approx(message.duration, abs=0.05)
    # 32 kb/s: several times smaller than the 128 kb/s mp3 it came from.
    assert len(message.ogg) * 3 < len(mp3)


async def test_the_waveform_follows_the_loudness_one_point_per_100_ms() -> None:
    # One second quiet (a tenth of the amplitude), then two seconds loud.
    mp3 = await ffmpeg_audio("sine=frequency=300,volume='if(lt(t,1),0.1,1)':eval=frame", 3.0)
    message = await encode(mp3)
    points = list(message.waveform)
    assert len(points) == 30
    assert max(points) == 255
    assert all(point < 40 for point in points[1:9]), points
    assert all(point > 200 for point in points[11:29]), points
    assert base64.b64decode(message.waveform_base64, validate=True) == message.waveform


def test_a_long_clip_is_downsampled_to_256_points_and_silence_is_zero() -> None:
    rate = 8_000
    seconds = 60
    # A slow ramp of loudness over a minute: the points rise with it.
    pcm = b"".join(
        struct.pack("<h", int(32_000 * (index / (rate * seconds)) * math.sin(index / 3)))
        for index in range(rate * seconds)
    )
    points = waveform(pcm, rate)
    assert len(points) == WAVEFORM_POINTS
    assert points[-1] == 255 and points[0] < 5
    assert sum(earlier > later + 2 for earlier, later in itertools.pairwise(points)) == 0, "louder as it goes"
    assert waveform(bytes(2 * rate * 2), rate) == bytes(20)  # two seconds of 16-bit silence: 20 flat points
    assert waveform(b"", rate) == b"\x00"


def test_the_cache_entry_keeps_all_three_and_refuses_anything_else() -> None:
    message = VoiceMessageAudio(ogg=b"OggS" + bytes(50), duration=2.5, waveform=bytes([0, 128, 255]))
    assert unpack(pack(message), 2.5) == message
    assert unpack(pack(message), None) is None
    assert unpack(b"ID3 an mp3 that is not a voice message", 2.5) is None
    assert unpack(pack(message)[: -len(message.ogg)], 2.5) is None  # no Ogg file after the waveform


async def test_audio_that_does_not_decode_is_an_audio_error() -> None:
    with pytest.raises(AudioError):
        await encode(b"this is not audio at all")
