"""Target: 20 queued clips then /stop spend at most two clips' characters (before lazy synthesis: 119,940).

A member in the voice channel runs `/say play: true` 20 times, each with its own 6,000 characters (so no
chunk is in the cache for another), then `/stop` as soon as the first clip is playing. Figures: the credits the
Unmixr stand-in charged (its balance before and after), the characters the bot sent it, what the bot's ledger
recorded as spent and still held once everything settled, and how long the 20 answers took. Run:
python -m bench.queued_credits
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench.common import TTS, Report, answered, stack

CLIPS = 20
CHARACTERS = 6000
GOAL = 2 * CHARACTERS


def unique_text(clip: int) -> str:
    """About 6,000 characters whose every sentence is its own."""
    sentences = " ".join(f"Clip {clip} says sentence number {n} of many." for n in range(CHARACTERS // 20))
    return sentences[:CHARACTERS].rsplit(" ", 1)[0] + "."


async def run() -> Report:
    """Measure and return the report."""
    report = Report("queued_credits", "20 queued 6,000-character clips then /stop spend at most two clips")
    async with stack(voice=True) as state:
        assert state.voice is not None
        await state.discord.move_member(state.guild, state.member, state.voice_channel)
        before = state.unmixr.prebuilt_chars
        started = time.monotonic()
        for clip in range(CLIPS):
            await answered(await state.say(text=unique_text(clip), play=True), timeout=60)
        queued_in = time.monotonic() - started
        session = await state.voice.wait_for_session(state.guild.id)
        while not session.packets:
            await asyncio.sleep(0.01)
        await answered(await state.slash("stop"))
        # Let whatever was already out finish and settle.
        held = -1
        for _ in range(200):
            usage = await state.bot.storage.usage_for_day(state.guild.id, datetime.now(UTC).date())
            held = usage.reserved
            if held == 0 and not state.unmixr.tts_in_flight:
                break
            await asyncio.sleep(0.05)
        spent = before - state.unmixr.prebuilt_chars
        sent = sum(len(r.json["text"]) for r in state.unmixr.requests if r.endpoint == TTS and r.json is not None)
        recorded = usage.credits
    print(f"{CLIPS} clips of {CHARACTERS} characters queued in {queued_in:.2f} s, then /stop")
    print(f"Unmixr charged {spent} credits for {sent} characters sent; the bot recorded {recorded}, holds {held}")
    report.add("credits spent by 20 queued clips then /stop", spent, "credits", f"<= {GOAL}", spent <= GOAL)
    report.add("characters sent to Unmixr", sent, "chars")
    report.add("credits the bot's ledger recorded", recorded, "credits")
    report.add("credits still held after /stop", held, "credits", "0", held == 0)
    report.add("20 queue answers, total", queued_in * 1000, "ms")
    report.note(
        "Before lazy synthesis every queued clip was synthesised at enqueue: 119,940 credits for audio nobody "
        "heard. Now only the playing clip and the next one reach Unmixr."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
