"""Target: the cost of one /say next to the naive bot's (bench/naive_bot.py: defer, one call, attach), one run.

Prints issue 20's table, each figure from the same run for this bot and the naive bot, interleaved round by round
(the order alternates) so that a machine whose load changes during the run weighs on both alike:

1. /say overhead p50 (PRODUCT.md: at most 1.2x the naive bot's): SEQUENTIAL one-chunk /say, one at a time,
   measured as `say_overhead` does (end to end minus the Unmixr stand-in's serving), each bot in this process
   beside the stand-ins, each on fresh stand-ins.
2. CPU milliseconds per /say: each bot as its own process (`python -m bot`, `python -m bench.naive_bot`), so only
   its own work counts; its utime + stime from /proc/<pid>/stat (every thread) over CPU_REQUESTS sequential /say
   after a warm-up, including the work each /say leaves behind (cache and ledger writes) before the next one.
   The share of the bot's threads other than the event loop's (aiosqlite's, asyncio's executor) is shown too.
   The same run gives the overhead p50 of the two processes, measured from outside.
3. 200 /say at once against an upstream without a limit (0.1 s latency), each bot fresh (PRODUCT.md: the last
   reply at most 2x the naive bot's), with the acknowledgement p99 during that burst.

Each ratio is taken within a round (this bot over the naive bot measured next to it); the table shows the range
over the rounds and their median. Run: python -m bench.say_cost [rounds]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    TTS,
    Report,
    Stack,
    answered,
    bot_environment,
    busy_seconds,
    first_answer,
    launch_bot,
    percentile,
    stack,
    start_bot_process,
    stop_bot_process,
    wait_all,
)
from bench.naive_bot import running_naive_bot
from bench.say_overhead import measure, text_for, timed_rest
from tests.fakes.discord_server import FakeInteraction

ROUNDS = 3
CPU_REQUESTS = 150
CPU_WARM_UP = 5
# After each /say, room for the work it leaves behind (the audio cache's write waits 50 ms) to finish.
CPU_PAUSE_SECONDS = 0.08
BURST = 200
BURST_LATENCY = 0.1
OVERHEAD_GOAL = 1.2
BURST_GOAL = 2.0
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    """One bot's figures in one round."""

    overhead_p50: float = 0.0  # s, in this process
    process_overhead_p50: float = 0.0  # s, as its own process
    cpu_per_say: float = 0.0  # s of CPU, as its own process
    other_threads: float = 0.0  # s of that CPU outside the event loop's thread
    burst_last: float = 0.0  # s from the first dispatch to the last reply
    burst_ack_p99: float = 0.0  # s
    burst_audio: int = 0
    burst_failed: int = 0  # error answers (an expired interaction, say) or none


@dataclass
class Bot:
    """How to run one of the two bots."""

    name: str
    module: str
    rounds: list[Round] = field(default_factory=list)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The process's CPU time (every thread) and the part of it spent by its main thread, in seconds."""

    def read(path: str) -> float:
        # The command name may hold spaces: the fields start after its closing parenthesis.
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND

    return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")


async def in_process_overhead(bot: Bot) -> float:
    """Overhead p50 of sequential /say with the bot in this process, on fresh stand-ins."""
    rest: list[tuple[float, float]] = []
    if bot.module == "bot":
        async with stack(prepare=timed_rest(rest)) as state:
            figures = await measure(state, rest)
    else:
        async with stack(prepare=timed_rest(rest), start=False) as state:
            async with running_naive_bot(state.settings, state.discord, state.guild.id):
                figures = await measure(state, rest)
    return percentile(figures.overheads, 50)


async def start_process(bot: Bot, state: Stack) -> asyncio.subprocess.Process:
    """Start the bot as its own process against the stand-ins; return once it has synced /say."""
    if bot.module == "bot":
        return await start_bot_process(state.directory, state.discord, state.unmixr, state.guild)
    environment = bot_environment(state.directory, state.discord, state.unmixr, DEV_GUILD_ID=str(state.guild.id))
    process = await launch_bot(state.directory, environment, module=bot.module)
    await state.discord.wait_until_connected(timeout=60)
    await state.discord.wait_until(lambda: bool(state.discord.commands.get(state.guild.id)), timeout=30, what="sync")
    return process


