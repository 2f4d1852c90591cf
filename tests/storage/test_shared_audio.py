"""The audio cache's shared tier in PostgreSQL (bot/storage/shared_audio.py): its size, evictions and expiry.

Each Storage opened here has its own connection pool, as each process of a deployment does.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from bot.storage import SharedAudioStore, Storage
from tests.storage.conftest import Database


@pytest.fixture
async def postgres(postgres_database: str) -> Database:
    return Database("postgresql", postgres_database)


@pytest.fixture
async def storage(postgres: Database) -> AsyncIterator[Storage]:
    opened = await Storage.open(postgres.location)
    yield opened
    await opened.close()


def shared(storage: Storage) -> SharedAudioStore:
    store = storage.shared_audio()
    assert store is not None
    return store


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


async def put(store: SharedAudioStore, name: str, size: int, *, cap: int, lifetime: float | None = None) -> int | None:
    data = os.urandom(size)
    return await store.store(
        key(name),
        data,
        sha256=hashlib.sha256(data).digest(),
        duration=1.0,
        output_type="mp3",
        max_bytes=cap,
        lifetime=lifetime,
    )


async def sizes(database: Database) -> tuple[int, int]:
    """(the size row, the sum of the clips' sizes)."""
    counted = await database.fetchone("SELECT bytes FROM audio_cache_size")
    summed = await database.fetchone("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM audio_cache")
    assert counted is not None and summed is not None
    return counted[0], summed[0]


async def test_sqlite_has_no_shared_tier(sqlite_database: Database) -> None:
    async with await Storage.open(sqlite_database.location) as storage:
        assert storage.shared_audio() is None
    assert "audio_cache" not in await sqlite_database.tables()


async def test_the_least_recently_used_clip_is_evicted_first(storage: Storage, postgres: Database) -> None:
    store = shared(storage)
    cap = 25_000
    assert await put(store, "a", 10_000, cap=cap) == 10_000
    assert await put(store, "b", 10_000, cap=cap) == 20_000
    # "a" is used after "b" was written: "b" is now the least recently used.
    assert await store.touch([key("a"), key("never stored")]) == 1
    assert await put(store, "c", 10_000, cap=cap) == 20_000
    assert await store.present([key(name) for name in "abc"]) == {key("a"), key("c")}
    assert await store.fetch(key("b")) is None
    # A clip already there is not stored twice, and nothing changes.
    assert await put(store, "a", 10_000, cap=cap) is None
    assert await sizes(postgres) == (20_000, 20_000)


async def test_concurrent_writers_in_several_processes_keep_the_cap_and_an_exact_total(
    postgres: Database,
) -> None:
    cap = 60_000
    processes = [await Storage.open(postgres.location) for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                put(shared(storage), f"{number}-{clip}", 4_000 + 100 * clip, cap=cap)
                for number, storage in enumerate(processes)
                for clip in range(25)
            ),
            # Marks and damaged-row drops at the same time, as other processes make them.
            *(
                shared(storage).touch([key(f"{number}-{clip}") for clip in range(25)])
                for number, storage in enumerate(processes)
            ),
            *(shared(storage).drop(key(f"{number}-3")) for number, storage in enumerate(processes)),
        )
    finally:
        for storage in processes:
            await storage.close()
    counted, summed = await sizes(postgres)
    assert 0 < summed == counted <= cap


async def test_an_expired_clip_is_a_miss_then_removed(storage: Storage, postgres: Database) -> None:
    store = shared(storage)
    await put(store, "kept", 1_000, cap=10_000)
    await put(store, "brief", 2_000, cap=10_000, lifetime=0.3)
    assert await store.present([key("kept"), key("brief")]) == {key("kept"), key("brief")}
    await asyncio.sleep(0.4)
    assert await store.fetch(key("brief")) is None
    assert await store.present([key("kept"), key("brief")]) == {key("kept")}
    assert await store.remove_expired() == 1
    assert await sizes(postgres) == (1_000, 1_000)
    assert await store.remove_expired() == 0


async def test_recount_repairs_the_total_after_rows_were_removed_by_hand(storage: Storage, postgres: Database) -> None:
    store = shared(storage)
    await put(store, "one", 3_000, cap=10_000)
    await put(store, "two", 4_000, cap=10_000)
    await postgres.execute("DELETE FROM audio_cache WHERE key = ?", key("one"))
    assert await store.total_bytes() == 7_000
    assert await store.recount() == 4_000
    assert await sizes(postgres) == (4_000, 4_000)
