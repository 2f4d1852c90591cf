"""What user installs keep in the database (PRODUCT.md, Reach), on SQLite and PostgreSQL: a user's account-wide
preferences, and their spending in the usage ledger against their daily budget, every user's, and the account's."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.storage import USER_INSTALLS, BudgetExceededError, Storage, UserPreferences
from tests.storage.conftest import Database

USER = 42
OTHER = 43
GUILD = 5
NOON = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


async def charge(storage: Storage, user_id: int, amount: int, *, at: datetime = NOON, **budgets: int) -> int:
    """Reserve `amount` through a user install and charge it at once; return its ticket."""
    limits = {"user_budget": 10_000, "total_budget": 100_000, **budgets}
    ticket = await storage.reserve_user_install_usage(user_id, amount=amount, at=at, **limits)
    await storage.settle_usage(ticket, release=amount, characters=amount, credits_prebuilt=amount, charged_at=at)
    return ticket


async def test_account_wide_preferences_are_set_cleared_and_reset(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:
        assert await storage.get_user_preferences(USER) == UserPreferences(USER)
        assert await storage.set_user_preference(USER, "voice_id", "voice-1") is None
        assert await storage.set_user_preference(USER, "rate", "+10%") is None
        assert await storage.set_user_preference(USER, "voice_id", "voice-2") == "voice-1"
        # Another process (a DM on shard 0, a server on another shard) sees the change at once: nothing is cached.
        other = await Storage.open(database.location)
        try:
            assert await other.get_user_preferences(USER) == UserPreferences(USER, "voice-2", "+10%")
            await other.set_user_preference(USER, "rate", None)
        finally:
            await other.close()
        assert await storage.get_user_preferences(USER) == UserPreferences(USER, "voice-2", None)
        assert await storage.reset_user_preferences(USER) == UserPreferences(USER, "voice-2", None)
        assert (await storage.get_user_preferences(USER)).is_empty()
        # A server's member preferences are apart.
        assert (await storage.get_member_preferences(GUILD, USER)).is_empty()
        with pytest.raises(ValueError, match="unknown preference"):
            await storage.set_user_preference(USER, "nickname", "Uu")
    finally:
        await storage.close()


async def test_a_users_day_refuses_what_would_pass_it_and_says_when_it_frees(storage: Storage) -> None:
    await charge(storage, USER, 60, user_budget=100)
    held = await storage.reserve_user_install_usage(USER, amount=30, user_budget=100, total_budget=1000, at=NOON)
    with pytest.raises(BudgetExceededError) as refused:
        await storage.reserve_user_install_usage(USER, amount=11, user_budget=100, total_budget=1000, at=NOON)
    assert refused.value.kind == "user"
    assert (refused.value.budget, refused.value.used, refused.value.amount) == (100, 90, 11)
    assert refused.value.frees_at == datetime(2024, 6, 16, tzinfo=UTC)
    # Another user has a day of their own; the held request settles for less and leaves room.
    await charge(storage, OTHER, 100, user_budget=100)
    await storage.settle_usage(held, release=30, credits_prebuilt=20, charged_at=NOON)
    await charge(storage, USER, 20, user_budget=100)
    assert await storage.user_install_usage(NOON.date(), USER) == 100
    # A new UTC day starts again; more than the budget can never fit.
    await charge(storage, USER, 100, at=NOON + timedelta(days=1), user_budget=100)
    with pytest.raises(BudgetExceededError) as never:
        await storage.reserve_user_install_usage(USER, amount=101, user_budget=100, total_budget=1000, at=NOON)
    assert never.value.frees_at is None


async def test_every_users_total_and_the_accounts_day_count_user_installs(storage: Storage) -> None:
    await charge(storage, USER, 80, total_budget=150)
    with pytest.raises(BudgetExceededError) as total:
        await storage.reserve_user_install_usage(OTHER, amount=71, user_budget=100, total_budget=150, at=NOON)
    assert (total.value.kind, total.value.used) == ("users", 80)
    # The account's day: servers and user installs together, both ways.
    ticket = await storage.reserve_usage(GUILD, USER, amount=50, account_budget=200, at=NOON)
    await storage.settle_usage(ticket, release=50, credits_prebuilt=50, charged_at=NOON)
    with pytest.raises(BudgetExceededError) as account:
        await storage.reserve_user_install_usage(
            OTHER, amount=71, user_budget=100, total_budget=1000, account_budget=200, at=NOON
        )
    assert (account.value.kind, account.value.used) == ("account", 130)
    with pytest.raises(BudgetExceededError) as server_side:
        await storage.reserve_usage(GUILD, USER, amount=71, account_budget=200, at=NOON)
    assert server_side.value.kind == "account"
    # The user-install spending is nobody's server: /balance of a server never shows it.
    assert (await storage.usage_for_day(GUILD, NOON.date())).credits_prebuilt == 50
    assert (await storage.usage_for_day(USER_INSTALLS, NOON.date())).credits_prebuilt == 80
    assert await storage.user_install_usage(NOON.date()) == 80


async def test_cache_hits_are_never_refused(storage: Storage) -> None:
    await charge(storage, USER, 100, user_budget=100)
    await storage.reserve_user_install_usage(USER, amount=0, cache_hits=2, user_budget=100, total_budget=100, at=NOON)
    assert (await storage.usage_for_day(USER_INSTALLS, NOON.date())).cache_hits == 2


async def test_two_processes_share_the_user_and_the_total_budgets(database: Database) -> None:
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:

        async def one(number: int) -> bool:
            storage = first if number % 2 else second
            try:
                await storage.reserve_user_install_usage(
                    USER + number % 3, amount=70, user_budget=300, total_budget=700, at=NOON
                )
            except BudgetExceededError:
                return False
            return True

        granted = await asyncio.gather(*(one(number) for number in range(40)))
        # Three users of at most 4 x 70 each, and at most 10 x 70 in all: the total decides.
        assert sum(granted) == 10
        assert await first.user_install_usage(NOON.date()) == 700
        for user_id in (USER, USER + 1, USER + 2):
            assert await first.user_install_usage(NOON.date(), user_id) <= 280
    finally:
        await first.close()
        await second.close()
