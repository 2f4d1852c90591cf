"""The usage ledger as budgets see it: atomic reservations, settlement, windows, compaction, slots and alerts."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.storage import BudgetExceededError, CloneNameTakenError, CloneQuotaError, Storage, Usage
from bot.storage.backends import open_backend
from bot.storage.migrations import MIGRATIONS, apply_migrations
from tests.storage.conftest import Database

GUILD = 5
MEMBER = 42
OTHER = 43
NOON = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


async def test_a_reservation_counts_against_the_day_until_it_is_settled_with_the_real_cost(storage: Storage) -> None:
    ticket = await storage.reserve_usage(GUILD, MEMBER, amount=100, server_budget=1000, at=NOON)
    day = await storage.usage_for_day(GUILD, NOON.date())
    assert day == Usage(reserved=100)
    assert day.committed == 100 and day.credits == 0

    await storage.settle_usage(ticket, release=100, characters=100, credits_prebuilt=97, requests=1)
    day = await storage.usage_for_day(GUILD, NOON.date())
    assert day == Usage(characters=100, credits_prebuilt=97, requests=1)
    assert day.committed == 97


async def test_the_server_budget_refuses_what_would_pass_it_and_says_when_it_frees(storage: Storage) -> None:
    await storage.reserve_usage(GUILD, MEMBER, amount=600, server_budget=1000, at=NOON)
    await storage.reserve_usage(GUILD, OTHER, amount=400, server_budget=1000, at=NOON)
    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_usage(GUILD, MEMBER, amount=1, server_budget=1000, at=NOON)
    assert refused.value.kind == "server"
    assert (refused.value.budget, refused.value.used, refused.value.amount) == (1000, 1000, 1)
    assert refused.value.frees_at == datetime(2024, 6, 16, tzinfo=UTC)
    # Nothing was held for the refused request.
    assert (await storage.usage_for_day(GUILD, NOON.date())).reserved == 1000


async def test_a_request_larger_than_the_budget_can_never_fit(storage: Storage) -> None:
    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_usage(GUILD, MEMBER, amount=1001, server_budget=1000, at=NOON)
    assert refused.value.frees_at is None
    with pytest.raises(BudgetExceededError) as member:
        await storage.reserve_usage(GUILD, MEMBER, amount=51, member_budget=50, at=NOON)
    assert member.value.kind == "member" and member.value.frees_at is None


async def spend(storage: Storage, guild_id: int, user_id: int, amount: int, at: datetime, **budgets: int) -> int:
    """Reserve `amount` and charge it at once, as a request answered at `at` is; return its ticket."""
    ticket = await storage.reserve_usage(guild_id, user_id, amount=amount, at=at, **budgets)
    await storage.settle_usage(
        ticket, release=amount, characters=amount, credits_prebuilt=amount, requests=1, charged_at=at
    )
    return ticket


async def test_the_server_budget_starts_again_at_utc_midnight(storage: Storage) -> None:
    late = datetime(2024, 6, 15, 23, 59, 59, tzinfo=UTC)
    await spend(storage, GUILD, MEMBER, 1000, late, server_budget=1000)
    with pytest.raises(BudgetExceededError):
        await storage.reserve_usage(GUILD, MEMBER, amount=10, server_budget=1000, at=late)
    await storage.reserve_usage(GUILD, MEMBER, amount=1000, server_budget=1000, at=late + timedelta(seconds=1))


async def test_the_member_budget_is_a_rolling_hour_and_names_when_enough_is_an_hour_old(storage: Storage) -> None:
    await spend(storage, GUILD, MEMBER, 30, NOON, member_budget=100)
    await spend(storage, GUILD, MEMBER, 50, NOON + timedelta(minutes=20), member_budget=100)
    await spend(storage, GUILD, MEMBER, 20, NOON + timedelta(minutes=40), member_budget=100)
    # Other members and other servers have their own windows.
    await spend(storage, GUILD, OTHER, 100, NOON + timedelta(minutes=41), member_budget=100)
    await spend(storage, GUILD + 1, MEMBER, 100, NOON + timedelta(minutes=41), member_budget=100)

    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_usage(GUILD, MEMBER, amount=60, member_budget=100, at=NOON + timedelta(minutes=50))
    # 30 frees at 13:00 (not enough for 60), 30+50 frees at 13:20.
    assert refused.value.kind == "member" and refused.value.used == 100
    assert refused.value.frees_at == NOON + timedelta(minutes=80)

    # At 13:00:01 the first 30 have left the window.
    await storage.reserve_usage(GUILD, MEMBER, amount=30, member_budget=100, at=NOON + timedelta(minutes=60, seconds=1))
    usage = await storage.member_usage(GUILD, MEMBER, at=NOON + timedelta(minutes=61))
    assert usage.committed == 100


async def test_a_hold_counts_in_every_window_until_it_is_charged_and_then_from_the_charge(storage: Storage) -> None:
    late = datetime(2024, 6, 15, 23, 30, tzinfo=UTC)
    held = await storage.reserve_usage(GUILD, MEMBER, amount=60, server_budget=100, member_budget=100, at=late)
    # Two hours later, on the next day, the open hold still counts against the day and the hour.
    later = late + timedelta(hours=2)
    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_usage(GUILD, OTHER, amount=50, server_budget=100, at=later)
    assert refused.value.kind == "server" and refused.value.used == 60
    with pytest.raises(BudgetExceededError) as mine:
        await storage.reserve_usage(GUILD, MEMBER, amount=50, member_budget=100, at=later)
    # Only a hold stands in the way: it counts for an hour once charged, so at the earliest an hour from now.
    assert mine.value.kind == "member" and mine.value.frees_at == later + timedelta(hours=1)
    assert (await storage.usage_for_day(GUILD, later.date())).committed == 60
    assert (await storage.member_usage(GUILD, MEMBER, at=later)).committed == 60

    # Charged then: the day it counts on is the day of the charge, and the hour runs from the charge.
    await storage.settle_usage(held, release=60, characters=60, credits_prebuilt=58, requests=1, charged_at=later)
    assert await storage.usage_for_day(GUILD, late.date()) == Usage()
    assert await storage.usage_for_day(GUILD, later.date()) == Usage(characters=60, credits_prebuilt=58, requests=1)
    with pytest.raises(BudgetExceededError) as still:
        await storage.reserve_usage(GUILD, MEMBER, amount=50, member_budget=100, at=later + timedelta(minutes=59))
    assert still.value.frees_at == later + timedelta(hours=1)
    await storage.reserve_usage(GUILD, MEMBER, amount=50, member_budget=100, at=later + timedelta(minutes=61))


async def test_a_charge_while_other_chunks_hold_is_dated_apart(storage: Storage) -> None:
    late = datetime(2024, 6, 15, 23, 59, 50, tzinfo=UTC)
    after = late + timedelta(seconds=20)
    ticket = await storage.reserve_usage(GUILD, MEMBER, amount=300, cache_hits=1, at=late)
    # The first chunk is charged before midnight, while the second still holds; the second after midnight.
    await storage.settle_usage(
        ticket, release=200, characters=200, credits_prebuilt=190, requests=1, charged_at=late, apart=True
    )
    assert (await storage.usage_for_day(GUILD, late.date())).credits == 190
    assert (await storage.usage_for_day(GUILD, after.date())).reserved == 100
    await storage.settle_usage(ticket, release=100, characters=100, credits_cloned=95, requests=1, charged_at=after)
    assert await storage.usage_for_day(GUILD, late.date()) == Usage(characters=200, credits_prebuilt=190, requests=1)
    # The request's own row (with its chunk served from cache) moved to its last charge.
    assert await storage.usage_for_day(GUILD, after.date()) == Usage(
        characters=100, credits_cloned=95, requests=2, cache_hits=1
    )
    assert (await storage.member_usage(GUILD, MEMBER, at=after)).credits == 285


async def test_the_account_budget_counts_every_server_and_the_operator_together(storage: Storage) -> None:
    await spend(storage, GUILD, MEMBER, 400, NOON, account_budget=1000)
    await spend(storage, 0, 0, 300, NOON, account_budget=1000)  # the operator's own `python -m bot say`
    await storage.reserve_usage(GUILD + 1, OTHER, amount=200, account_budget=1000, at=NOON)  # still held
    assert await storage.account_usage(NOON.date()) == 900
    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_usage(GUILD + 2, OTHER, amount=101, account_budget=1000, at=NOON)
    assert refused.value.kind == "account"
    assert (refused.value.budget, refused.value.used, refused.value.amount) == (1000, 900, 101)
    assert refused.value.frees_at == datetime(2024, 6, 16, tzinfo=UTC)
    with pytest.raises(BudgetExceededError) as never:
        await storage.reserve_usage(GUILD + 2, OTHER, amount=1001, account_budget=1000, at=NOON)
    assert never.value.frees_at is None
    await storage.reserve_usage(GUILD + 2, OTHER, amount=100, account_budget=1000, at=NOON)
    # The next day only the holds still open count.
    tomorrow = NOON + timedelta(days=1)
    assert await storage.account_usage(tomorrow.date()) == 300
    await storage.reserve_usage(GUILD, MEMBER, amount=700, account_budget=1000, at=tomorrow)


async def test_servers_at_once_never_overshoot_the_account_budget(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        results = await asyncio.gather(
            *(
                (first if number % 2 else second).reserve_usage(
                    GUILD + number, MEMBER, amount=70, server_budget=500, account_budget=1000, at=NOON
                )
                for number in range(40)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(result, int) for result in results) == 14  # 14 x 70 = 980
        assert all(isinstance(result, int | BudgetExceededError) for result in results)
        assert await first.account_usage(NOON.date()) == 980
    finally:
        await first.close()
        await second.close()


async def test_cache_hits_are_never_refused_and_cost_nothing(storage: Storage) -> None:
    await storage.reserve_usage(GUILD, MEMBER, amount=10, server_budget=10, member_budget=10, at=NOON)
    await storage.reserve_usage(GUILD, MEMBER, amount=0, cache_hits=3, server_budget=10, member_budget=10, at=NOON)
    day = await storage.usage_for_day(GUILD, NOON.date())
    assert (day.committed, day.cache_hits, day.requests) == (10, 3, 3)


async def test_concurrent_reservations_never_overshoot_the_budget(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:

        async def one() -> bool:
            try:
                await storage.reserve_usage(GUILD, MEMBER, amount=70, server_budget=1000, at=NOON)
            except BudgetExceededError:
                return False
            return True

        granted = await asyncio.gather(*(one() for _ in range(100)))
        assert sum(granted) == 14  # 14 x 70 = 980; a 15th would pass 1000
        assert (await storage.usage_for_day(GUILD, NOON.date())).committed == 980
    finally:
        await storage.close()


async def test_two_connections_share_one_budget(database: Database) -> None:
    # Two processes on one SQLite file: the write transaction is exclusive across connections too.
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        results = await asyncio.gather(
            *(
                (first if number % 2 else second).reserve_usage(GUILD, MEMBER, amount=100, server_budget=1000, at=NOON)
                for number in range(30)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(result, int) for result in results) == 10
        assert all(isinstance(result, int | BudgetExceededError) for result in results)
    finally:
        await first.close()
        await second.close()


async def test_a_release_never_takes_the_hold_below_zero(storage: Storage) -> None:
    ticket = await storage.reserve_usage(GUILD, MEMBER, amount=50, at=NOON)
    await storage.settle_usage(ticket, release=30)
    await storage.settle_usage(ticket, release=30)
    assert (await storage.usage_for_day(GUILD, NOON.date())).reserved == 0


async def test_compaction_keeps_every_sum_and_drops_held_credits_of_old_days(storage: Storage) -> None:
    old = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)
    for member in (MEMBER, OTHER, MEMBER):
        ticket = await storage.reserve_usage(GUILD, member, amount=10, cache_hits=1, at=old)
        await storage.settle_usage(ticket, release=10, characters=10, credits_prebuilt=10, requests=1)
    await storage.reserve_usage(GUILD, MEMBER, amount=99, at=old)  # a process died before settling it
    await storage.record_usage(GUILD, characters=5, credits_prebuilt=0, credits_cloned=5, cache_hit=False, at=old)
    await storage.reserve_usage(GUILD, MEMBER, amount=7, at=NOON)
    before = await storage.usage_for_day(GUILD, old.date())

    removed = await storage.compact_usage(date(2024, 6, 14))
    assert removed == 5
    after = await storage.usage_for_day(GUILD, old.date())
    assert after == Usage(
        characters=before.characters,
        credits_prebuilt=before.credits_prebuilt,
        credits_cloned=before.credits_cloned,
        requests=before.requests,
        cache_hits=before.cache_hits,
    )
    assert (await storage.usage_for_day(GUILD, NOON.date())).reserved == 7
    # A second compaction finds nothing more to merge.
    assert await storage.compact_usage(date(2024, 6, 14)) == 0
    assert await storage.usage_for_day(GUILD, old.date()) == after


async def test_migration_2_moves_the_old_daily_usage_into_the_ledger(database: Database) -> None:
    backend = await open_backend(database.location)
    try:
        await apply_migrations(backend, MIGRATIONS[:1])
        await backend.execute(
            "INSERT INTO usage (guild_id, day, characters, credits_prebuilt, credits_cloned, requests, cache_hits) "
            "VALUES (5, '2024-03-31', 35, 15, 40, 3, 1)"
        )
    finally:
        await backend.close()

    storage = await Storage.open(database.location)
    try:
        assert await storage.usage_for_day(GUILD, date(2024, 3, 31)) == Usage(
            characters=35, credits_prebuilt=15, credits_cloned=40, requests=3, cache_hits=1
        )
        assert (await storage.usage_for_month(GUILD, 2024, 3)).credits == 55
    finally:
        await storage.close()
    row = await database.fetchone("SELECT at, day FROM usage_ledger")
    assert row is not None
    at, day = row
    assert datetime.fromtimestamp(at, UTC) == datetime(2024, 3, 31, tzinfo=UTC) and day == "2024-03-31"


async def test_clone_slots_count_made_clones_and_uploads_in_flight(storage: Storage) -> None:
    await storage.add_cloned_voice("voice-1", GUILD, "One", None, MEMBER)
    first = await storage.take_clone_slot(GUILD, 3)
    second = await storage.take_clone_slot(GUILD, 3)
    with pytest.raises(CloneQuotaError) as full:
        await storage.take_clone_slot(GUILD, 3)
    assert (full.value.count, full.value.limit) == (3, 3)
    # Another server has its own slots.
    await storage.take_clone_slot(GUILD + 1, 3)

    await storage.release_clone_slot(first)
    await storage.add_cloned_voice("voice-2", GUILD, "Two", None, MEMBER, slot_id=second)
    assert await storage.count_cloned_voices(GUILD) == 2
    third = await storage.take_clone_slot(GUILD, 3)
    assert third not in (first, second)
    with pytest.raises(CloneQuotaError):
        await storage.take_clone_slot(GUILD, 3)


async def test_concurrent_slot_takers_get_exactly_the_free_slots(storage: Storage) -> None:
    results = await asyncio.gather(*(storage.take_clone_slot(GUILD, 4) for _ in range(10)), return_exceptions=True)
    assert sum(isinstance(result, str) for result in results) == 4


async def test_a_slot_left_by_a_dead_upload_frees_itself(storage: Storage) -> None:
    await storage.take_clone_slot(GUILD, 1, at=NOON)
    with pytest.raises(CloneQuotaError):
        await storage.take_clone_slot(GUILD, 1, at=NOON + timedelta(minutes=5))
    await storage.take_clone_slot(GUILD, 1, at=NOON + timedelta(minutes=16))


async def test_an_alert_is_claimed_once_a_day_per_kind_across_connections(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        day = date(2024, 6, 15)
        claims = await asyncio.gather(*((first, second)[n % 2].claim_alert("prebuilt", day) for n in range(6)))
        assert sum(claims) == 1
        assert await first.claim_alert("cloned", day)
        assert await second.claim_alert("prebuilt", day + timedelta(days=1))
        assert not await second.claim_alert("cloned", day)
    finally:
        await first.close()
        await second.close()


# Two Storage objects on one database are two processes sharing it: each has its own connections (a pool of
# them on PostgreSQL), so these run truly at once, and only the database's own locks keep them right.


async def test_two_processes_share_a_member_budget(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        results = await asyncio.gather(
            *(
                (first, second)[number % 2].reserve_usage(GUILD, MEMBER, amount=30, member_budget=100, at=NOON)
                for number in range(12)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(result, int) for result in results) == 3
        assert all(isinstance(result, int | BudgetExceededError) for result in results)
        assert (await second.member_usage(GUILD, MEMBER, at=NOON)).committed == 90
    finally:
        await first.close()
        await second.close()


async def test_two_processes_taking_clone_slots_share_the_quota(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        await first.add_cloned_voice("voice-made", GUILD, "Made", None, MEMBER)
        results = await asyncio.gather(
            *((first, second)[number % 2].take_clone_slot(GUILD, 4) for number in range(10)),
            return_exceptions=True,
        )
        assert sum(isinstance(result, str) for result in results) == 3
        assert all(isinstance(result, str | CloneQuotaError) for result in results)
    finally:
        await first.close()
        await second.close()


async def test_two_processes_compacting_at_once_merge_each_row_once(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        old = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)
        for number in range(40):
            guild = GUILD + number % 4
            ticket = await first.reserve_usage(
                guild, MEMBER + number % 3, amount=10, at=old + timedelta(minutes=number)
            )
            await first.settle_usage(ticket, release=10, characters=10, credits_prebuilt=9, requests=1)
        before = [await first.usage_for_day(GUILD + number, old.date()) for number in range(4)]

        removed = await asyncio.gather(first.compact_usage(date(2024, 6, 14)), second.compact_usage(date(2024, 6, 14)))
        assert sorted(removed) == [0, 40]
        assert [await second.usage_for_day(GUILD + number, old.date()) for number in range(4)] == before
        assert await database.fetchone("SELECT COUNT(*) FROM usage_ledger") == (4,)
    finally:
        await first.close()
        await second.close()


async def test_a_clone_slot_reserves_its_name_in_any_case(storage: Storage) -> None:
    await storage.add_cloned_voice("voice-1", GUILD, "Narrator Nell", None, MEMBER)
    with pytest.raises(CloneNameTakenError):
        await storage.take_clone_slot(GUILD, 5, name="NARRATOR NELL")
    uploading = await storage.take_clone_slot(GUILD, 5, name="Otto", created_by=MEMBER)
    with pytest.raises(CloneNameTakenError):
        await storage.take_clone_slot(GUILD, 5, name="otto")
    await storage.take_clone_slot(GUILD + 1, 5, name="Otto")  # another server's names are its own
    assert sorted(await storage.clone_names(GUILD)) == ["Narrator Nell", "Otto"]
    await storage.release_clone_slot(uploading)
    await storage.take_clone_slot(GUILD, 5, name="otto")


async def test_an_awaited_clone_keeps_its_slot_until_it_lapses_and_a_late_voice_needs_a_free_slot(
    storage: Storage,
) -> None:
    sent = NOON
    slot = await storage.take_clone_slot(GUILD, 1, name="Nell", description="Calm", created_by=MEMBER, at=sent)
    await storage.await_clone(slot, sent)
    # Long past the 15 minutes after which an unfinished upload's slot is taken back: an awaited one stays.
    with pytest.raises(CloneQuotaError):
        await storage.take_clone_slot(GUILD, 1, name="Other", at=sent + timedelta(hours=2))
    [awaited] = await storage.awaited_clones()
    assert (awaited.slot_id, awaited.name, awaited.description, awaited.created_by) == (slot, "Nell", "Calm", MEMBER)
    assert awaited.sent_at == sent and awaited.lapsed_at is None

    assert await storage.lapse_clone(slot, at=sent + timedelta(minutes=10))
    assert not await storage.lapse_clone(slot, at=sent + timedelta(minutes=11))
    assert await storage.clone_names(GUILD) == []  # slot and name are free again
    [lapsed] = await storage.awaited_clones()
    assert lapsed.lapsed_at == sent + timedelta(minutes=10)
    other = await storage.take_clone_slot(GUILD, 1, name="Other", at=sent + timedelta(hours=2))

    # Its voice appears while the only slot is taken: refused, and the record dropped (reported once).
    with pytest.raises(CloneQuotaError):
        await storage.adopt_clone(lapsed, "voice-late", 1)
    assert await storage.awaited_clones() == []
    assert await storage.get_cloned_voice("voice-late") is None
    await storage.release_clone_slot(other)


async def test_an_awaited_clone_is_recorded_in_its_own_slot_once(storage: Storage) -> None:
    slot = await storage.take_clone_slot(GUILD, 1, name="Nell", created_by=MEMBER, at=NOON)
    await storage.await_clone(slot, NOON)
    [awaited] = await storage.awaited_clones()
    recorded = await storage.adopt_clone(awaited, "voice-1", 1)
    assert recorded is not None and (recorded.voice_id, recorded.guild_id, recorded.name) == ("voice-1", GUILD, "Nell")
    assert await storage.clone_names(GUILD) == ["Nell"]
    assert await storage.awaited_clones() == []
    # Another process finding the same voice for the same upload records nothing more.
    assert await storage.adopt_clone(awaited, "voice-1", 1) is None
    assert await storage.count_cloned_voices(GUILD) == 1
