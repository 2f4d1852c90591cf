"""Target: 200 /say at once against an upstream that allows 16 concurrent requests (429 above) with 0.3 s
latency: every one answered with audio, none with an error, the last within 1.5x the ideal (200 / 16 x 0.3 s).
Against an upstream without a limit (0.1 s latency): the last within 2x of a bot without a limiter.

Each phase starts a fresh bot (the adaptive limit starts at 8) with SAYS members, and sends one /say per
member, each with its own text (so the cache cannot answer), back to back. The time of a reply is from
the first interaction being dispatched to that reply (the edit of the deferred message) reaching the
Discord stand-in; the headline is the time of the last reply.

1. capped: the Unmixr stand-in's capacity mode answers 429 with `Retry-After: 1` above CAPACITY concurrent
   /short-tts/ requests, and takes CAPPED_LATENCY per request it serves. The target's figure.
2. capped, `Retry-After: 0`: the same upstream telling the bot to retry at once (for information: a 429
   near the end of the burst otherwise costs its request the full second).
3. unlimited, adaptive: no capacity limit, UNLIMITED_LATENCY per request, the bot as configured
   (UNMIXR_MAX_CONCURRENCY 64).
4. unlimited, no limiter: the same, with the bot's limiter replaced by one so large that it never binds.
5. unlimited 30 s after capped: one bot runs the capped burst of 1, waits QUIET seconds (PRODUCT.md: slow
   start resumes after 30 s without a 429 or timeout), then the unlimited burst of 3, to be read next to
   phase 3's fresh bot. Before slow start resumed, the limit climbed back by one a window from where the
   429s had left it.

Run: python -m bench.upstream_load
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import TTS, Report, Stack, first_answer, stack, wait_all
from bot.unmixr import AdaptiveLimiter
from bot.unmixr.limiter import QUIET_SECONDS
from tests.fakes.discord_server import FakeInteraction

SAYS = 200
CAPACITY = 16
CAPPED_LATENCY = 0.3
RETRY_AFTER = 1.0
UNLIMITED_LATENCY = 0.1
IDEAL = SAYS / CAPACITY * CAPPED_LATENCY
CAPPED_GOAL = 1.5
UNLIMITED_GOAL = 2.0
# A limiter this large never makes a request wait: the bot "without a limiter".
NEVER_BINDS = 1_000_000
# Between the capped burst and the unlimited one of phase 5: just past the limiter's quiet time.
QUIET = QUIET_SECONDS + 0.5


@dataclass
class Phase:
    """What one burst of /say came to."""

    name: str
    replies: list[float] = field(default_factory=list)
    audio: int = 0
    errors: int = 0
    unanswered: int = 0
    tts_requests: int = 0
    rejected: int = 0
    most_rejected: int = 0
    peak: int = 0
    dispatch: float = 0.0
    limits: list[tuple[float, int]] = field(default_factory=list)

    @property
    def last(self) -> float:
        """Seconds from the first dispatch to the last reply."""
        return max(self.replies, default=float("nan"))


def say_text(phase: str, index: int) -> str:
    """A distinct /say text, so the cache cannot answer it."""
    return f"{phase} request number {index}: a short sentence from its own member, so no cache can answer."


async def burst(state: Stack, phase: Phase) -> None:
    """Send one /say per member back to back, wait for every answer and record the figures."""
    unmixr = state.unmixr
    limiter = state.bot.unmixr.limiter
    started = time.monotonic()
    limiter.on_change = lambda limit: phase.limits.append((time.monotonic() - started, limit))
    phase.limits.append((0.0, limiter.limit))
    first_request = len(unmixr.requests)
    unmixr.reset_load_counters()
    interactions: list[FakeInteraction] = []
    for index, member in enumerate(state.members):
        interactions.append(await state.say(member=member, text=say_text(phase.name, index)))
    phase.dispatch = time.monotonic() - started
    phase.unanswered = await wait_all(interactions, first_answer, timeout=120)
    origin = min(interaction.created_at for interaction in interactions)
    for interaction in interactions:
        answer = first_answer(interaction)
        if answer is None:
            continue
        phase.replies.append(answer.at - origin)
        if answer.files:
            phase.audio += 1
        else:
            phase.errors += 1
    requests = state.requests_since(first_request, TTS)
    phase.tts_requests = len(requests)
    refused = Counter(str((request.json or {}).get("text")) for request in requests if request.status == 429)
    phase.most_rejected = max(refused.values(), default=0)
    phase.rejected = unmixr.too_many_requests
    phase.peak = unmixr.peak_tts_concurrency


async def run_phase(
    name: str, *, capacity: int | None, latency: float, retry_after: float = RETRY_AFTER, limiter_off: bool = False
) -> Phase:
    """Start a fresh bot against the stand-in set up this way and measure one burst."""
    phase = Phase(name)
    async with stack(members=SAYS) as state:
        state.unmixr.set_capacity(capacity, retry_after=retry_after)
        # Warm up: the first /say resolves the default voice and opens the cache.
        await wait_all([await state.say(text=f"Warming up before the {name} phase.")], first_answer)
        if limiter_off:
            state.bot.unmixr.transport.limiter = AdaptiveLimiter(NEVER_BINDS, initial=NEVER_BINDS)
        state.unmixr.set_latency(latency, endpoint=TTS)
        await burst(state, phase)
    return phase


async def run_after_capped() -> tuple[Phase, Phase, int]:
    """One bot: the capped burst, QUIET seconds without a request, then the unlimited burst.

    Returns both bursts and the limit the capped one left.
    """
    capped = Phase("capped-before-quiet")
    recovered = Phase("unlimited-after-quiet")
    async with stack(members=SAYS) as state:
        state.unmixr.set_capacity(CAPACITY, retry_after=RETRY_AFTER)
        await wait_all([await state.say(text="Warming up before the capped burst.")], first_answer)
        state.unmixr.set_latency(CAPPED_LATENCY, endpoint=TTS)
        await burst(state, capped)
        left = state.bot.unmixr.limiter.limit
        await asyncio.sleep(QUIET)
        state.unmixr.set_capacity(None)
        state.unmixr.set_latency(UNLIMITED_LATENCY, endpoint=TTS)
        await burst(state, recovered)
    return capped, recovered, left


def describe(phase: Phase) -> None:
    """Print one phase's figures."""
    replies = phase.replies
    median = statistics.median(replies) if replies else float("nan")
    print(
        f"{phase.name}: {phase.audio} audio, {phase.errors} errors, {phase.unanswered} unanswered; "
        f"dispatched in {phase.dispatch:.2f} s; replies p50 {median:.2f} s, last {phase.last:.2f} s; "
        f"{phase.tts_requests} /short-tts/ requests, {phase.rejected} answered 429 (at most {phase.most_rejected} "
        f"for one /say), peak {phase.peak} at once"
    )
    steps = " ".join(f"{limit}@{at:.2f}s" for at, limit in phase.limits)
    print(f"  limit over time: {steps}")


