"""The operator's alerts: the account's credits read at start, every 15 minutes and on /balance, and the
account's daily budget reached."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any, Literal

from bot.budget import BudgetError, Clock, utc_now
from bot.i18n import Message, Text, _, joined
from bot.metrics import Metrics
from bot.storage import Storage
from bot.unmixr import CreditBalance, UnmixrClient, UnmixrError

log = logging.getLogger(__name__)

CHECK_SECONDS = 15 * 60
# After a failed read, try again sooner than the regular interval.
RETRY_SECONDS = 60

AlertKind = Literal["prebuilt", "cloned"]
# Posts a message to the alert channel, in that server's language.
Post = Callable[[Message], Coroutine[Any, Any, None]]


class LowBalanceWatch:
    """Warns the operator when the account runs low: in the log, and once a UTC day per kind in a channel."""

    def __init__(
        self,
        client: UnmixrClient,
        storage: Storage,
        *,
        threshold: int,
        post: Post | None,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._storage = storage
        self._threshold = threshold
        self._post = post
        self._clock = clock

    async def _low(self, balance: CreditBalance) -> list[tuple[AlertKind, int]]:
        low: list[tuple[AlertKind, int]] = []
        if balance.prebuilt_chars < self._threshold:
            low.append(("prebuilt", balance.prebuilt_chars))
        # Cloned-voice credits matter only while this bot has a clone to speak with.
        if balance.cloned_chars < self._threshold and await self._storage.count_cloned_voices() > 0:
            low.append(("cloned", balance.cloned_chars))
        return low

    def _sentence(self, kind: AlertKind, left: int) -> Text:
        if kind == "prebuilt":
            return _(
                "The Unmixr account is low on prebuilt-voice characters: {left} left, under the warning level of "
                "{threshold}; add credits at https://unmixr.com before requests start failing.",
                left=left,
                threshold=self._threshold,
            )
        return _(
            "The Unmixr account is low on cloned-voice characters: {left} left, under the warning level of "
            "{threshold}; add credits at https://unmixr.com before requests start failing.",
            left=left,
            threshold=self._threshold,
        )

    async def check(self, balance: CreditBalance | None = None) -> list[Text]:
        """Read the balance (unless given), log and post what is low; return one warning sentence per kind."""
        if balance is None:
            balance = await self._client.credit_balance()
        if self._metrics is not None:
            self._metrics.balance(prebuilt=balance.prebuilt_chars, voice_cloning=balance.cloned_chars)
        found: list[Text] = []
        for kind, left in await self._low(balance):
            sentence = self._sentence(kind, left)
            found.append(sentence)
            log.warning("%s", sentence)
            await self._alert(kind, sentence)
        return found

    async def _alert(self, kind: AlertKind, sentence: Text) -> None:
        if self._post is None:
            return
        # Recorded in the database first, so however many processes see it, one message is posted a day.
        day = self._clock().date()
        if not await self._storage.claim_alert(kind, day):
            return
        try:
            await self._post(joined(["⚠️ ", sentence]))
        except Exception as error:
            # Not lost: the claim is given back, so the next check (or another process) posts it.
            log.warning("could not post the low-balance alert, it will be tried again: %s", error)
            await self._storage.release_alert(kind, day)

    async def run(self) -> None:
        """Check at start, then every 15 minutes, for as long as the bot runs."""
        while True:
            try:
                await self.check()
            except UnmixrError as error:
                # An outage or a refused key is reported once a minute by the Unmixr client, with its address.
                log.log(
                    logging.DEBUG if error.logged_by_client else logging.WARNING,
                    "could not read the credit balance: %s",
                    error.message,
                )
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await asyncio.sleep(CHECK_SECONDS)


class AccountLimitAlert:
    """Tells the operator that ACCOUNT_DAILY_BUDGET refused a request: in the log, and once a UTC day (across
    every process, recorded in the database) in the alert channel."""

    KIND = "account-budget"

    def __init__(self, storage: Storage, *, post: Post | None, clock: Clock = utc_now) -> None:
        self._storage = storage
        self._post = post
        self._clock = clock
        self._logged: date | None = None

    async def __call__(self, refused: BudgetError) -> None:
        """Log the day's first refusal in this process; post the day's first across all processes."""
        if refused.frees_at is None:
            return  # a request larger than the whole day's limit: the limit itself was not reached
        day = self._clock().date()
        when = f"<t:{int(refused.frees_at.timestamp())}:R>"
        sentence = _(
            "The bot reached ACCOUNT_DAILY_BUDGET, its limit of {budget} credits a day for all servers "
            "together: until 00:00 UTC ({when}) every request that does not fit in what is left is refused; raise "
            "the limit if it is too low.",
            budget=str(refused.budget),
            when=when,
        )
        if self._logged != day:
            self._logged = day
            log.warning(
                "The bot reached ACCOUNT_DAILY_BUDGET (%d credits a day): what does not fit is refused until 00:00 UTC",
                refused.budget,
            )
        if self._post is None or not await self._storage.claim_alert(self.KIND, day):
            return
        try:
            await self._post(joined(["⚠️ ", sentence]))
        except Exception as error:
            log.warning("could not post the account-limit alert: %s", error)
