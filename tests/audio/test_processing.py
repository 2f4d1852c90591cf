"""Tests for bot.audio.processing against real ffmpeg, on clips generated with lavfi."""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import tempfile
import wave
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.audio import ffmpeg
from bot.audio.ffmpeg import LANE_SLOTS, Lane
from bot.audio.processing import (
    PCM_BYTES_PER_SECOND,
    AudioError,
    FFmpegMissingError,
    concat,
    duration,
    extract_audio,
    ffmpeg_available,
    ffprobe_available,
    probe,
    to_pcm,
    transcode_to_fit,
)


@dataclass(frozen=True)
class Media:
    mp3_1s: bytes
    mp3_2s: bytes
    mp3_3s: bytes
    mp3_2s_22khz: bytes
    silence_mp3_1s: bytes
    wav_1s: bytes
    wav_2s: bytes
    wav_3s: bytes
    wav_2s_16khz: bytes
    mp3_40s_low: bytes
    mp3_60s_128k: bytes
    mp4_with_audio: bytes
    mp4_video_only: bytes
    webm_without_duration: bytes
    mp3_with_cover: bytes


def _ffmpeg(*arguments: str) -> bytes:
    completed = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *arguments],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return completed.stdout


def _sine(seconds: float, *, frequency: int = 440, rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("media")

    def made(name: str, *arguments: str) -> bytes:
        path = folder / name
        _ffmpeg(*arguments, str(path))
        return path.read_bytes()

    def mp3(seconds: float, *, rate: int = 44100, bitrate: str = "64k", frequency: int = 440) -> list[str]:
        return [*_sine(seconds, frequency=frequency, rate=rate), "-ac", "1", "-c:a", "libmp3lame", "-b:a", bitrate]

    def wav(seconds: float, *, rate: int = 22050, frequency: int = 440) -> list[str]:
        return [*_sine(seconds, frequency=frequency, rate=rate), "-ac", "1", "-c:a", "pcm_s16le"]

    cover = folder / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:d=0.1", "-frames:v", "1", str(cover))
    testsrc = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2"]
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    return Media(
        mp3_1s=made("a1.mp3", *mp3(1, frequency=300)),
        mp3_2s=made("a2.mp3", *mp3(2, frequency=500)),
        mp3_3s=made("a3.mp3", *mp3(3, frequency=700)),
        mp3_2s_22khz=made("a2-22k.mp3", *mp3(2, rate=22050, bitrate="32k")),
        silence_mp3_1s=made(
            "silence.mp3",
            *["-f", "lavfi", "-i", "anullsrc=sample_rate=44100:channel_layout=mono", "-t", "1"],
            *["-c:a", "libmp3lame", "-b:a", "64k"],
        ),
        wav_1s=made("w1.wav", *wav(1, frequency=300)),
        wav_2s=made("w2.wav", *wav(2, frequency=500)),
        wav_3s=made("w3.wav", *wav(3, frequency=700)),
        wav_2s_16khz=made("w2-16k.wav", *wav(2, rate=16000)),
        mp3_40s_low=made("long.mp3", *mp3(40, bitrate="32k")),
        mp3_60s_128k=made("long128.mp3", *mp3(60, bitrate="128k")),
        mp4_with_audio=made("clip.mp4", *testsrc, *_sine(2), *h264, "-c:a", "aac", "-b:a", "64k", "-shortest"),
        mp4_video_only=made("silent.mp4", *testsrc, *h264),
        # Written to a pipe, the webm muxer cannot go back to record the duration.
        webm_without_duration=_ffmpeg(*_sine(3), "-c:a", "libopus", "-f", "webm", "pipe:1"),
        mp3_with_cover=made(
            "cover.mp3",
            *_sine(2),
            *["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy"],
            *["-disposition:v", "attached_pic", "-c:a", "libmp3lame", "-id3v2_version", "3"],
        ),
    )


def _children() -> list[str]:
    """Names of this process's live child processes, from /proc."""
    names = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == os.getpid():
            names.append(name)
    return names


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test with its own temporary folder, and check that no file nor ffmpeg process outlives it."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert list(scratch.iterdir()) == []
    assert not {"ffmpeg", "ffprobe"} & set(_children())


def _rms(pcm: bytes, start: float, end: float) -> float:
    samples = array("h")
    samples.frombytes(pcm[int(start * PCM_BYTES_PER_SECOND) // 4 * 4 : int(end * PCM_BYTES_PER_SECOND) // 4 * 4])
    return (sum(sample * sample for sample in samples) / max(len(samples), 1)) ** 0.5


def _wav_frames(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as reader:
        return reader.readframes(reader.getnframes())


# probe


async def test_probe_describes_an_mp3(media: Media) -> None:
    result = await probe(media.mp3_2s)
    assert result.has_audio
    assert not result.has_video
    assert result.audio_codec == "mp3"
    assert result.format_name == "mp3"
    assert result.duration == pytest.approx(2.0, abs=0.1)


async def test_probe_describes_a_video_with_sound(media: Media) -> None:
    result = await probe(media.mp4_with_audio)
    assert result.has_audio
    assert result.has_video
    assert result.audio_codec == "aac"
    assert "mp4" in (result.format_name or "")
    assert result.duration == pytest.approx(2.0, abs=0.1)


async def test_probe_does_not_count_cover_art_as_video(media: Media) -> None:
    result = await probe(media.mp3_with_cover)
    assert result.has_audio
    assert not result.has_video


async def test_probe_reports_no_duration_for_a_container_without_one(media: Media) -> None:
    # probe reads headers only; decoding (bounded by its caller) is duration()'s job.
    result = await probe(media.webm_without_duration)
    assert result.has_audio
    assert result.audio_codec == "opus"
    assert result.duration is None
    assert await duration(media.webm_without_duration) == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    "data",
    [
        random.Random(1234).randbytes(20_000),
        b"",
        b"Hello there,\nthis is only a text file and not audio at all.\n" * 20,
    ],
    ids=["random bytes", "empty", "text"],
)
async def test_probe_reports_non_media_as_having_no_audio(data: bytes) -> None:
    result = await probe(data)
    assert not result.has_audio
    assert not result.has_video
    assert result.duration is None
    assert result.audio_codec is None


# duration


async def test_duration_is_measured_by_decoding(media: Media) -> None:
    assert await duration(media.mp3_3s) == pytest.approx(3.0, abs=0.05)
    assert await duration(media.wav_2s) == pytest.approx(2.0, abs=0.01)
    assert await duration(media.mp4_with_audio) == pytest.approx(2.0, abs=0.05)


async def test_duration_does_not_trust_the_header_of_a_cut_mp3(media: Media) -> None:
    cut = media.mp3_40s_low[: len(media.mp3_40s_low) // 4]
    header_says = (await probe(cut)).duration
    assert header_says == pytest.approx(40.0, abs=0.2)
    assert await duration(cut) == pytest.approx(10.0, abs=0.5)


async def test_duration_refuses_what_has_no_audio(media: Media) -> None:
    with pytest.raises(AudioError, match="could not be decoded"):
        await duration(b"not audio at all, just some words")
    with pytest.raises(AudioError, match="no audio track"):
        await duration(media.mp4_video_only)


# extract_audio


async def test_extract_audio_takes_the_sound_of_a_video(media: Media) -> None:
    audio = await extract_audio(media.mp4_with_audio)
    result = await probe(audio)
    assert result.has_audio
    assert not result.has_video
    assert result.audio_codec == "mp3"
    assert await duration(audio) == pytest.approx(2.0, abs=0.1)


async def test_extract_audio_can_write_wav(media: Media) -> None:
    audio = await extract_audio(media.mp3_with_cover, output_format="wav")
    with wave.open(io.BytesIO(audio), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getnframes() / reader.getframerate() == pytest.approx(2.0, abs=0.1)


async def test_extract_audio_refuses_a_video_without_sound(media: Media) -> None:
    with pytest.raises(AudioError, match="no audio track"):
        await extract_audio(media.mp4_video_only)


async def test_extract_audio_refuses_non_media() -> None:
    with pytest.raises(AudioError, match="could not be decoded"):
        await extract_audio(random.Random(5).randbytes(4096))


# concat


async def test_concat_of_mp3_clips_lasts_their_sum(media: Media) -> None:
    joined = await concat([media.mp3_1s, media.mp3_2s, media.mp3_3s], "mp3")
    result = await probe(joined)
    assert result.audio_codec == "mp3"
    assert result.duration == pytest.approx(6.0, abs=0.15)
    assert await duration(joined) == pytest.approx(6.0, abs=0.1)


async def test_concat_of_mp3_clips_keeps_their_order(media: Media) -> None:
    joined = await concat([media.silence_mp3_1s, media.mp3_2s, media.silence_mp3_1s], "mp3")
    pcm = await to_pcm(joined)
    assert _rms(pcm, 0.1, 0.9) < 100
    assert _rms(pcm, 1.2, 2.8) > 1000
    assert _rms(pcm, 3.2, 3.9) < 100


async def test_concat_of_mp3_clips_with_different_sample_rates_is_reencoded(media: Media) -> None:
    joined = await concat([media.mp3_2s_22khz, media.mp3_1s, media.mp3_2s_22khz], "mp3")
    assert (await probe(joined)).audio_codec == "mp3"
    assert await duration(joined) == pytest.approx(5.0, abs=0.1)


async def test_concat_of_wav_clips_joins_their_samples_in_order(media: Media) -> None:
    parts = [media.wav_1s, media.wav_2s, media.wav_3s]
    joined = await concat(parts, "wav")
    assert _wav_frames(joined) == b"".join(_wav_frames(part) for part in parts)
    assert await duration(joined) == pytest.approx(6.0, abs=0.01)


async def test_concat_of_wav_clips_with_different_layouts_goes_through_ffmpeg(media: Media) -> None:
    joined = await concat([media.wav_1s, media.wav_2s_16khz, media.wav_3s], "wav")
    assert (await probe(joined)).audio_codec == "pcm_s16le"
    assert await duration(joined) == pytest.approx(6.0, abs=0.1)


async def test_concat_converts_parts_to_the_requested_format(media: Media) -> None:
    joined = await concat([media.wav_1s, media.mp3_2s], "mp3")
    assert (await probe(joined)).audio_codec == "mp3"
    assert await duration(joined) == pytest.approx(3.0, abs=0.1)


async def test_concat_of_one_part_returns_it_unchanged(media: Media) -> None:
    assert await concat([media.mp3_1s], "mp3") is media.mp3_1s


async def test_concat_refuses_no_parts_and_unknown_formats(media: Media) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await concat([], "mp3")
    with pytest.raises(ValueError, match="unsupported"):
        await concat([media.mp3_1s, media.mp3_2s], "ogg")  # type: ignore[arg-type]


async def test_concat_of_undecodable_parts_raises_audio_error(media: Media) -> None:
    with pytest.raises(AudioError, match="could not be decoded"):
        await concat([media.mp3_1s, b"garbage that is not audio"], "mp3")


# transcode_to_fit


async def test_transcode_to_fit_brings_a_long_mp3_under_the_limit(media: Media) -> None:
    limit = 300_000
    assert len(media.mp3_60s_128k) > 3 * limit
    smaller = await transcode_to_fit(media.mp3_60s_128k, limit)
    assert len(smaller) <= limit
    assert (await probe(smaller)).audio_codec == "mp3"
    assert await duration(smaller) == pytest.approx(60.0, abs=0.2)


async def test_transcode_to_fit_reaches_down_to_the_floor(media: Media) -> None:
    smaller = await transcode_to_fit(media.mp3_60s_128k, 70_000, duration=60.0)
    assert len(smaller) <= 70_000
    assert await duration(smaller) == pytest.approx(60.0, abs=0.2)


async def test_transcode_to_fit_refuses_what_even_the_floor_cannot_fit(media: Media) -> None:
    with pytest.raises(AudioError, match="lowest quality"):
        await transcode_to_fit(media.mp3_60s_128k, 40_000)


async def test_transcode_to_fit_leaves_audio_that_already_fits(media: Media) -> None:
    assert await transcode_to_fit(media.mp3_1s, len(media.mp3_1s)) is media.mp3_1s


# to_pcm


@pytest.mark.parametrize("name", ["mp3_2s", "wav_3s", "mp4_with_audio", "webm_without_duration"])
async def test_to_pcm_gives_48khz_stereo_16bit_samples(media: Media, name: str) -> None:
    data = getattr(media, name)
    pcm = await to_pcm(data)
    assert len(pcm) % 4 == 0
    assert len(pcm) == pytest.approx(await duration(data) * 48_000 * 4, rel=0.01)


async def test_to_pcm_refuses_non_media() -> None:
    with pytest.raises(AudioError):
        await to_pcm(b"\x00\x01\x02 definitely not audio")


# processes: missing programs, deadlines, cancellation, the event loop


async def test_missing_ffmpeg_raises_its_own_error(
    media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not ffmpeg_available()
    assert not ffprobe_available()
    with pytest.raises(FFmpegMissingError, match="not installed"):
        await probe(media.mp3_1s)
    with pytest.raises(FFmpegMissingError):
        await to_pcm(media.mp3_1s)


async def test_ffmpeg_and_ffprobe_are_found() -> None:
    assert ffmpeg_available()
    assert ffprobe_available()


# Real time for 30 s: long enough to outlive every deadline below, short enough to end if a test fails.
_ENDLESS = ["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"]


async def test_a_process_past_its_deadline_is_killed() -> None:
    with pytest.raises(AudioError, match="took longer than"):
        await ffmpeg._spawn("ffmpeg", _ENDLESS, lane=Lane.REPLIES, limit=0.3)
    # The autouse fixture checks that no ffmpeg process is left.


async def test_a_cancelled_call_kills_its_process() -> None:
    task = asyncio.create_task(ffmpeg._spawn("ffmpeg", _ENDLESS, lane=Lane.REPLIES, limit=60))
    while "ffmpeg" not in _children():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "ffmpeg" not in _children()


async def test_a_cancelled_conversion_removes_its_files(media: Media, no_leftovers: Path) -> None:
    task = asyncio.create_task(concat([media.mp3_40s_low, media.mp3_2s_22khz], "mp3"))
    while not any(no_leftovers.iterdir()):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The autouse fixture checks that the folder is empty again and no process is left.


async def test_a_call_cancelled_while_its_inputs_are_written_leaves_no_file(media: Media, no_leftovers: Path) -> None:
    # Hundreds of parts take a thread a while to write; the call is cancelled as soon as its folder exists, so
    # the writing is still under way. It must be over before the folder is removed, or what it writes stays.
    parts = [media.mp3_1s] * 400
    for _ in range(5):
        task = asyncio.create_task(concat(parts, "mp3"))
        while not any(no_leftovers.iterdir()):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert list(no_leftovers.iterdir()) == []


async def test_concurrent_processes_are_bounded(media: Media, monkeypatch: pytest.MonkeyPatch) -> None:
    running = 0
    most = 0
    real_exec = asyncio.create_subprocess_exec

    async def counting_exec(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        nonlocal running, most
        process = await real_exec(*args, **kwargs)
        running += 1
        most = max(most, running)
        real_wait = process.wait
        counted = True

        async def wait() -> int:
            nonlocal running, counted
            try:
                return await real_wait()
            finally:
                if counted:
                    running, counted = running - 1, False

        process.wait = wait  # type: ignore[method-assign]
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", counting_exec)
    results = await asyncio.gather(*(probe(media.mp3_1s) for _ in range(3 * LANE_SLOTS[Lane.REPLIES])))
    assert all(result.has_audio for result in results)
    assert 2 <= most <= LANE_SLOTS[Lane.REPLIES]


async def test_joining_does_not_block_the_event_loop(media: Media) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        long_parts = [media.mp3_40s_low] * 3
        # Mixed sample rates force a full decode and re-encode: the heaviest path.
        mixed_parts = [media.mp3_40s_low, media.mp3_2s_22khz, media.mp3_40s_low]
        copied, reencoded = await asyncio.gather(concat(long_parts, "mp3"), concat(mixed_parts, "mp3"))
    finally:
        ticking.cancel()
    assert await duration(copied) == pytest.approx(120.0, abs=0.2)
    assert await duration(reencoded) == pytest.approx(82.0, abs=0.2)
    # Re-encoding 82 s of audio keeps ffmpeg busy for a good fraction of a second; a blocked loop
    # would tick a handful of times at most.
    assert ticks >= 10
