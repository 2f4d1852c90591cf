"""Target: a readout's first audio packet reaches the voice server within 300 ms after the stand-in returns the audio.

An admin sets the readout channel, a member joins the voice channel and runs /join, then posts READOUTS
short messages there, each after the previous clip has finished playing (so no clip waits behind
another). For each, the time from the Unmixr stand-in finishing the audio download (the last upstream
request of that readout; the /short-tts/ request finished before it) to the voice stand-in receiving
the clip's first decrypted Opus packet. The first readout comes right after the join. Run:
python -m bench.readout
"""

from __future__ import annotations

import asyncio
import time

from bench.common import DOWNLOAD, TTS, Report, answered, describe_ms, percentile, stack
from tests.fakes.discord_server import ChannelOption
from tests.fakes.discord_voice import VoiceSession

READOUTS = 10
GOAL = 0.300
SILENCE_FRAMES_AFTER_SOURCE = 5


def readout_text(index: int) -> str:
    """A short message of its own length: the stand-in's audio depends only on the voice and the length, and
    audio heard before would be played from the Opus cache without an encoder."""
    return f"Readout {index} here{', and' * index}."


async def clip_after(session: VoiceSession, start: int, timeout: float = 20.0) -> tuple[float, float]:
    """Wait for a whole clip after packet `start`; return when its first and its last audio packet arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        packets = session.packets[start:]
        audio = [p for p in packets if not p.is_silence]
        trailing = sum(1 for p in packets if p.is_silence)
        if audio and trailing >= SILENCE_FRAMES_AFTER_SOURCE:
            return audio[0].received_at, audio[-1].received_at
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no whole clip arrived after packet {start}")


async def run() -> Report:
    """Measure and return the report."""
    report = Report("readout", "first audio packet within 300 ms after the stand-in returns the audio")
    after_download: list[float] = []
    after_tts: list[float] = []
    after_post: list[float] = []
    async with stack(voice=True) as state:
        assert state.voice is not None
        channel = await state.slash(
            "settings",
            {"channel": ChannelOption(int(state.readout["id"]))},
            subcommand="readout-channel",
            member=state.admin,
        )
        await answered(channel)
        await state.discord.move_member(state.guild, state.member, state.voice_channel)
        await answered(await state.slash("join"))
        session = await state.voice.wait_for_session(state.guild.id)
        for index in range(READOUTS):
            first_request = len(state.unmixr.requests)
            first_packet = len(session.packets)
            posted = time.monotonic()
            await state.discord.post_message(state.guild, state.readout, state.member, readout_text(index))
            first_at, _ = await clip_after(session, first_packet)
            downloads = state.requests_since(first_request, DOWNLOAD)
            tts = state.requests_since(first_request, TTS)
            if len(downloads) != 1 or len(tts) != 1:
                raise RuntimeError(f"expected one request and one download, got {len(tts)} and {len(downloads)}")
            after_download.append(first_at - (downloads[0].finished_at or first_at))
            after_tts.append(first_at - (tts[0].finished_at or first_at))
            after_post.append(first_at - posted)
            await asyncio.sleep(0.1)
    print(f"download finished -> first packet: {describe_ms(after_download)}")
    print(f"/short-tts/ finished -> first packet: {describe_ms(after_tts)}")
    print(f"message posted -> first packet:    {describe_ms(after_post)}")
    print(f"first readout after the join: {after_download[0] * 1000:.1f} ms after its download finished")
    p50 = percentile(after_download, 50)
    worst = max(after_download)
    report.add("readout, audio returned -> 1st packet, p50", p50 * 1000, "ms", "<= 300 ms", p50 <= GOAL)
    report.add("readout, audio returned -> 1st packet, max", worst * 1000, "ms", "<= 300 ms", worst <= GOAL)
    report.add("message posted -> 1st packet, p50", percentile(after_post, 50) * 1000, "ms")
    report.note(
        f"{READOUTS} readouts, one at a time, each a message of 15 to 60 characters (each its own length, so each "
        "is encoded afresh); 'audio returned' is the Unmixr "
        "stand-in finishing the audio download (the bot asks for response_type url, then downloads)."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
