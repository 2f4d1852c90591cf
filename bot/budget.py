"""Credit guards: the one door every paid request passes. Budgets are checked and credits held before anything
is spent; each chunk then settles its hold with what Unmixr charged, or gives it back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from bot.errors import UserFacingError
from bot.i18n import Text, _, command, counted
from bot.metrics import Metrics
from bot.resolution import SOURCE_LABELS
from bot.storage import BudgetExceededError, Storage
from bot.unmixr import CreditUsage

log = logging.getLogger(__name__)
T = TypeVar("T")

BudgetSource = Literal["server", "operator", "default"]
Period = Literal["day", "hour"]
Clock = Callable[[], datetime]
# How long the ledger row of a request that nothing could refuse stays in memory before it is written: long enough
# for a one-chunk answer to go out first, so the row is written once, after it, with what the request spent.
LEDGER_WRITE_DELAY_SECONDS = 0.05


def utc_now() -> datetime:
    """The current time in UTC (the clock budgets use unless a test gives another)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Budget:
    """One effective budget in credits (None = unlimited) and the level it came from."""

    limit: int | None
    source: BudgetSource

    def amount(self, period: Period) -> Text:
        """The budget as a short phrase, such as "5,000 credits a day", or "unlimited"."""
        if self.limit is None:
            return _("unlimited")
        if period == "day":
            return counted(self.limit, "{count} credit a day", "{count} credits a day")
        return counted(self.limit, "{count} credit an hour", "{count} credits an hour")

    def describe(self, period: Period) -> Text:
        """The budget and where it comes from, such as "5,000 credits a day (server setting)"."""
        return _("{amount} ({source})", amount=self.amount(period), source=SOURCE_LABELS[self.source])


def effective_budget(server_value: int | None, operator_value: int | None) -> Budget:
    """A server may set a lower budget than the operator's, never a higher one."""
    if server_value is not None and (operator_value is None or server_value <= operator_value):
        return Budget(server_value, "server")
    if operator_value is not None:
        return Budget(operator_value, "operator")
    return Budget(None, "default")


class BudgetError(UserFacingError):
    """A request would pass a budget (the server's daily, the member's hourly, the account's daily, or a user
    install's: the user's daily or every user's together); nothing was spent."""

    def __init__(self, refused: BudgetExceededError, *, user_install: bool = False) -> None:
        self.kind = refused.kind
        self.budget = refused.budget
        self.frees_at = refused.frees_at
        values: dict[str, object] = {
            "amount": refused.amount,
            "budget": refused.budget,
            "left": max(refused.budget - refused.used, 0),
            # A Discord timestamp, which each member's client shows in their own language and time zone.
            "when": f"<t:{int(refused.frees_at.timestamp())}:R>" if refused.frees_at is not None else "",
        }
        # One whole sentence for each case, so each can be translated as it is.
        if user_install:
            message = _user_install_refusal(refused, values)
        elif refused.kind == "account" and refused.frees_at is None:
            # Every server's use together: nothing an admin can change, so the answer names the operator's setting.
            message = _(
                "This needs {amount} credits but the bot operator's daily limit is {budget} credits for all "
                "servers together, so it can never fit; shorten the text, or the bot's operator can raise "
                "ACCOUNT_DAILY_BUDGET.",
                **values,
            )
        elif refused.kind == "account":
            message = _(
                "That would pass the bot operator's daily limit of {budget} credits for all servers together "
                "({left} left, this needs {amount}); it frees up {when}, or the bot's operator can raise "
                "ACCOUNT_DAILY_BUDGET.",
                **values,
            )
        elif refused.kind == "server" and refused.frees_at is None:
            message = _(
                "This needs {amount} credits but this server's budget is {budget} credits a day, so it can never "
                "fit; shorten the text, or ask an admin to raise {command}.",
                command=command("settings budget"),
                **values,
            )
        elif refused.kind == "server":
            message = _(
                "That would pass this server's budget of {budget} credits a day ({left} left, this needs {amount}); "
                "it frees up {when}, or ask an admin to raise {command}.",
                command=command("settings budget"),
                **values,
            )
        elif refused.frees_at is None:
            message = _(
                "This needs {amount} credits but your budget in this server is {budget} credits an hour, so it can "
                "never fit; shorten the text, or ask an admin to raise {command}.",
                command=command("settings member-budget"),
                **values,
            )
        else:
            message = _(
                "That would pass your budget in this server of {budget} credits an hour ({left} left, this needs "
                "{amount}); it frees up {when}, or ask an admin to raise {command}.",
                command=command("settings member-budget"),
                **values,
            )
        super().__init__(message)


