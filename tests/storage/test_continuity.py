"""What carries the bot across restarts, on both databases: recorded voice sessions, process instances whose holds
are released once they fall silent (never while they live), and, with PostgreSQL, shard leases."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from bot.storage import Instance, Storage, shards_overlap
from tests.storage.conftest import Database

GUILD = 5
OTHER_GUILD = 6
MEMBER = 42
NOON = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
LIVE = Instance("live-instance", "machine-a", 101)
CRASHED = Instance("crashed-instance", "machine-b", 202)


async def test_voice_sessions_are_recorded_replaced_and_forgotten_across_a_reopen(database: Database) -> None:
    storage = await Storage.open(database.location)
    store = storage.continuity()
    await store.record_voice_session(GUILD, 1001)
    await store.record_voice_session(OTHER_GUILD, 2001)
    await store.record_voice_session(GUILD, 1002)  # moved to another channel
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        store = reopened.continuity()
        assert await store.voice_sessions() == {OTHER_GUILD: 2001, GUILD: 1002}
        assert await store.forget_voice_session(GUILD) is True
        assert await store.forget_voice_session(GUILD) is False
        assert await store.voice_sessions() == {OTHER_GUILD: 2001}
    finally:
        await reopened.close()


async def held(storage: Storage, guild_id: int) -> int:
    return (await storage.usage_for_day(guild_id, NOON.date())).reserved


async def age_heartbeat(database: Database, instance: Instance, seconds: float) -> None:
    """Make an instance's last heartbeat `seconds` older, as if it had been silent that long."""
    await database.execute(
        "UPDATE process_instances SET heartbeat_at = heartbeat_at - ? WHERE instance_id = ?",
        seconds,
        instance.instance_id,
    )


async def test_holds_of_a_silent_process_are_released_and_a_live_ones_never_however_old(
    storage: Storage, database: Database
) -> None:
    store = storage.continuity()
    await store.register_instance(LIVE)
    await store.register_instance(CRASHED)
    # A live process's hold made long ago (a clip queued yesterday), and a crashed one's from just now.
    old = datetime(2024, 6, 13, 23, 0, tzinfo=UTC)
    await storage.reserve_usage(GUILD, MEMBER, amount=70, at=old, instance_id=LIVE.instance_id)
    await storage.reserve_usage(GUILD, MEMBER, amount=30, at=NOON, instance_id=CRASHED.instance_id)
    await storage.reserve_usage(OTHER_GUILD, MEMBER, amount=5, at=NOON, instance_id=CRASHED.instance_id)
    assert await held(storage, GUILD) == 100

    # Silent for 59 s: not yet.
    await age_heartbeat(database, CRASHED, 59)
    released = await store.release_silent_holds(60)
    assert (released.holds, released.credits, released.instances) == (0, 0, ())
    assert await held(storage, GUILD) == 100

    await age_heartbeat(database, CRASHED, 2)
    released = await store.release_silent_holds(60)
    assert (released.holds, released.credits, released.instances) == (2, 35, (CRASHED,))
    assert await held(storage, GUILD) == 70
    assert await held(storage, OTHER_GUILD) == 0
    assert await store.instances() == [LIVE]
    # A hold of a process no longer recorded at all holds nothing either; the live one's stays.
    await storage.reserve_usage(GUILD, MEMBER, amount=9, at=NOON, instance_id="never-recorded")
    released = await store.release_silent_holds(60)
    assert (released.holds, released.credits) == (1, 9)
    assert await held(storage, GUILD) == 70


async def test_a_heartbeat_keeps_a_process_live_and_says_when_it_was_taken_for_dead(
    storage: Storage, database: Database
) -> None:
    store = storage.continuity()
    await store.register_instance(LIVE)
    await storage.reserve_usage(GUILD, MEMBER, amount=10, at=NOON, instance_id=LIVE.instance_id)
    await age_heartbeat(database, LIVE, 3600)
    assert await store.heartbeat(LIVE.instance_id) is True
    assert (await store.release_silent_holds(60)).holds == 0
    assert await held(storage, GUILD) == 10
    await store.retire_instance(LIVE.instance_id)
    assert await store.heartbeat(LIVE.instance_id) is False