async def own_process(bot: Bot, figures: Round) -> None:
    """CPU per /say and overhead p50 of sequential /say with the bot in its own process."""
    async with stack(start=False) as state:
        process = await start_process(bot, state)
        try:
            for index in range(CPU_WARM_UP):
                await answered(await state.say(text=f"Warm-up number {index}, to open connections and caches."))
            await asyncio.sleep(0.2)
            before, before_main = cpu_seconds(process.pid)
            overheads: list[float] = []
            for index in range(CPU_REQUESTS):
                first = len(state.unmixr.requests)
                interaction = await state.say(text=text_for(index))
                response = await answered(interaction)
                if not response.files:
                    raise RuntimeError(f"{bot.name}: /say got no audio: {response.json}")
                served = state.requests_since(first)
                overheads.append(response.at - interaction.created_at - busy_seconds(served))
                await asyncio.sleep(CPU_PAUSE_SECONDS)
            after, after_main = cpu_seconds(process.pid)
        finally:
            await stop_bot_process(process, state.directory)
    figures.cpu_per_say = (after - before) / CPU_REQUESTS
    figures.other_threads = ((after - before) - (after_main - before_main)) / CPU_REQUESTS
    figures.process_overhead_p50 = percentile(overheads, 50)


def say_text(index: int) -> str:
    """A distinct burst text, so no cache can answer it."""
    return f"Burst request number {index}: a short sentence from its own member, so no cache can answer."


async def burst(bot: Bot, figures: Round) -> None:
    """BURST /say at once from as many members against an unlimited upstream, the bot fresh (in this process)."""

    async def run(state: Stack) -> None:
        await answered(await state.say(text="Warming up before the burst."))
        state.unmixr.set_latency(BURST_LATENCY, endpoint=TTS)
        interactions: list[FakeInteraction] = []
        for index, member in enumerate(state.members):
            interactions.append(await state.say(member=member, text=say_text(index)))
        # An interaction not acknowledged within 3 s is gone (the stand-in answers 10062, as Discord does): it never
        # gets an answer, and counts as failed.
        await wait_all(interactions, first_answer, timeout=60)
        origin = min(i.created_at for i in interactions)
        answers = [first_answer(i) for i in interactions]
        figures.burst_last = max((a.at for a in answers if a is not None), default=origin) - origin
        figures.burst_audio = sum(1 for a in answers if a is not None and a.files)
        figures.burst_failed = BURST - figures.burst_audio
        acks = [i.acknowledged_at - i.created_at for i in interactions if i.acknowledged_at is not None]
        figures.burst_ack_p99 = percentile(acks, 99)

    if bot.module == "bot":
        async with stack(members=BURST) as state:
            await run(state)
    else:
        async with stack(members=BURST, start=False) as state:
            async with running_naive_bot(state.settings, state.discord, state.guild.id):
                await run(state)