def _user_install_refusal(refused: BudgetExceededError, values: dict[str, object]) -> Text:
    """The refusal of a request made through a user's own install (PRODUCT.md, Reach: user installs)."""
    never = refused.frees_at is None
    if refused.kind == "user" and never:
        return _(
            "This needs {amount} credits but your daily limit for this app in DMs and servers without it is "
            "{budget} credits, so it can never fit; shorten the text.",
            **values,
        )
    if refused.kind == "user":
        return _(
            "That would pass your daily limit of {budget} credits for this app in DMs and servers without it "
            "({left} left, this needs {amount}); it frees up {when}.",
            **values,
        )
    if refused.kind == "users" and never:
        return _(
            "This needs {amount} credits but the bot operator's daily limit for everyone using this app from their "
            "own account is {budget} credits, so it can never fit; shorten the text, or the bot's operator can "
            "raise USER_INSTALL_TOTAL_DAILY_BUDGET.",
            **values,
        )
    if refused.kind == "users":
        return _(
            "That would pass the bot operator's daily limit of {budget} credits for everyone using this app from "
            "their own account ({left} left, this needs {amount}); it frees up {when}, or the bot's operator can "
            "raise USER_INSTALL_TOTAL_DAILY_BUDGET.",
            **values,
        )
    if never:
        return _(
            "This needs {amount} credits but the bot operator's daily limit is {budget} credits for everyone "
            "together, so it can never fit; shorten the text, or the bot's operator can raise ACCOUNT_DAILY_BUDGET.",
            **values,
        )
    return _(
        "That would pass the bot operator's daily limit of {budget} credits for everyone together ({left} left, "
        "this needs {amount}); it frees up {when}, or the bot's operator can raise ACCOUNT_DAILY_BUDGET.",
        **values,
    )


@dataclass(slots=True)
class UnwrittenRow:
    """The ledger row of a request that nothing could refuse, kept in memory until it is written.

    No budget applies to it, so no check reads its hold; changes fold into it, and the row is written once, with
    what the request spent by then (LEDGER_WRITE_DELAY_SECONDS after the hold, or at once when a change cannot
    fold: a charge apart from the row), off the answer's path.
    """

    guild_id: int
    user_id: int | None
    at: datetime
    reserved: int
    characters: int = 0
    credits_prebuilt: int = 0
    credits_cloned: int = 0
    requests: int = 0
    cache_hits: int = 0
    # The process holding its credits (bot/instance.py): a crashed process's written holds are released.
    instance_id: str | None = None

    def fold(
        self,
        *,
        release: int = 0,
        characters: int = 0,
        credits_prebuilt: int = 0,
        credits_cloned: int = 0,
        requests: int = 0,
        cache_hits: int = 0,
        charged_at: datetime | None = None,
    ) -> None:
        """Apply a change as settle_usage would to the written row (its last charge moves it to charged_at)."""
        self.reserved = max(self.reserved - release, 0)
        self.characters += characters
        self.credits_prebuilt += credits_prebuilt
        self.credits_cloned += credits_cloned
        self.requests += requests
        self.cache_hits += cache_hits
        if charged_at is not None:
            self.at = charged_at


