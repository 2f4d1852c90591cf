"""PostgreSQL next to SQLite: the bot's overhead on /say, and the storage's latency with and without its cache.

Context, not a target of its own: PRODUCT.md asks for /say overhead under 5 ms at p50, and the bot defers
before a PostgreSQL cache miss. This shows what moving to PostgreSQL (DATABASE_URL, several processes) costs.

1. /say overhead, as bench/say_overhead.py measures it (one /say at a time, distinct texts, end to end minus the
   Unmixr stand-in's serving time), with the bot on SQLite and then on PostgreSQL. A /say reads the server's
   settings, the member's preferences and the pronunciations (from the cache once warm), reserves its credits
   in the usage ledger (a transaction under the server's lock) and settles them (one statement).
2. The storage on its own, for 500 servers each with settings: a settings look-up served from the cache, the
   same after the cache was dropped (one query), warm() after the cache was dropped (the three reads a request
   needs, run concurrently), and reserve_usage + settle_usage with both budgets set.
3. The audio cache's tiers on PostgreSQL. AudioCache.get() on its own, for 40 clips of 24 KB (a chunk) and of
   1 MB (a long joined file): a local hit (this process's folder), a PostgreSQL hit (an empty folder, as on
   another machine: one query, the sha256 check, the clip kept in the folder in the background) and a miss
   (neither tier: a stat and one query). Then /say end to end on a second bot sharing the database, 40 rounds
   of a miss (the Unmixr stand-in, no added latency), a PostgreSQL hit (a text the first bot paid for) and
   the same text again (now a local hit).

PostgreSQL runs on this machine with its default durability (fsync and synchronous commit on, as an operator's
server would), reached over its Unix socket: a server on another machine adds one network round trip per query
(reserve_usage with both budgets is 6 of them: BEGIN, the lock, two sums, INSERT...RETURNING, COMMIT; without a
budget it is 1, and so is a cache miss).
`BENCH_DATABASE_URL` (a superuser URL) uses another server instead of starting one.
Run: python -m bench.database
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from pydantic import SecretStr

from bench.common import TTS, Report, answered, busy_seconds, describe_ms, percentile, stack
from bot.audio import AudioCache, cache_key
from bot.audio.shared_tier import shared_tier
from bot.storage import Storage
from tests.fakes.postgres import INSTALL_HINT, ThrowawayPostgres, create_database, drop_database, server_binaries

REQUESTS = 40
WARM_UP = 3
SERVERS = 500
USER = 42
CLIPS = 40
CLIP_SIZES = {"24 KB": 24 * 1024, "1 MB": 1024 * 1024}
MEGABYTE = 1024 * 1024


async def say_overheads(**overrides: Any) -> tuple[list[float], list[float]]:
    """(overheads, end-to-end times) of REQUESTS sequential /say, in seconds."""
    overheads: list[float] = []
    totals: list[float] = []
    async with stack(**overrides) as state:
        for index in range(WARM_UP):
            await answered(await state.say(text=f"Warm-up number {index}, to open connections and fill caches."))
        for index in range(REQUESTS):
            first = len(state.unmixr.requests)
            interaction = await state.say(text=f"Sentence {index} of the database benchmark, a short message.")
            response = await answered(interaction)
            if not response.files:
                raise RuntimeError(f"/say got no audio: {response.json}")
            total = response.at - interaction.created_at
            totals.append(total)
            overheads.append(total - busy_seconds(state.requests_since(first)))
            await asyncio.sleep(0.02)
    return overheads, totals


async def timed(times: list[float], operation: Callable[[], Awaitable[Any]]) -> None:
    started = time.perf_counter()
    await operation()
    times.append(time.perf_counter() - started)


async def storage_latencies(location: str | Path) -> dict[str, list[float]]:
    """Per-operation times, in seconds, on SERVERS servers with settings."""
    storage = await Storage.open(location)
    results: dict[str, list[float]] = {"hit": [], "miss": [], "warm": [], "reserve": [], "settle": []}
    try:
        servers = range(1, SERVERS + 1)
        for guild_id in servers:
            await storage.set_guild_setting(guild_id, "rate", "+5%")
            await storage.set_member_preference(guild_id, USER, "nickname", "Bench")
        for guild_id in servers:  # every entry was cached by its write
            await timed(results["hit"], functools.partial(storage.get_guild_settings, guild_id))
        storage.forget_guilds(lambda _guild_id: True)
        for guild_id in servers:
            await timed(results["miss"], functools.partial(storage.get_guild_settings, guild_id))
        storage.forget_guilds(lambda _guild_id: True)
        for guild_id in servers:
            await timed(results["warm"], functools.partial(storage.warm, guild_id, USER))
        for guild_id in servers:
            reserve = storage.reserve_usage(
                guild_id, USER, amount=100, server_budget=1_000_000, member_budget=1_000_000
            )
            started = time.perf_counter()
            ticket = await reserve
            results["reserve"].append(time.perf_counter() - started)
            await timed(
                results["settle"],
                functools.partial(
                    storage.settle_usage, ticket, release=100, characters=100, credits_prebuilt=100, requests=1
                ),
            )
    finally:
        await storage.close()
    return results


async def tier_latencies(url: str, folder: Path) -> dict[str, list[float]]:
    """AudioCache.get() with the shared tier, in seconds, by "<tier> <size>": local, PostgreSQL and miss."""
    storage = await Storage.open(url)
    results: dict[str, list[float]] = {}
    try:
        for label, size in CLIP_SIZES.items():
            keys = [cache_key(bench="tiers", size=size, clip=clip) for clip in range(CLIPS)]
            writer = AudioCache(folder / f"one-{size}", 512 * MEGABYTE, shared=shared_tier(storage, 2048 * MEGABYTE))
            for key in keys:
                await writer.put(key, os.urandom(size), duration=1.0, output_type="mp3")
            await writer.flush()
            local: list[float] = []
            results[f"local {label}"] = local
            for key in keys:
                await timed(local, functools.partial(writer.get, key))
            # Another machine: nothing in its folder yet.
            reader = AudioCache(folder / f"two-{size}", 512 * MEGABYTE, shared=shared_tier(storage, 2048 * MEGABYTE))
            await reader.load()
            shared: list[float] = []
            results[f"postgresql {label}"] = shared
            for key in keys:
                await timed(shared, functools.partial(reader.get, key))
            await reader.flush()
            missed: list[float] = []
            results[f"miss {label}"] = missed
            for clip in range(CLIPS):
                await timed(missed, functools.partial(reader.get, cache_key(bench="absent", size=size, clip=clip)))
            if any(found is None for found in [await reader.get(key) for key in keys]):
                raise RuntimeError("a clip stored in PostgreSQL was not found again")
    finally:
        await storage.close()
    return results


async def say_by_tier(url: str) -> dict[str, list[float]]:
    """/say end to end, in seconds, on a second bot sharing the database: "postgresql", "local" and "miss".

    A first bot pays for the texts; on the second one each round asks for a text it has never seen (a miss),
    then for one of the first bot's (a PostgreSQL hit), then the same again (now a hit in its own folder), so
    the three kinds share the same warm bot. Background cache writes finish before the next /say.
    """
    texts = [
        f"Sentence {index} of the audio tier benchmark, which another bot then asks for." for index in range(REQUESTS)
    ]
    results: dict[str, list[float]] = {"miss": [], "local": [], "postgresql": []}

    async def say(state: Any, text: str, into: list[float] | None) -> None:
        interaction = await state.say(text=text)
        response = await answered(interaction)
        if not response.files:
            raise RuntimeError(f"/say got no audio: {response.json}")
        if into is not None:
            into.append(response.at - interaction.created_at)
        await state.bot.audio_cache.flush()

    async with stack(database_url=SecretStr(url)) as state:
        for text in texts:
            await say(state, text, None)
    async with stack(database_url=SecretStr(url)) as state:
        for index in range(WARM_UP):
            await say(state, f"Another warm-up, number {index}, of the audio tier benchmark.", None)
        for index, text in enumerate(texts):
            await say(state, f"A new sentence {index}, never asked for before, of the same length.", results["miss"])
            first = len(state.unmixr.requests)
            await say(state, text, results["postgresql"])
            await say(state, text, results["local"])
            if state.requests_since(first, TTS):
                raise RuntimeError("the second bot asked Unmixr for audio the shared tier holds")
    return results


async def run() -> Report:
    """Measure on SQLite and on PostgreSQL and return the report."""
    report = Report("database", "PostgreSQL next to SQLite: /say overhead and settings look-ups (context)")
    cluster: ThrowawayPostgres | None = None
    admin_url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    if not admin_url:
        if server_binaries() is None:
            raise SystemExit(f"PostgreSQL is not installed ({INSTALL_HINT}) and BENCH_DATABASE_URL is not set")
        cluster = ThrowawayPostgres(durable=True)
        admin_url = await asyncio.to_thread(cluster.start)
    made: list[str] = []

    async def fresh_database() -> str:
        name, url = await create_database(admin_url, prefix="unmixr_bench")
        made.append(name)
        return url

    try:
        with TemporaryDirectory(prefix="unmixr-bench-db-") as folder:
            sqlite_say, sqlite_totals = await say_overheads()
            postgres_say, postgres_totals = await say_overheads(database_url=SecretStr(await fresh_database()))
            sqlite_store = await storage_latencies(Path(folder) / "bench.sqlite3")
            postgres_store = await storage_latencies(await fresh_database())
            tiers = await tier_latencies(await fresh_database(), Path(folder))
            said = await say_by_tier(await fresh_database())
    finally:
        for name in made:
            await drop_database(admin_url, name)
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)

    print(f"/say overhead, SQLite:      {describe_ms(sqlite_say)}")
    print(f"/say overhead, PostgreSQL:  {describe_ms(postgres_say)}")
    print(f"/say end to end, SQLite:     {describe_ms(sqlite_totals)}")
    print(f"/say end to end, PostgreSQL: {describe_ms(postgres_totals)}")
    labels = {
        "hit": "settings look-up, cached",
        "miss": "settings look-up, cache miss",
        "warm": "warm() after a miss (3 reads)",
        "reserve": "reserve_usage, both budgets",
        "settle": "settle_usage",
    }
    for key, label in labels.items():
        print(f"{label + ',':<32} SQLite {describe_ms(sqlite_store[key])}")
        print(f"{'':<32} PostgreSQL {describe_ms(postgres_store[key])}")

    for label in CLIP_SIZES:
        for tier, name in (("local", "local hit"), ("postgresql", "PostgreSQL hit"), ("miss", "miss")):
            print(f"{f'audio cache get, {label}, {name},':<42} {describe_ms(tiers[f'{tier} {label}'])}")
    for tier, name in (("local", "local hit"), ("postgresql", "PostgreSQL hit"), ("miss", "miss (stand-in)")):
        print(f"{f'/say end to end, {name},':<42} {describe_ms(said[tier])}")

    report.add("/say overhead p50, SQLite", percentile(sqlite_say, 50) * 1000, "ms", summary=True)
    report.add("/say overhead p50, PostgreSQL", percentile(postgres_say, 50) * 1000, "ms", summary=True)
    report.add("/say overhead p99, SQLite", percentile(sqlite_say, 99) * 1000, "ms")
    report.add("/say overhead p99, PostgreSQL", percentile(postgres_say, 99) * 1000, "ms")
    for key, label in labels.items():
        unit, scale = ("µs", 1e6) if key == "hit" else ("ms", 1e3)
        for name, results in (("SQLite", sqlite_store), ("PostgreSQL", postgres_store)):
            report.add(
                f"{label} p50, {name}", percentile(results[key], 50) * scale, unit, summary=key in ("hit", "miss")
            )
            report.add(f"{label} p99, {name}", percentile(results[key], 99) * scale, unit)
    for label in CLIP_SIZES:
        for tier, name in (("local", "local hit"), ("postgresql", "PostgreSQL hit"), ("miss", "miss")):
            report.add(
                f"audio cache get, {label}, {name} p50",
                percentile(tiers[f"{tier} {label}"], 50) * 1000,
                "ms",
                summary=label == "24 KB",
            )
    for tier, name in (("local", "local hit"), ("postgresql", "PostgreSQL hit"), ("miss", "miss")):
        report.add(f"/say end to end, {name} p50", percentile(said[tier], 50) * 1000, "ms", summary=True)
    report.note(
        f"{REQUESTS} sequential /say (after {WARM_UP} to warm up), and {SERVERS} servers for the storage figures. "
        "PostgreSQL: local server with default durability over its Unix socket; on another machine add one "
        "network round trip per query (a miss is 1, reserve_usage 6 with budgets, 1 without)."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