def load() -> str:
    """The load average now, as `uptime` shows it."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def spread(values: list[float], scale: float = 1000.0, digits: int = 1) -> str:
    """A range over the rounds: "min-max" (and the median when there are more than two)."""
    low, high = min(values) * scale, max(values) * scale
    text = f"{low:.{digits}f}-{high:.{digits}f}" if len(values) > 1 else f"{low:.{digits}f}"
    if len(values) > 2:
        text += f" (median {statistics.median(values) * scale:.{digits}f})"
    return text


async def run(rounds: int) -> Report:
    """Measure both bots for `rounds` rounds, interleaved, and return the report."""
    report = Report("say_cost", "/say overhead p50 <= 1.2x the naive bot's; 200 /say at once, last <= 2x")
    ours, naive = Bot("this bot", "bot"), Bot("naive bot", "bench.naive_bot")
    loads = [load()]
    steps: list[tuple[str, Callable[[Bot, Round], Awaitable[None]]]] = [
        ("overhead", lambda bot, figures: _overhead(bot, figures)),
        ("own process", own_process),
        ("burst", burst),
    ]
    for number in range(rounds):
        pair = (ours, naive) if number % 2 == 0 else (naive, ours)
        figures = {bot.name: Round() for bot in pair}
        for step, do in steps:
            for bot in pair:
                started = time.monotonic()
                await do(bot, figures[bot.name])
                print(f"round {number + 1}, {bot.name}: {step} ({time.monotonic() - started:.1f} s)", flush=True)
        for bot in pair:
            bot.rounds.append(figures[bot.name])
        loads.append(load())
        print(f"round {number + 1} done; load average {loads[-1]}", flush=True)

    for index in range(rounds):
        a, b = ours.rounds[index], naive.rounds[index]
        print(
            f"round {index + 1}: overhead p50 {a.overhead_p50 * 1000:.1f} / {b.overhead_p50 * 1000:.1f} ms; "
            f"own process {a.process_overhead_p50 * 1000:.1f} / {b.process_overhead_p50 * 1000:.1f} ms; "
            f"CPU per /say {a.cpu_per_say * 1000:.2f} / {b.cpu_per_say * 1000:.2f} ms "
            f"(outside the event loop's thread {a.other_threads * 1000:.2f} / {b.other_threads * 1000:.2f}); "
            f"burst last {a.burst_last:.2f} / {b.burst_last:.2f} s, ack p99 {a.burst_ack_p99 * 1000:.0f} / "
            f"{b.burst_ack_p99 * 1000:.0f} ms, audio {a.burst_audio} / {b.burst_audio} (this bot / naive bot)"
            + (
                f"; FAILED /say in the burst {a.burst_failed} / {b.burst_failed}"
                if a.burst_failed or b.burst_failed
                else ""
            )
        )

    def column(name: str) -> tuple[list[float], list[float], list[float]]:
        mine = [getattr(r, name) for r in ours.rounds]
        theirs = [getattr(r, name) for r in naive.rounds]
        return mine, theirs, [m / t for m, t in zip(mine, theirs, strict=True)]

    overhead = column("overhead_p50")
    outside = column("process_overhead_p50")
    cpu = column("cpu_per_say")
    last = column("burst_last")
    acks = column("burst_ack_p99")
    rows = [
        ("/say overhead p50 (in this process)", overhead, "ms", f"<= {OVERHEAD_GOAL}x"),
        ("/say overhead p50 (own process, from outside)", outside, "ms", ""),
        ("CPU per /say (own process)", cpu, "ms", ""),
        (f"{BURST} /say at once, unlimited upstream ({BURST_LATENCY:g} s): last reply", last, "s", f"<= {BURST_GOAL}x"),
        ("acknowledgement p99 during the burst", acks, "ms", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"\n== the cost of one /say, {rounds} rounds (range over the rounds, median when more than two)")
    print(f"  {'measure':<{width}}  {'this bot':<26}  {'naive bot':<26}  {'ratio':<26}  target")
    for name, (mine, theirs, ratios), unit, goal in rows:
        scale = 1.0 if unit == "s" else 1000.0
        digits = 2 if unit == "s" or name.startswith("CPU") else 1
        print(
            f"  {name:<{width}}  {spread(mine, scale, digits) + ' ' + unit:<26}  "
            f"{spread(theirs, scale, digits) + ' ' + unit:<26}  {spread(ratios, 1.0, 2) + 'x':<26}  {goal}"
        )
    other = [r.other_threads for r in ours.rounds]
    print(f"  of this bot's CPU per /say, outside the event loop's thread: {spread(other, 1000.0, 2)} ms")
    print(f"  load average (1, 5, 15 min) at the start and after each round: {' | '.join(loads)}")

    overhead_ratio = statistics.median(overhead[2])
    burst_ratio = statistics.median(last[2])
    report.add(
        "overhead p50 / naive bot's (median of rounds)",
        overhead_ratio,
        "x",
        f"<= {OVERHEAD_GOAL}x",
        overhead_ratio <= OVERHEAD_GOAL,
    )
    report.add("overhead p50, this bot (median)", statistics.median(overhead[0]) * 1000, "ms", summary=True)
    report.add("overhead p50, naive bot (median)", statistics.median(overhead[1]) * 1000, "ms", summary=True)
    report.add("CPU per /say, this bot (median)", statistics.median(cpu[0]) * 1000, "ms", summary=True)
    report.add("CPU per /say, naive bot (median)", statistics.median(cpu[1]) * 1000, "ms", summary=True)
    report.add("CPU per /say / naive bot's (median)", statistics.median(cpu[2]), "x", summary=True)
    report.add(
        "burst last reply / naive bot's (median)", burst_ratio, "x", f"<= {BURST_GOAL}x", burst_ratio <= BURST_GOAL
    )
    report.add("burst ack p99, this bot (worst round)", max(acks[0]) * 1000, "ms", summary=True)
    audio = sum(r.burst_audio for r in ours.rounds)
    report.add(
        "burst audio replies, this bot", audio, f"of {BURST * rounds}", f"{BURST * rounds}", audio == BURST * rounds
    )
    report.note(
        f"{rounds} rounds; in each, both bots in turn (the order alternating): {len(text_for(0))}-character /say one "
        f"at a time in this process (overhead: end to end minus the Unmixr stand-in's serving); {CPU_REQUESTS} such "
        f"/say to each bot run as its own process (CPU from /proc/<pid>/stat, every thread; overhead from outside); "
        f"{BURST} /say from {BURST} members at once against the stand-in with {BURST_LATENCY:g} s latency and no "
        "limit, each bot fresh. Ratios are this bot's figure over the naive bot's of the same round. Load average "
        f"during the run: {loads[0]} at the start, {loads[-1]} at the end."
    )
    return report


async def _overhead(bot: Bot, figures: Round) -> None:
    figures.overhead_p50 = await in_process_overhead(bot)


def main() -> None:
    """Run the benchmark and print its report."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    asyncio.run(run(rounds)).print()


if __name__ == "__main__":
    main()
