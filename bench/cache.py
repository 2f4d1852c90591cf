"""Target: a repeated identical request makes no upstream call, costs no credits and is answered from cache.

For TEXTS distinct texts (short ones and one 6,000-character text of 4 chunks), a member runs /say, then
another member runs the identical /say. For each, the Unmixr stand-in's requests (/short-tts/ and audio
downloads), the credits it charged (its balance before and after), the credits the bot recorded for
the server, what the reply says, and the end-to-end time are compared. The stand-in generates at
0.5 ms a character, so a miss costs realistic time. Run: python -m bench.cache
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.common import DOWNLOAD, TTS, Report, Stack, answered, stack
from tests.fakes.discord_server import FakeMember
from tests.fakes.prose import prose

TTS_SECONDS_PER_CHAR = 0.0005
SHORT_TEXTS = 5


@dataclass
class Outcome:
    """What one /say cost and how it was answered."""

    seconds: float
    tts_requests: int
    downloads: int
    charged: int
    recorded: int
    from_cache: bool


async def measured_say(state: Stack, member: FakeMember, text: str) -> Outcome:
    """Run one /say and measure what it cost upstream and in the bot's ledger."""
    first = len(state.unmixr.requests)
    balance = state.unmixr.prebuilt_chars
    ledger = await state.bot.storage.usage_for_day(state.guild.id, datetime.now(UTC).date())
    interaction = await state.say(member=member, text=text)
    response = await answered(interaction, timeout=60)
    if not response.files:
        raise RuntimeError(f"/say got no audio: {response.json}")
    await asyncio.sleep(0.05)  # the usage row is written after the answer is sent
    after = await state.bot.storage.usage_for_day(state.guild.id, datetime.now(UTC).date())
    return Outcome(
        seconds=response.at - interaction.created_at,
        tts_requests=len(state.requests_since(first, TTS)),
        downloads=len(state.requests_since(first, DOWNLOAD)),
        charged=balance - state.unmixr.prebuilt_chars,
        recorded=after.credits - ledger.credits,
        from_cache="from cache" in (response.json or {}).get("content", ""),
    )


def summed(outcomes: list[Outcome]) -> tuple[int, int, int, int, int]:
    """Totals: /short-tts/ requests, downloads, credits charged, credits recorded, replies saying "from cache"."""
    return (
        sum(o.tts_requests for o in outcomes),
        sum(o.downloads for o in outcomes),
        sum(o.charged for o in outcomes),
        sum(o.recorded for o in outcomes),
        sum(o.from_cache for o in outcomes),
    )


async def run() -> Report:
    """Measure and return the report."""
    report = Report("cache", "a repeated identical request: no upstream call, no credits, answered from cache")
    firsts: list[Outcome] = []
    repeats: list[Outcome] = []
    async with stack() as state:
        await answered(await state.say(text="Warming up before the benchmark."))
        state.unmixr.tts_latency_per_char = TTS_SECONDS_PER_CHAR
        texts = [f"Cache benchmark sentence {n}: the same words twice should cost once." for n in range(SHORT_TEXTS)]
        texts.append(prose(6000, salt=99))
        for text in texts:
            firsts.append(await measured_say(state, state.members[0], text))
            repeats.append(await measured_say(state, state.members[1], text))
    for label, outcomes in (("first", firsts), ("repeated", repeats)):
        tts, downloads, charged, recorded, cached = summed(outcomes)
        times = ", ".join(f"{o.seconds * 1000:.0f}" for o in outcomes)
        print(
            f"{label:>8}: {tts} /short-tts/ + {downloads} downloads, {charged:,} credits charged by the stand-in, "
            f"{recorded:,} recorded by the bot, {cached} of {len(outcomes)} replies say 'from cache'; ms: {times}"
        )
    tts, downloads, charged, recorded, cached = summed(repeats)
    first_tts, first_downloads, first_charged, _, _ = summed(firsts)
    report.add("upstream requests, first requests", first_tts + first_downloads, "")
    report.add("credits, first requests", first_charged, "")
    report.add("upstream requests, repeated", tts + downloads, "", "0", tts + downloads == 0)
    report.add("credits charged, repeated", charged, "", "0", charged == 0 and recorded == 0)
    report.add("replies 'from cache', repeated", cached, f"of {len(repeats)}", "all", cached == len(repeats))
    first_short = statistics.median(o.seconds for o in firsts[:SHORT_TEXTS])
    repeat_short = statistics.median(o.seconds for o in repeats[:SHORT_TEXTS])
    report.add("latency first, short text (median)", first_short * 1000, "ms")
    report.add("latency repeated, short text (median)", repeat_short * 1000, "ms")
    report.add("latency first, 6,000 characters", firsts[-1].seconds * 1000, "ms")
    report.add("latency repeated, 6,000 characters", repeats[-1].seconds * 1000, "ms")
    report.note(
        f"{SHORT_TEXTS} short texts and one of 6,000 characters; each repeated by another member with the same "
        "settings (the cache is keyed on the request, not the member)."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