async def test_compaction_leaves_a_live_process_s_old_hold_for_it_to_settle(storage: Storage) -> None:
    store = storage.continuity()
    await store.register_instance(LIVE)
    old = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)
    for _ in range(3):
        ticket = await storage.reserve_usage(GUILD, MEMBER, amount=10, at=old)
        await storage.settle_usage(ticket, release=10, characters=10, credits_prebuilt=10, requests=1)
    waiting = await storage.reserve_usage(GUILD, MEMBER, amount=40, at=old, instance_id=LIVE.instance_id)
    await storage.reserve_usage(GUILD, MEMBER, amount=99, at=old)  # an operator's tool that died: dropped

    assert await storage.compact_usage(date(2024, 6, 14)) == 4
    day = await storage.usage_for_day(GUILD, old.date())
    assert (day.credits_prebuilt, day.reserved) == (30, 40)
    # The hold settles later on its own row, as if nothing had happened.
    await storage.settle_usage(waiting, release=40, characters=40, credits_prebuilt=38, requests=1)
    day = await storage.usage_for_day(GUILD, old.date())
    assert (day.credits_prebuilt, day.reserved) == (68, 0)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ((0, 2), (0, 2), True),
        ((0, 2), (1, 2), False),
        ((0, 2), (2, 4), True),  # ids with id % 4 == 2 are even
        ((1, 2), (2, 4), False),
        ((0, 3), (1, 2), True),  # gcd 1: every pair of shards shares servers
    ],
)
def test_shards_of_different_counts_overlap_when_they_agree_modulo_the_gcd(
    first: tuple[int, int], second: tuple[int, int], overlap: bool
) -> None:
    assert shards_overlap(first, second) is overlap
    assert shards_overlap(second, first) is overlap


@pytest.fixture
async def postgres_storage(postgres_database: str) -> Storage:
    storage = await Storage.open(postgres_database)
    yield storage  # type: ignore[misc]
    await storage.close()


async def test_a_shard_lease_is_held_by_one_process_until_it_expires_or_is_given_up(postgres_storage: Storage) -> None:
    store = postgres_storage.continuity()
    await store.register_instance(LIVE)
    await store.register_instance(CRASHED)
    assert await store.take_lease(LIVE.instance_id, 0, 2, 0.5) is None
    assert await store.take_lease(CRASHED.instance_id, 1, 2, 0.5) is None
    holder = await store.take_lease(CRASHED.instance_id, 0, 2, 30)
    assert holder is not None and holder.instance == LIVE and (holder.shard_id, holder.shard_count) == (0, 2)
    # Shard 2 of 4 shares servers with shard 0 of 2: also taken.
    assert await store.take_lease(CRASHED.instance_id, 2, 4, 30) is not None
    # Shard 3 of 4 shares servers only with shard 1 of 2, which is this process's own.
    assert await store.take_lease(CRASHED.instance_id, 3, 4, 30) is None
    assert await store.renew_leases(LIVE.instance_id, 0.5) == {0}

    await asyncio.sleep(0.7)  # not renewed in time: it lapses
    assert await store.renew_leases(LIVE.instance_id, 30) == set()
    assert await store.take_lease(CRASHED.instance_id, 0, 2, 30) is None
    assert await store.take_lease(LIVE.instance_id, 0, 2, 30) is not None
    await store.retire_instance(CRASHED.instance_id)
    assert await store.take_lease(LIVE.instance_id, 0, 2, 30) is None


async def test_two_processes_taking_one_shard_at_once_get_it_once(postgres_database: str) -> None:
    storages = [await Storage.open(postgres_database) for _ in range(2)]
    try:
        stores = [storage.continuity() for storage in storages]
        for store, instance in zip(stores, (LIVE, CRASHED), strict=True):
            await store.register_instance(instance)
        results = await asyncio.gather(
            *(
                store.take_lease(instance.instance_id, 0, 1, 30)
                for _ in range(5)
                for store, instance in zip(stores, (LIVE, CRASHED), strict=True)
            )
        )
        holders = {holder.instance.instance_id for holder in results if holder is not None and holder.instance}
        assert len(holders) == 1  # every refusal names the one process that took it
        assert sum(holder is None for holder in results) == 5
    finally:
        for storage in storages:
            await storage.close()
