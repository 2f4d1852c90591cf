"""The usage ledger: per-server sums by UTC day and month, exact under concurrency."""

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.storage import Storage, Usage
from tests.storage.conftest import Database

GUILD = 5
OTHER_GUILD = 6


async def record(
    storage: Storage,
    at: datetime,
    *,
    characters: int = 100,
    prebuilt: int = 0,
    cloned: int = 0,
    cache_hit: bool = False,
    guild_id: int = GUILD,
) -> None:
    await storage.record_usage(
        guild_id,
        characters=characters,
        credits_prebuilt=prebuilt,
        credits_cloned=cloned,
        cache_hit=cache_hit,
        at=at,
    )


def test_credits_is_the_sum_of_both_kinds() -> None:
    assert Usage(credits_prebuilt=120, credits_cloned=30).credits == 150
    assert Usage().credits == 0


async def test_nothing_recorded_is_all_zero(storage: Storage) -> None:
    assert await storage.usage_for_day(GUILD, date(2024, 1, 1)) == Usage()
    assert await storage.usage_for_month(GUILD, 2024, 1) == Usage()


async def test_days_split_at_utc_midnight_and_months_add_up(database: Database) -> None:
    storage = await Storage.open(database.location)
    before_midnight = datetime(2024, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    at_midnight = datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
    await record(storage, before_midnight, characters=10, prebuilt=10)
    await record(storage, before_midnight - timedelta(hours=3), characters=20, cloned=40)
    await record(storage, at_midnight, characters=30, prebuilt=30)
    await record(storage, at_midnight, characters=30, cache_hit=True)
    # 01:30 in UTC+02:00 is still 23:30 on the 31st in UTC.
    await record(storage, datetime(2024, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), characters=5, prebuilt=5)
    await record(storage, at_midnight, characters=999, prebuilt=999, guild_id=OTHER_GUILD)
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        march_31 = await reopened.usage_for_day(GUILD, date(2024, 3, 31))
        assert march_31 == Usage(characters=35, credits_prebuilt=15, credits_cloned=40, requests=3, cache_hits=0)
        assert march_31.credits == 55
        april_1 = await reopened.usage_for_day(GUILD, date(2024, 4, 1))
        assert april_1 == Usage(characters=60, credits_prebuilt=30, credits_cloned=0, requests=2, cache_hits=1)
        assert await reopened.usage_for_month(GUILD, 2024, 3) == march_31
        assert await reopened.usage_for_month(GUILD, 2024, 4) == april_1
        assert await reopened.usage_for_month(GUILD, 2024, 2) == Usage()
        assert (await reopened.usage_for_month(OTHER_GUILD, 2024, 4)).credits == 999
    finally:
        await reopened.close()


async def test_month_sums_cover_first_and_last_day_across_a_year_end(storage: Storage) -> None:
    await record(storage, datetime(2023, 11, 30, 23, 0, tzinfo=UTC), prebuilt=1)
    await record(storage, datetime(2023, 12, 1, 0, 0, tzinfo=UTC), prebuilt=10)
    await record(storage, datetime(2023, 12, 31, 23, 59, tzinfo=UTC), prebuilt=100)
    await record(storage, datetime(2024, 1, 1, 0, 0, tzinfo=UTC), prebuilt=1000)
    assert (await storage.usage_for_month(GUILD, 2023, 11)).credits == 1
    assert (await storage.usage_for_month(GUILD, 2023, 12)).credits == 110
    assert (await storage.usage_for_month(GUILD, 2024, 1)).credits == 1000


async def test_usage_defaults_to_now_in_utc(storage: Storage) -> None:
    before = datetime.now(UTC).date()
    await storage.record_usage(GUILD, characters=12, credits_prebuilt=12, credits_cloned=0, cache_hit=False)
    after = datetime.now(UTC).date()
    days = {before, after}
    total = sum([(await storage.usage_for_day(GUILD, day)).characters for day in days])
    assert total == 12


async def test_concurrent_records_add_up_exactly(database: Database) -> None:
    storage = await Storage.open(database.location)
    at = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
    await asyncio.gather(
        *(
            record(storage, at, characters=7, prebuilt=3, cloned=number % 2, cache_hit=number % 5 == 0)
            for number in range(100)
        )
    )
    await storage.close()
    reopened = await Storage.open(database.location)
    try:
        usage = await reopened.usage_for_day(GUILD, at.date())
        assert usage == Usage(characters=700, credits_prebuilt=300, credits_cloned=50, requests=100, cache_hits=20)
    finally:
        await reopened.close()


@pytest.mark.parametrize("field", ["characters", "credits_prebuilt", "credits_cloned"])
async def test_negative_amounts_are_refused(storage: Storage, field: str) -> None:
    amounts = {"characters": 1, "credits_prebuilt": 1, "credits_cloned": 1, field: -1}
    with pytest.raises(ValueError, match="negative"):
        await storage.record_usage(GUILD, **amounts, cache_hit=False, at=datetime(2024, 1, 1, tzinfo=UTC))
    assert await storage.usage_for_day(GUILD, date(2024, 1, 1)) == Usage()


async def test_naive_time_is_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await record(storage, datetime(2024, 1, 1, 12, 0))
