"""The adaptive limiter: a limit that grows while answers come back clean and drops to 0.7 times the requests
holding a slot at a 429 or timeout, slow start resuming after 30 s of quiet; its free slots handed round-robin
across waiting keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from bot.settings import SettingsError, load_settings
from bot.unmixr import TTSRequest
from bot.unmixr.limiter import AdaptiveLimiter
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import BRIAN_ID, ClientFactory


async def _settle() -> None:
    """Let every ready task run until nothing changes."""
    for _ in range(20):
        await asyncio.sleep(0)


class Upstream:
    """Requests that hold their slot until the test answers them: Unmixr, one step at a time."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter
        self.holding: list[tuple[str, asyncio.Future[bool]]] = []
        self.granted: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    def send(self, key: str, count: int) -> None:
        """Queue `count` requests on behalf of `key`."""
        self._tasks += [asyncio.create_task(self._request(key)) for _ in range(count)]

    async def _request(self, key: str) -> None:
        async with self.limiter.slot(key) as permit:
            answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.granted.append(key)
            self.holding.append((key, answer))
            permit.answered(overloaded=await answer)

    async def answer(self, count: int | None = None, *, overloaded: bool = False) -> None:
        """Answer the `count` oldest held requests (all of them by default), then let the limiter react."""
        count = len(self.holding) if count is None else count
        assert count <= len(self.holding)
        batch, self.holding = self.holding[:count], self.holding[count:]
        for _, answer in batch:
            answer.set_result(overloaded)
        await _settle()

    async def close(self) -> None:
        """Cancel every request still held or waiting; no slot may stay taken."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self.limiter.in_use == 0
        assert self.limiter.waiting == 0


MakeUpstream = Callable[[AdaptiveLimiter], Upstream]


@pytest.fixture
async def upstream_factory() -> AsyncIterator[MakeUpstream]:
    made: list[Upstream] = []

    def make(limiter: AdaptiveLimiter) -> Upstream:
        made.append(Upstream(limiter))
        return made[-1]

    yield make
    for upstream in made:
        await upstream.close()


# How the limit adapts ----------------------------------------------------------------------------------


def test_starts_at_eight_or_the_ceiling_if_lower() -> None:
    assert AdaptiveLimiter(64).limit == 8
    assert AdaptiveLimiter(64).ceiling == 64
    assert AdaptiveLimiter(3).limit == 3
    assert AdaptiveLimiter(1).limit == 1


async def test_slow_start_doubles_each_busy_window_up_to_the_ceiling(upstream_factory: MakeUpstream) -> None:
    changes: list[int] = []
    limiter = AdaptiveLimiter(50, on_change=changes.append)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 300)
    await _settle()
    assert len(upstream.holding) == 8

    await upstream.answer(7)
    assert limiter.limit == 8, "a window ends only when as many answers as its limit have come back"
    await upstream.answer(1)
    assert limiter.limit == 16
    assert len(upstream.holding) == 16, "the new slots went straight to waiting requests"
    await upstream.answer()
    assert limiter.limit == 32
    await upstream.answer()
    assert limiter.limit == 50, "doubling stops at the ceiling"
    await upstream.answer()
    assert limiter.limit == 50
    assert len(upstream.holding) == 50
    assert changes == [16, 32, 50]


async def test_after_the_first_429_it_grows_by_one_a_window(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 300)
    await _settle()
    await upstream.answer()
    assert limiter.limit == 16
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 11, "0.7 x the 16 requests holding a slot, rounded down"
    assert not limiter.slow_start
    await upstream.answer()  # the 15 others were sent before the decrease: ignored
    assert limiter.limit == 11
    assert len(upstream.holding) == 11
    for expected in (12, 13, 14):
        await upstream.answer()
        assert limiter.limit == expected
        assert len(upstream.holding) == expected


async def test_a_window_full_of_429s_lowers_the_limit_once(upstream_factory: MakeUpstream) -> None:
    changes: list[int] = []
    limiter = AdaptiveLimiter(64, on_change=changes.append)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 40)
    await _settle()
    await upstream.answer(overloaded=True)
    assert limiter.limit == 5
    assert changes == [5]
    assert len(upstream.holding) == 5, "no more than the new limit are sent"


async def test_the_decrease_counts_the_requests_holding_a_slot_not_the_limit(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64, initial=32)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 10)  # Unmixr refused at 10 at once, whatever the limit allowed
    await _settle()
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 7


async def test_requests_sleeping_out_a_retry_after_are_not_counted(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64, initial=32)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 20)
    await _settle()
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 14, "0.7 x the 20 holding a slot"
    # Nine more 429s (from before the decrease: ignored); those requests sleep out their Retry-After
    # without a slot, and the ten left are answered.
    await upstream.answer(9, overloaded=True)
    await upstream.answer()
    upstream.send("guild", 4)  # four new requests while the nine sleep
    await _settle()
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 2, "0.7 x the 4 holding a slot, not the limit nor the sleepers"


async def test_answers_to_requests_sent_before_the_last_decrease_are_ignored(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 100)
    await _settle()
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 5
    assert len(upstream.holding) == 7  # all sent before the decrease

    # A late 429 from before the decrease does not lower it again.
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 5
    # Nor do clean answers from before it count toward the new window.
    await upstream.answer(6)
    assert limiter.limit == 5
    assert len(upstream.holding) == 5  # sent after the decrease

    await upstream.answer(4)
    assert limiter.limit == 5
    await upstream.answer(1)
    assert limiter.limit == 6, "five answers to requests sent after the decrease end the window"

    # A 429 from after the decrease does lower it: 0.7 x the 6 holding a slot.
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 4


async def test_a_timeout_counts_like_a_429(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 4)
    await _settle()
    async with limiter.slot("guild") as permit:
        permit.answered(overloaded=True)
        permit.answered(overloaded=True)  # only the first report counts
    assert limiter.limit == 3, "0.7 x the 5 holding a slot"


async def test_never_below_one(upstream_factory: MakeUpstream) -> None:
    changes: list[int] = []
    limiter = AdaptiveLimiter(64, on_change=changes.append)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 100)
    await _settle()
    for expected in (5, 3, 2, 1):
        await upstream.answer(1, overloaded=True)
        assert limiter.limit == expected
        await upstream.answer()  # the others were sent before the decrease
        assert len(upstream.holding) == expected
    await upstream.answer(1, overloaded=True)
    assert limiter.limit == 1
    assert len(upstream.holding) == 1
    assert changes == [5, 3, 2, 1]
    # At 1, an answer is still a window: the limit grows back.
    await upstream.answer()
    assert limiter.limit == 2


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_slow_start_resumes_after_30_seconds_without_a_429(upstream_factory: MakeUpstream) -> None:
    clock = Clock()
    changes: list[int] = []
    limiter = AdaptiveLimiter(64, on_change=changes.append, clock=clock)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 1000)
    await _settle()
    await upstream.answer()
    await upstream.answer(1, overloaded=True)
    await upstream.answer()  # sent before the decrease: ignored
    assert (limiter.limit, limiter.slow_start) == (11, False)
    clock.now += 10
    await upstream.answer()
    clock.now += 19.9
    await upstream.answer()
    assert (limiter.limit, limiter.slow_start) == (13, False), "29.9 s of quiet: still one a window"
    clock.now += 0.1
    await upstream.answer()
    assert (limiter.limit, limiter.slow_start) == (26, True), "30 s without a 429 or timeout: doubling again"
    await upstream.answer()
    await upstream.answer()
    assert changes == [16, 11, 12, 13, 26, 52, 64], "back at the ceiling three windows after the quiet"
    # The next 429 ends slow start again.
    await upstream.answer(1, overloaded=True)
    await upstream.answer()
    await upstream.answer()
    assert changes[-2:] == [44, 45]
    assert not limiter.slow_start


async def test_a_late_429_restarts_the_quiet_time(upstream_factory: MakeUpstream) -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 1000)
    await _settle()
    await upstream.answer()
    await upstream.answer(1, overloaded=True)  # 16 -> 11, at 0 s
    clock.now += 20
    # A 429 to a request sent before the decrease does not lower the limit again, but Unmixr is still busy.
    await upstream.answer(1, overloaded=True)
    await upstream.answer()
    assert limiter.limit == 11
    clock.now += 15  # 35 s after the first 429, 15 s after the last
    await upstream.answer()
    assert (limiter.limit, limiter.slow_start) == (12, False)
    clock.now += 15
    await upstream.answer()
    assert (limiter.limit, limiter.slow_start) == (24, True)


async def test_no_growth_when_nothing_had_to_wait() -> None:
    limiter = AdaptiveLimiter(64)
    for _ in range(50):
        async with limiter.slot("guild") as permit:
            permit.answered(overloaded=False)
    assert limiter.limit == 8


async def test_changes_are_logged_at_debug(upstream_factory: MakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.unmixr.limiter")
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild", 40)
    await _settle()
    await upstream.answer()
    await upstream.answer(1, overloaded=True)
    messages = [record.getMessage() for record in caplog.records if record.name == "bot.unmixr.limiter"]
    assert messages == ["upstream concurrency 8 -> 16 (slow start)", "upstream concurrency 16 -> 11 (429 or timeout)"]
    assert all(record.levelno == logging.DEBUG for record in caplog.records if record.name == "bot.unmixr.limiter")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimiter(0)


def test_the_ceiling_setting_defaults_to_64_and_must_be_at_least_one() -> None:
    base = {"discord_token": "discord-token-0123", "unmixr_api_key": "unmixr-key-0123", "_env_file": None}
    assert load_settings(**base).unmixr_max_concurrency == 64
    assert load_settings(**base, unmixr_max_concurrency=500).unmixr_max_concurrency == 500
    with pytest.raises(SettingsError, match="UNMIXR_MAX_CONCURRENCY"):
        load_settings(**base, unmixr_max_concurrency=0)


# Fairness ----------------------------------------------------------------------------------------------


async def test_two_busy_servers_take_turns_while_the_limit_shrinks_and_grows(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild-a", 40)
    await _settle()
    upstream.send("guild-b", 40)
    await _settle()
    assert upstream.granted == ["guild-a"] * 8  # A came first and the slots were free

    # Unmixr is overloaded: every window ends in a 429, down to one request at a time.
    while limiter.limit > 1:
        await upstream.answer(1, overloaded=True)
        await upstream.answer()
    for _ in range(6):
        await upstream.answer()
    shrinking = upstream.granted[8:]
    assert len(shrinking) >= 12
    # B queued behind all of A, yet from the first freed slot on they alternate, one request each.
    assert shrinking == ["guild-a", "guild-b"] * (len(shrinking) // 2) + ["guild-a"] * (len(shrinking) % 2)


async def test_one_request_of_key_b_is_not_starved_by_ten_of_key_a() -> None:
    limiter = AdaptiveLimiter(1)
    order: list[str] = []
    blocker_release = asyncio.Event()

    async def blocker() -> None:
        async with limiter.slot("blocker"):
            await blocker_release.wait()

    async def worker(name: str, key: str) -> None:
        async with limiter.slot(key):
            order.append(name)
            await asyncio.sleep(0)

    holding = asyncio.create_task(blocker())
    await _settle()
    a_tasks = []
    for index in range(10):
        a_tasks.append(asyncio.create_task(worker(f"A{index}", "A")))
        await _settle()
    b_task = asyncio.create_task(worker("B0", "B"))
    await _settle()
    blocker_release.set()
    await asyncio.gather(holding, *a_tasks, b_task)

    # B queued after all ten of A, yet it is served second: round-robin across keys, not first come.
    assert order.index("B0") <= 1
    assert sorted(order) == sorted([f"A{index}" for index in range(10)] + ["B0"])
    # Within one key the order of arrival is kept.
    assert [name for name in order if name.startswith("A")] == [f"A{index}" for index in range(10)]


async def test_round_robin_across_three_keys() -> None:
    limiter = AdaptiveLimiter(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot("hold"):
            await release.wait()

    async def worker(key: str) -> None:
        async with limiter.slot(key):
            order.append(key)

    holder = asyncio.create_task(hold())
    await _settle()
    tasks = [asyncio.create_task(worker("A")) for _ in range(3)]
    await _settle()
    tasks += [asyncio.create_task(worker("B")) for _ in range(3)]
    await _settle()
    tasks += [asyncio.create_task(worker("C")) for _ in range(3)]
    await _settle()
    release.set()
    await asyncio.gather(holder, *tasks)
    assert order == ["A", "B", "C", "A", "B", "C", "A", "B", "C"]


async def test_a_retry_goes_first_within_its_key_but_never_ahead_of_another_key() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire("hold")
    order: list[str] = []

    async def worker(name: str, key: str, *, retry: bool = False) -> None:
        async with limiter.slot(key, retry=retry):
            order.append(name)

    tasks = []
    for name, key, retry in [("B1", "B", False), ("A1", "A", False), ("A2", "A", False), ("A-retry", "A", True)]:
        tasks.append(asyncio.create_task(worker(name, key, retry=retry)))
        await _settle()
    limiter.release()
    await asyncio.gather(*tasks)
    # The retry already waited its turn once: it is A's next, but B's turn still comes first.
    assert order == ["B1", "A-retry", "A1", "A2"]


async def test_requests_without_a_key_share_one_key() -> None:
    limiter = AdaptiveLimiter(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot():
            await release.wait()

    async def worker(name: str, key: str | None) -> None:
        async with limiter.slot(key):
            order.append(name)

    holder = asyncio.create_task(hold())
    await _settle()
    tasks = [asyncio.create_task(worker(f"none{index}", None)) for index in range(3)]
    await _settle()
    tasks.append(asyncio.create_task(worker("keyed", "guild")))
    await _settle()
    release.set()
    await asyncio.gather(holder, *tasks)
    assert order.index("keyed") == 1


async def test_never_more_holders_than_the_limit() -> None:
    limiter = AdaptiveLimiter(3)
    holding = 0
    most = 0
    gate = asyncio.Event()

    async def worker(key: str) -> None:
        nonlocal holding, most
        async with limiter.slot(key):
            holding += 1
            most = max(most, holding)
            await gate.wait()
            holding -= 1

    tasks = [asyncio.create_task(worker(f"key-{index % 4}")) for index in range(12)]
    await _settle()
    assert holding == 3
    assert limiter.waiting == 9
    gate.set()
    await asyncio.gather(*tasks)
    assert most == 3
    assert limiter.in_use == 0
    assert limiter.waiting == 0


# Cancellation ------------------------------------------------------------------------------------------


async def test_cancelled_waiter_gives_up_its_place_without_leaking_a_slot() -> None:
    limiter = AdaptiveLimiter(1)
    release = asyncio.Event()
    served: list[str] = []

    async def hold() -> None:
        async with limiter.slot("hold"):
            await release.wait()

    async def worker(name: str) -> None:
        async with limiter.slot(name):
            served.append(name)

    holder = asyncio.create_task(hold())
    await _settle()
    doomed = asyncio.create_task(worker("doomed"))
    survivor = asyncio.create_task(worker("survivor"))
    await _settle()
    doomed.cancel()
    await _settle()
    release.set()
    await asyncio.gather(holder, survivor)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert served == ["survivor"]
    assert limiter.in_use == 0
    assert limiter.waiting == 0


async def test_waiter_cancelled_just_after_being_granted_passes_the_slot_on() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire("first")
    granted = asyncio.create_task(limiter.acquire("second"))
    follower = asyncio.create_task(limiter.acquire("third"))
    await _settle()
    # Release hands the slot to "second", then "second" is cancelled before it runs.
    limiter.release()
    granted.cancel()
    await _settle()
    assert follower.done()
    assert limiter.in_use == 1
    limiter.release()
    assert limiter.in_use == 0


async def test_a_slot_granted_then_cancelled_while_the_limit_shrinks_is_not_passed_on() -> None:
    limiter = AdaptiveLimiter(64, initial=2)
    first = await limiter.acquire("a")
    await limiter.acquire("a")
    granted = asyncio.create_task(limiter.acquire("b"))
    follower = asyncio.create_task(limiter.acquire("c"))
    await _settle()
    limiter.release()  # hands the slot to "b"
    first.answered(overloaded=True)  # the limit halves to 1 before "b" runs
    granted.cancel()
    await _settle()
    # Two slots were held under a limit of 1: the cancelled one is given back, not handed to "c".
    assert limiter.limit == 1
    assert not follower.done()
    assert limiter.in_use == 1
    limiter.release()
    await _settle()
    assert follower.done()
    limiter.release()
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_requests_cancelled_while_held_or_waiting_leave_no_slot_taken(upstream_factory: MakeUpstream) -> None:
    limiter = AdaptiveLimiter(64)
    upstream = upstream_factory(limiter)
    upstream.send("guild-a", 30)
    upstream.send("guild-b", 30)
    await _settle()
    await upstream.answer()
    await upstream.answer(3, overloaded=True)
    assert (limiter.in_use, limiter.waiting) == (13, 36)
    await upstream.close()  # cancels all 57: asserts nothing is left held or queued
    assert limiter.limit == 11


# Against the stand-in --------------------------------------------------------------------------------


async def test_after_30_quiet_seconds_an_unlimited_burst_reaches_the_ceiling_within_a_few_windows(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    clock = Clock()
    client = make_client()
    changes: list[int] = []
    client.transport.limiter = AdaptiveLimiter(64, on_change=changes.append, clock=clock)

    async def burst(label: str, count: int) -> None:
        # Texts of one length: the stand-in makes the tone once.
        requests = [TTSRequest(text=f"{label} {index:04d}.", voice_id=BRIAN_ID) for index in range(count)]
        await asyncio.gather(*(client.short_tts(request) for request in requests), return_exceptions=True)

    # A capped burst: Unmixr takes 16 at once and answers 429 above that.
    fake.set_capacity(16, retry_after=0)
    fake.set_latency(0.05, endpoint="/short-tts/")
    await burst("Capped", 120)
    lowered = client.limiter.limit
    assert fake.too_many_requests > 0
    assert lowered < 32 and not client.limiter.slow_start
    # 30 s of quiet, then Unmixr takes anything: the limit doubles each window up to the ceiling.
    clock.now += 30
    fake.set_capacity(None)
    changes.clear()
    await burst("Unlimited", 500)
    assert changes[-1] == 64
    climb = changes[: changes.index(64) + 1]
    assert climb == [min(64, lowered * 2**step) for step in range(1, len(climb) + 1)]
    assert len(climb) <= 4, f"{lowered} to 64 in {len(climb)} windows"
