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

from bench.common import Report, answered, busy_seconds, describe_ms, percentile, stack
from bot.storage import Storage
from tests.fakes.postgres import INSTALL_HINT, ThrowawayPostgres, create_database, drop_database, server_binaries

REQUESTS = 40
WARM_UP = 3
SERVERS = 500
USER = 42
TTS = "/short-tts/"


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