async def run() -> Report:
    """Measure and return the report."""
    report = Report(
        "upstream_load",
        "200 /say at once: capped upstream, all audio within 1.5x the ideal; unlimited, within 2x of no limiter",
    )
    capped = await run_phase("capped", capacity=CAPACITY, latency=CAPPED_LATENCY)
    at_once = await run_phase("capped-retry-after-0", capacity=CAPACITY, latency=CAPPED_LATENCY, retry_after=0)
    adaptive = await run_phase("unlimited", capacity=None, latency=UNLIMITED_LATENCY)
    unlimited = await run_phase("no-limiter", capacity=None, latency=UNLIMITED_LATENCY, limiter_off=True)
    before_quiet, recovered, left = await run_after_capped()
    for phase in (capped, at_once, adaptive, unlimited, before_quiet, recovered):
        describe(phase)

    ratio = capped.last / IDEAL
    report.add("capped: audio replies", capped.audio, f"of {SAYS}", f"{SAYS}", capped.audio == SAYS)
    failed = capped.errors + capped.unanswered
    report.add("capped: error answers or none", failed, "", "0", failed == 0)
    report.add("capped: last reply / ideal 3.75 s", ratio, "x", f"<= {CAPPED_GOAL}x", ratio <= CAPPED_GOAL)
    report.add("capped: last reply", capped.last * 1000, "ms", summary=True)
    report.add("capped: 429s from the stand-in", capped.rejected, "", summary=True)
    report.add("capped: most 429s for one /say (3 reach the member)", capped.most_rejected, "", summary=True)
    report.add("capped: peak concurrent at the stand-in", capped.peak, "")
    report.add(
        "capped, Retry-After 0: last reply / ideal", at_once.last / IDEAL, "x", f"<= {CAPPED_GOAL}x", summary=True
    )
    report.add("capped, Retry-After 0: audio replies", at_once.audio, f"of {SAYS}", summary=True)
    compared = adaptive.last / unlimited.last
    report.add("unlimited: last reply / no limiter", compared, "x", f"<= {UNLIMITED_GOAL}x", compared <= UNLIMITED_GOAL)
    report.add("unlimited: last reply", adaptive.last * 1000, "ms", summary=True)
    report.add("no limiter: last reply", unlimited.last * 1000, "ms", summary=True)
    report.add(
        "unlimited: audio replies",
        adaptive.audio + unlimited.audio,
        f"of {2 * SAYS}",
        f"{2 * SAYS}",
        adaptive.audio + unlimited.audio == 2 * SAYS,
    )
    report.add(f"unlimited {QUIET_SECONDS:g} s after capped: last reply", recovered.last * 1000, "ms", summary=True)
    report.add(
        f"unlimited {QUIET_SECONDS:g} s after capped / fresh bot", recovered.last / adaptive.last, "x", summary=True
    )
    report.add("  limit the capped burst left", left, "")
    report.add("  peak concurrent at the stand-in: after capped", recovered.peak, "", summary=True)
    report.add("  peak concurrent at the stand-in: fresh bot", adaptive.peak, "", summary=True)
    report.add("  audio replies after capped (both bursts)", before_quiet.audio + recovered.audio, f"of {2 * SAYS}")
    report.note(
        f"{SAYS} members each send one /say with its own text, back to back (dispatching them all takes at most "
        f"{max(p.dispatch for p in (capped, at_once, adaptive, unlimited)):.2f} s). Capped: the stand-in "
        f"serves {CAPACITY} /short-tts/ at once with {CAPPED_LATENCY} s latency and answers 429 with "
        f"Retry-After: {RETRY_AFTER:g} above that (0 in the information row); "
        f"ideal {SAYS} / {CAPACITY} x {CAPPED_LATENCY} s = {IDEAL:.2f} s. "
        f"Unlimited: {UNLIMITED_LATENCY} s latency, the bot as configured (starts at 8, ceiling 64) against the "
        "same bot with a limiter that never binds. Each phase is a fresh bot, but the last: it runs the capped "
        f"burst, waits {QUIET:g} s, then the unlimited one. Times are from the first dispatch. "
        "Bot and stand-ins share one process and event loop: the stand-ins' work counts against the bot."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
