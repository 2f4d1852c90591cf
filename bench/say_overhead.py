"""Target: the bot's overhead on /say (end to end, minus the Unmixr stand-in's own latency) under 5 ms at p50.

No subprocess is on the path of a one-chunk reply. A naive bot (bench/naive_bot.py) is measured the same way.
The bot runs twice: in this process beside the stand-ins (their work on the same event loop is counted
against it), and as its own `python -m bot` process, as it runs in production (the stand-ins' work is off
its loop, but every hop between the processes adds a wake-up).

One /say at a time, each with a distinct text of about 100 characters (no cache hits). End to end is
from the Discord stand-in dispatching the interaction (`created_at`) to the final answer, the edit with
the audio attached, reaching it. The Unmixr stand-in's own time is the union of its /short-tts/ and
audio-download requests' [started_at, finished_at] intervals. The Discord stand-in's REST handling
(the defer callback and the edit, whose multipart body it parses) is timed too and shown as a second,
stricter figure: it is not the bot's work either. Run: python -m bench.say_overhead
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench.common import (
    DOWNLOAD,
    TTS,
    Report,
    Stack,
    answered,
    busy_seconds,
    describe_ms,
    percentile,
    stack,
    start_bot_process,
    stop_bot_process,
)
from bench.naive_bot import running_naive_bot
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr import FakeUnmixr

REQUESTS = 40
WARM_UP = 3
GOAL = 0.005
LATENCY_CHECK_REQUESTS = 10
LATENCY_CHECK_SECONDS = 0.2


def text_for(index: int) -> str:
    """A distinct sentence of about 100 characters."""
    return f"Sentence number {index} of the overhead benchmark, long enough to be a realistic little message."


def clipped(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """How much of [start, end] the intervals cover (they do not overlap: one request at a time)."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in intervals)


@dataclass
class Overheads:
    """One bot's figures, in seconds."""

    end_to_end: list[float] = field(default_factory=list)
    upstream: list[float] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    strict: list[float] = field(default_factory=list)
    with_latency: list[float] = field(default_factory=list)
    upstream_requests: int = 0


