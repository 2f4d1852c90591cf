"""Target: 6,000 characters (the longest /say) finish in at most 1.5x the time of one 2,000-character request.

The Unmixr stand-in generates at TTS_SECONDS_PER_CHAR per character (0.5 ms: 1 s for 2,000 characters),
so a request's time grows with its text like a real engine's. Each /say has a distinct text of real
sentences (no cache hits); 2,000 and 6,000 characters alternate, ROUNDS times each. The time is from the
Discord stand-in dispatching the interaction to the answer with the audio reaching it; the figure is the
ratio of the medians. Run: python -m bench.long_text
"""

from __future__ import annotations

import asyncio
import statistics

from bench.common import TTS, Report, Stack, answered, stack
from tests.fakes.prose import prose

TTS_SECONDS_PER_CHAR = 0.0005
ROUNDS = 3
GOAL = 1.5


async def timed_say(state: Stack, text: str) -> tuple[float, int, float]:
    """Run one /say; return its end-to-end seconds, its /short-tts/ request count and the audio seconds."""
    first = len(state.unmixr.requests)
    interaction = await state.say(text=text)
    response = await answered(interaction, timeout=60)
    if not response.files:
        raise RuntimeError(f"/say got no audio: {response.json}")
    requests = state.requests_since(first, TTS)
    characters = sum(len(str((r.json or {}).get("text", ""))) for r in requests)
    audio_seconds = characters / state.unmixr.chars_per_second
    return response.at - interaction.created_at, len(requests), audio_seconds


async def run() -> Report:
    """Measure and return the report."""
    report = Report("long_text", "6,000 characters finished in at most 1.5x the time of one 2,000-character request")
    short: list[float] = []
    long: list[float] = []
    chunks = 0
    audio_seconds = 0.0
    async with stack() as state:
        await answered(await state.say(text="Warming up before the benchmark."))
        state.unmixr.tts_latency_per_char = TTS_SECONDS_PER_CHAR
        for round_number in range(ROUNDS):
            seconds, _, _ = await timed_say(state, prose(2000, salt=2 * round_number))
            short.append(seconds)
            seconds, chunks, audio_seconds = await timed_say(state, prose(6000, salt=2 * round_number + 1))
            long.append(seconds)
    short_median = statistics.median(short)
    long_median = statistics.median(long)
    ratio = long_median / short_median
    print(f"2,000 characters: {', '.join(f'{s:.3f}' for s in short)} s (median {short_median:.3f} s)")
    print(f"6,000 characters: {', '.join(f'{s:.3f}' for s in long)} s (median {long_median:.3f} s)")
    print(f"6,000 characters went out as {chunks} /short-tts/ requests, {audio_seconds:.0f} s of audio joined")
    report.add("ratio 6,000 / 2,000 characters", ratio, "x", "<= 1.5x", ratio <= GOAL)
    report.add("2,000 characters, median", short_median * 1000, "ms")
    report.add("6,000 characters, median", long_median * 1000, "ms")
    report.note(
        f"Unmixr stand-in: {TTS_SECONDS_PER_CHAR * 1000:.1f} ms of generation per character, "
        f"{state.unmixr.chars_per_second:.0f} characters per second of audio; medians of {ROUNDS} rounds."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