class Reservation:
    """Credits held for one request: each chunk settles its hold with the real cost, or releases it.

    Every change is a delta on the request's ledger row, written in the background (kept, and awaited at
    shutdown, by the guard): until one lands the hold still counts, and deltas add up in any order. A chunk
    sent to Unmixr keeps its hold until it settles, even after the request it belongs to failed or stopped.
    When nothing could refuse the request, the row itself waits in memory (UnwrittenRow) and changes fold into
    it until it is written.
    """

    def __init__(
        self,
        storage: Storage,
        ticket: asyncio.Future[int] | UnwrittenRow,
        holds: Mapping[int, int],
        cached: Collection[int],
        *,
        cloned_voice: bool,
        metrics: Metrics | None = None,
        writes: set[asyncio.Task[Any]] | None = None,
        clock: Clock = utc_now,
        holding: set[Reservation] | None = None,
    ) -> None:
        self._storage = storage
        self._metrics = metrics
        self._writes = writes if writes is not None else set()
        self._clock = clock
        # The ledger row's id (its write may still be under way), or the row itself while it waits in memory.
        self._ticket: asyncio.Future[int] | None = None
        self._unwritten: UnwrittenRow | None = None
        if isinstance(ticket, UnwrittenRow):
            self._unwritten = ticket
        else:
            self._ticket = ticket
        self._holds = dict(holds)  # chunk index -> credits held, until the chunk settles or is released
        self._cached = set(cached)  # chunk indexes counted as cache hits when checked
        self._out: set[int] = set()  # chunks sent to Unmixr and not settled yet: their holds stay
        self._cloned_voice = cloned_voice
        # The guard's reservations that still hold credits (settled at shutdown); this one leaves it when done.
        self._holding = holding
        self._closed = False
        if holding is not None and self._holds:
            holding.add(self)

    @property
    def held(self) -> int:
        """Credits still held (estimated, not yet settled or released)."""
        return sum(self._holds.values())

    def counted_as_cached(self, index: int) -> bool:
        """Whether the chunk was in the cache when the request was checked."""
        return index in self._cached

    def sent(self, index: int) -> None:
        """The chunk's request is leaving for Unmixr: from now on only its answer settles its hold."""
        self._out.add(index)

    @property
    def unwritten(self) -> bool:
        """Whether the ledger row still waits in memory (see UnwrittenRow)."""
        return self._unwritten is not None

    def write_row(self) -> asyncio.Future[int]:
        """Start writing the ledger row if it waits in memory; returns its id (a write that may be under way)."""
        row, self._unwritten = self._unwritten, None
        if row is not None:
            self._ticket = _in_background(
                self._storage.insert_usage(
                    row.guild_id,
                    row.user_id,
                    at=row.at,
                    reserved=row.reserved,
                    characters=row.characters,
                    credits_prebuilt=row.credits_prebuilt,
                    credits_cloned=row.credits_cloned,
                    requests=row.requests,
                    cache_hits=row.cache_hits,
                    instance_id=row.instance_id,
                ),
                self._writes,
                name="reserve-usage",
            )
        assert self._ticket is not None
        return self._ticket

    def _write(self, *, apart: bool = False, **deltas: Any) -> asyncio.Task[None] | None:
        if not self._holds and self._holding is not None:
            self._holding.discard(self)
        if self._unwritten is not None and not apart:
            self._unwritten.fold(**deltas)
            return None
        ticket = self.write_row()

        async def write() -> None:
            await self._storage.settle_usage(await ticket, apart=apart, **deltas)

        return _in_background(write(), self._writes, name="settle-usage")

    async def close(self) -> None:
        """The process is stopping: unsent chunks give their holds back, chunks still at Unmixr count as spent.

        Whatever happens to the request afterwards changes nothing more (the database is about to close).
        """
        if self._closed:
            return
        for index in sorted(self._out):
            held = self._holds.get(index, 0)
            await self.settle(index, held, None)
        await self.release_all()
        self._closed = True

    async def _written(self, **deltas: Any) -> None:
        task = self._write(**deltas)
        if task is not None:
            await task

    async def settle(self, index: int, characters: int, usage: CreditUsage | None) -> None:
        """The chunk was synthesised: Unmixr's reported cost replaces the hold (the hold itself when unreported)."""
        if self._closed:
            return
        had_hold = index in self._holds
        held = self._holds.pop(index, 0)
        self._out.discard(index)
        if usage is None:
            prebuilt, cloned = (0, held) if self._cloned_voice else (held, 0)
        else:
            prebuilt, cloned = usage.prebuilt, usage.voice_cloning
        if self._metrics is not None:
            self._metrics.spent(prebuilt=prebuilt, voice_cloning=cloned)
        was_cached = index in self._cached
        self._cached.discard(index)
        # Not awaited: the answer does not wait for the bookkeeping.
        self._write(
            release=held,
            characters=characters,
            credits_prebuilt=prebuilt,
            credits_cloned=cloned,
            # A chunk counted as a cached request that had to be synthesised after all (evicted meanwhile).
            requests=0 if was_cached else 1,
            cache_hits=-1 if was_cached else 0,
            # Spending counts from now; the request's row moves here with its last charge, earlier ones apart.
            charged_at=self._clock(),
            apart=not had_hold or bool(self._holds),
        )

    async def cache_hit(self, index: int) -> None:
        """The chunk came from the cache after all (still there, or stored meanwhile): nothing is spent."""
        if index in self._cached or self._closed:
            return
        held = self._holds.pop(index, 0)
        self._cached.add(index)
        await self._written(release=held, requests=1, cache_hits=1)

    async def release(self, index: int) -> None:
        """The chunk was never sent, or got an error answer: its hold is given back."""
        if self._closed:
            return
        self._out.discard(index)
        held = self._holds.pop(index, 0)
        if held:
            await self._written(release=held)

    async def release_all(self) -> None:
        """Give back every hold of a chunk not at Unmixr (the request was dropped or failed).

        A chunk still at Unmixr keeps its hold until it settles: it may be charged, and its hold is what keeps
        the next request from overshooting the budget meanwhile.
        """
        if self._closed:
            return
        released = {index: held for index, held in self._holds.items() if index not in self._out}
        for index in released:
            del self._holds[index]
        held = sum(released.values())
        if held:
            await self._written(release=held)