def timed_rest(rest_intervals: list[tuple[float, float]]) -> Callable[[FakeDiscord, FakeUnmixr], None]:
    """Wrap the Discord stand-in's REST handler to time its own work."""

    def timed(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            started = time.monotonic()
            try:
                return await handler(request)
            finally:
                rest_intervals.append((started, time.monotonic()))

        return wrapper

    def prepare(discord_fake: FakeDiscord, _unmixr: FakeUnmixr) -> None:
        # The stand-in registers its bound handler when it starts: an instance attribute set now is what it takes.
        discord_fake._rest_handler = timed(discord_fake._rest_handler)  # type: ignore[method-assign]

    return prepare


async def measure(state: Stack, rest_intervals: list[tuple[float, float]]) -> Overheads:
    """Run the sequential /say of the benchmark against whichever bot is connected to the stand-ins."""
    for index in range(WARM_UP):
        await answered(await state.say(text=f"Warm-up number {index}, to open connections and caches."))
    figures = Overheads()
    for index in range(REQUESTS + LATENCY_CHECK_REQUESTS):
        # The last requests wait LATENCY_CHECK_SECONDS upstream: the overhead must not change with the latency.
        state.unmixr.set_latency(LATENCY_CHECK_SECONDS if index >= REQUESTS else 0.0, endpoint=TTS)
        first = len(state.unmixr.requests)
        rest_intervals.clear()
        interaction = await state.say(text=text_for(index))
        response = await answered(interaction)
        if not response.files:
            raise RuntimeError(f"/say got no audio: {response.json}")
        total = response.at - interaction.created_at
        served = state.requests_since(first)
        figures.upstream_requests += len(served) if index < REQUESTS else 0
        if {r.endpoint for r in served} != {TTS, DOWNLOAD}:
            raise RuntimeError(f"unexpected upstream requests: {[r.path for r in served]}")
        stand_in = busy_seconds(served)
        if index >= REQUESTS:
            figures.with_latency.append(total - stand_in)
            continue
        discord_side = clipped(list(rest_intervals), interaction.created_at, response.at)
        figures.end_to_end.append(total)
        figures.upstream.append(stand_in)
        figures.overheads.append(total - stand_in)
        figures.strict.append(total - stand_in - discord_side)
        await asyncio.sleep(0.05)  # one request at a time: nothing else is in flight
    return figures


async def run() -> Report:
    """Measure the bot, then the naive bot on fresh stand-ins, and return the report."""
    report = Report("say_overhead", "bot overhead of /say, end to end minus the stand-in's latency, p50 < 5 ms")
    rest_intervals: list[tuple[float, float]] = []
    async with stack(prepare=timed_rest(rest_intervals)) as state:
        ours = await measure(state, rest_intervals)
    async with stack(prepare=timed_rest(rest_intervals), start=False) as state:
        async with running_naive_bot(state.settings, state.discord, state.guild.id):
            naive = await measure(state, rest_intervals)
    async with stack(prepare=timed_rest(rest_intervals), start=False) as state:
        process = await start_bot_process(state.directory, state.discord, state.unmixr, state.guild)
        try:
            separate = await measure(state, rest_intervals)
        finally:
            await stop_bot_process(process, state.directory)

    runs = (("this bot, in this process", ours), ("naive bot, in this process", naive))
    for name, figures in (*runs, ("this bot, in its own process", separate)):
        print(f"== {name}")
        print(f"end to end:                        {describe_ms(figures.end_to_end)}")
        print(f"Unmixr stand-in serving:           {describe_ms(figures.upstream)}")
        print(f"overhead (end to end - Unmixr):    {describe_ms(figures.overheads)}")
        print(f"... and minus Discord REST handling: {describe_ms(figures.strict)}")
        print(
            f"overhead with {LATENCY_CHECK_SECONDS * 1000:.0f} ms of upstream latency: "
            f"{describe_ms(figures.with_latency)}"
        )
        print(f"upstream requests per /say: {figures.upstream_requests / REQUESTS:.1f} (/short-tts/ and the download)")
    p50 = percentile(ours.overheads, 50)
    naive_p50 = percentile(naive.overheads, 50)
    separate_p50 = percentile(separate.overheads, 50)
    report.add("overhead p50", p50 * 1000, "ms", "< 5 ms", p50 < GOAL)
    report.add("overhead p99", percentile(ours.overheads, 99) * 1000, "ms")
    report.add("overhead p50, bot in its own process", separate_p50 * 1000, "ms", summary=True)
    report.add("naive bot overhead p50", naive_p50 * 1000, "ms", summary=True)
    report.add("this bot's cost over the naive bot, p50", (p50 - naive_p50) * 1000, "ms", summary=True)
    report.add("overhead p50, minus Discord stand-in", percentile(ours.strict, 50) * 1000, "ms")
    report.add("end to end p50", percentile(ours.end_to_end, 50) * 1000, "ms")
    report.add("Unmixr stand-in time p50", percentile(ours.upstream, 50) * 1000, "ms")
    report.add(
        f"overhead p50 with {LATENCY_CHECK_SECONDS * 1000:.0f} ms upstream latency",
        percentile(ours.with_latency, 50) * 1000,
        "ms",
    )
    report.note(
        f"{REQUESTS} sequential /say of ~100 characters, distinct texts, no injected latency (then "
        f"{LATENCY_CHECK_REQUESTS} with {LATENCY_CHECK_SECONDS * 1000:.0f} ms, as a check). The headline runs the "
        "bot in this process, beside the stand-ins, so the Discord stand-in's work (dispatching the interaction, "
        "handling the defer and the edit with the attachment) shares its event loop and is counted against it; "
        "'minus Discord stand-in' takes the REST handling out again. The naive bot (bench/naive_bot.py: defer, one "
        "upstream call, attach) runs the same way on fresh stand-ins. 'In its own process' runs `python -m bot` as "
        "in production: the stand-ins' work leaves the bot's loop, and each hop adds a wake-up of the other process."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
