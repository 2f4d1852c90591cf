"""The fair limiter: a bound on holders, with free slots handed round-robin across waiting keys."""

from __future__ import annotations

import asyncio

import pytest

from bot.unmixr.limiter import FairLimiter


async def _settle() -> None:
    """Let every ready task run until nothing changes."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_never_more_holders_than_the_limit() -> None:
    limiter = FairLimiter(3)
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


async def test_one_request_of_key_b_is_not_starved_by_ten_of_key_a() -> None:
    limiter = FairLimiter(1)
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
    limiter = FairLimiter(1)
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


async def test_cancelled_waiter_gives_up_its_place_without_leaking_a_slot() -> None:
    limiter = FairLimiter(1)
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
    limiter = FairLimiter(1)
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


async def test_requests_without_a_key_share_one_key() -> None:
    limiter = FairLimiter(1)
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


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairLimiter(0)