def _in_background(write: Coroutine[Any, Any, T], writes: set[asyncio.Task[Any]], *, name: str) -> asyncio.Task[T]:
    """Run a ledger write as a task kept in `writes` until it ends (the guard's flush waits for them)."""
    task = asyncio.get_running_loop().create_task(write, name=name)
    writes.add(task)
    task.add_done_callback(_settled)
    task.add_done_callback(writes.discard)
    return task


def _settled(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("recording what a request spent failed", exc_info=task.exception())


class CreditGuard:
    """Checks budgets and holds credits for requests, atomically in the database."""

    def __init__(
        self,
        storage: Storage,
        *,
        server_daily: int | None,
        member_hourly: int | None,
        account_daily: int | None = None,
        user_install_daily: int | None = None,
        user_install_total_daily: int | None = None,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
        on_account_limit: Callable[[BudgetError], Coroutine[Any, Any, None]] | None = None,
        instance_id: str | None = None,
    ) -> None:
        self._storage = storage
        # The process making the holds (bot/instance.py), recorded on each so a crash's holds can be released.
        self.instance_id = instance_id
        self._metrics = metrics
        self._server_daily = server_daily
        self._member_hourly = member_hourly
        self.account_daily = account_daily
        # User installs (PRODUCT.md, Reach): each user's, and every user's together, per UTC day; set together.
        self.user_install_daily = user_install_daily
        self.user_install_total_daily = user_install_total_daily
        self.clock = clock
        # Told (in the background) of every refusal for the account's budget: the operator's alert.
        self._on_account_limit = on_account_limit
        self._writes: set[asyncio.Task[Any]] = set()
        self._holding: set[Reservation] = set()
        # Reservations whose ledger row still waits in memory (UnwrittenRow), until their row's write starts.
        self._unwritten: set[Reservation] = set()

    async def flush(self) -> None:
        """Wait until every ledger row and settlement is written (before the storage closes, and for tests)."""
        for reservation in list(self._unwritten):
            self._write_row(reservation)
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    @property
    def holding(self) -> int:
        """How many reservations still hold credits."""
        return len(self._holding)

    async def close(self) -> None:
        """At shutdown: give back every hold of a chunk not sent, count chunks still at Unmixr as spent, and wait
        until all of it is written (PRODUCT.md, Continuity: queued clips are not restored)."""
        while self._holding:
            for reservation in list(self._holding):
                self._holding.discard(reservation)
                await reservation.close()
        await self.flush()

    def _write_row(self, reservation: Reservation) -> None:
        self._unwritten.discard(reservation)
        reservation.write_row()

    async def budgets(self, guild_id: int) -> tuple[Budget, Budget]:
        """The server's effective daily budget and its members' effective hourly budget."""
        server = await self._storage.get_guild_settings(guild_id)
        return (
            effective_budget(server.budget, self._server_daily),
            effective_budget(server.member_budget, self._member_hourly),
        )

    def operator_limit(self, kind: Literal["server", "member"]) -> int | None:
        """The operator's budget of that kind, the most a server may set."""
        return self._server_daily if kind == "server" else self._member_hourly

    async def reserve(
        self,
        *,
        guild_id: int | None,
        user_id: int | None,
        holds: Mapping[int, int],
        cached: Collection[int],
        cloned_voice: bool,
    ) -> Reservation:
        """Hold `holds` (credits by chunk) for one request, or raise BudgetError saying which budget and when.

        `cached` chunks are counted as cache hits: free, and never refused. Without `guild_id` the request comes
        through the user's own install (a DM, a group DM or a server without the bot): it is charged to the user's
        daily budget and to every user's together, never to a server's.
        """
        if guild_id is None:
            assert user_id is not None
            return await self._reserve_user_install(user_id, holds, cached)
        server_budget, member_budget = await self.budgets(guild_id)
        amount = sum(holds.values())
        at = self.clock()
        unchecked = server_budget.limit is None and member_budget.limit is None and self.account_daily is None
        ticket: asyncio.Future[int] | UnwrittenRow
        if unchecked:
            # Nothing can refuse it, and no check reads its hold: the row waits in memory and is written once,
            # after the answer (a one-chunk reply is out within the delay), with what the request spent by then.
            ticket = UnwrittenRow(
                guild_id,
                user_id,
                at,
                amount,
                requests=len(cached),
                cache_hits=len(cached),
                instance_id=self.instance_id,
            )
        else:
            written = self._storage.reserve_usage(
                guild_id,
                user_id,
                amount=amount,
                cache_hits=len(cached),
                server_budget=server_budget.limit,
                member_budget=member_budget.limit,
                account_budget=self.account_daily,
                at=at,
                instance_id=self.instance_id,
            )
            if amount == 0:
                # Nothing to refuse: the ledger row is written while the answer gets under way.
                ticket = _in_background(written, self._writes, name="reserve-usage")
            else:
                ticket = asyncio.get_running_loop().create_future()
                try:
                    ticket.set_result(await written)
                except BudgetExceededError as refused:
                    error = BudgetError(refused)
                    if refused.kind == "account" and self._on_account_limit is not None:
                        _in_background(self._on_account_limit(error), self._writes, name="account-limit-alert")
                    raise error from None
        reservation = Reservation(
            self._storage,
            ticket,
            holds,
            cached,
            cloned_voice=cloned_voice,
            metrics=self._metrics,
            writes=self._writes,
            clock=lambda: self.clock(),
            holding=self._holding,
        )
        if unchecked:
            self._unwritten.add(reservation)
            asyncio.get_running_loop().call_later(LEDGER_WRITE_DELAY_SECONDS, self._write_row, reservation)
        return reservation

    async def _reserve_user_install(
        self, user_id: int, holds: Mapping[int, int], cached: Collection[int]
    ) -> Reservation:
        if self.user_install_daily is None or self.user_install_total_daily is None:
            # Only interactions of an app registered for user installs get here; the tree refuses them when off.
            raise RuntimeError("user installs are off: no budget to charge this request to")
        ticket: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            ticket.set_result(
                await self._storage.reserve_user_install_usage(
                    user_id,
                    amount=sum(holds.values()),
                    cache_hits=len(cached),
                    user_budget=self.user_install_daily,
                    total_budget=self.user_install_total_daily,
                    account_budget=self.account_daily,
                    at=self.clock(),
                    instance_id=self.instance_id,
                )
            )
        except BudgetExceededError as refused:
            error = BudgetError(refused, user_install=True)
            if refused.kind == "account" and self._on_account_limit is not None:
                _in_background(self._on_account_limit(error), self._writes, name="account-limit-alert")
            raise error from None
        # Clones are a server's: a user install never speaks with one.
        return Reservation(
            self._storage,
            ticket,
            holds,
            cached,
            cloned_voice=False,
            metrics=self._metrics,
            writes=self._writes,
            clock=lambda: self.clock(),
            holding=self._holding,
        )

    async def account_usage(self) -> int:
        """What every server and the operator spent today (UTC), plus every hold open now."""
        return await self._storage.account_usage(self.clock().date())
