"""Voices awaited from Unmixr: a /clone whose upload timed out after sending may still have made its voice.

PRODUCT.md (Credit guards, Clones): such a /clone keeps its slot and its name reserved. A voice in the cloned-voice
list whose name and description match, created after the upload was sent and recorded by no server, is recorded
for that server: looked for at once, and in every clone list fetched afterwards (the catalogue's refreshes, and a
fetch of our own when the 10 minutes are up). If a list fetched 10 minutes after the upload still lacks it, the
slot and the name are freed; a match appearing later still goes to the server if it has a slot free, else it is
logged at WARNING. Every upload never retried counts toward the account's clone limit, so none is left unowned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from bot.catalogue import Catalogue
from bot.storage import (
    AwaitedClone,
    ClonedVoice,
    ClonedVoiceExistsError,
    CloneNameTakenError,
    CloneQuotaError,
    Storage,
)
from bot.unmixr import UnmixrError, UnmixrTimeoutError, Voice

log = logging.getLogger(__name__)

# A list fetched this long after the upload that still lacks its voice frees the slot.
LIST_AGAIN_SECONDS = 600
# Unmixr's clock and ours may differ a little: a voice dated this much before the upload was sent still counts.
CLOCK_SKEW_SECONDS = 30
# After a check that left something due (the list could not be fetched), the next one waits this long.
RETRY_SECONDS = 60


def may_have_made_it(error: UnmixrError) -> bool:
    """Whether an upload that failed this way may still have made the voice (no answer, or an unreadable one)."""
    return isinstance(error, UnmixrTimeoutError) or error.maybe_charged


def _same(voice: Voice, awaited: AwaitedClone) -> bool:
    # Unmixr keeps an empty description as "" where the upload sent none.
    return (voice.character or "").strip() == awaited.name.strip() and (voice.description or "").strip() == (
        awaited.description or ""
    ).strip()


class AwaitedClones:
    """Finds the voices of /clone uploads that timed out, and frees their slots when they never come."""

    def __init__(self, storage: Storage, catalogue: Catalogue, *, limit: int) -> None:
        self._storage = storage
        self._catalogue = catalogue
        self._limit = limit
        self._wake = asyncio.Event()
        # Slots whose /clone is waiting for the first look, and what that look recorded for them.
        self._waiting: set[str] = set()
        self._recorded: dict[str, ClonedVoice] = {}
        catalogue.on_clone_list = self.seen

    def now(self) -> datetime:
        """The clock the clone list's fetches are dated by (the catalogue's)."""
        return self._catalogue.clock()

    async def timed_out(self, slot_id: str, sent_at: datetime) -> ClonedVoice | None:
        """The upload in `slot_id`, sent at `sent_at`, got no answer: keep its slot and look for its voice now.

        Returns the voice if the clone list already has it (now recorded for the server), else None: the slot
        and the name stay reserved until it appears or a list fetched 10 minutes after `sent_at` lacks it.
        """
        await self._storage.await_clone(slot_id, sent_at)
        self._wake.set()
        self._waiting.add(slot_id)
        try:
            await self._catalogue.refresh_clones()
            return self._recorded.pop(slot_id, None)
        finally:
            self._waiting.discard(slot_id)
            self._recorded.pop(slot_id, None)

    async def seen(self, listed: list[Voice], fetched_at: datetime) -> None:
        """Look for every awaited voice in a clone list whose fetch began at `fetched_at`."""
        awaited = await self._storage.awaited_clones()
        claimed: set[str] = set()
        for clone in awaited:  # oldest upload first: it has the first claim on a voice that matches several
            voice = await self._match(clone, listed, claimed)
            if voice is not None:
                claimed.add(voice.uuid)
                await self._adopt(clone, voice)
            elif clone.lapsed_at is None and fetched_at >= clone.sent_at + timedelta(seconds=LIST_AGAIN_SECONDS):
                if await self._storage.lapse_clone(clone.slot_id, at=fetched_at):
                    log.info(
                        "the voice of a /clone in server %s that timed out (%r) is not in Unmixr's list 10 minutes "
                        "later: its slot and name are free again",
                        clone.guild_id,
                        clone.name,
                    )

    async def _match(self, clone: AwaitedClone, listed: list[Voice], claimed: set[str]) -> Voice | None:
        earliest = clone.sent_at - timedelta(seconds=CLOCK_SKEW_SECONDS)
        candidates = sorted(
            (
                voice
                for voice in listed
                if voice.uuid
                and voice.uuid not in claimed
                and voice.date_created is not None
                and voice.date_created >= earliest
                and _same(voice, clone)
            ),
            key=lambda voice: (voice.date_created, voice.uuid),
        )
        for voice in candidates:
            if await self._storage.get_cloned_voice(voice.uuid) is None:
                return voice
        return None

    async def _adopt(self, clone: AwaitedClone, voice: Voice) -> None:
        try:
            recorded = await self._storage.adopt_clone(clone, voice.uuid, self._limit)
        except ClonedVoiceExistsError:
            return  # another process recorded it meanwhile
        except (CloneQuotaError, CloneNameTakenError) as refused:
            reason = "no clone slot free" if isinstance(refused, CloneQuotaError) else "another clone of that name"
            log.warning(
                "Unmixr made the voice %s (%r) of a /clone in server %s that timed out, after its slot was freed; "
                "the server now has %s, so it is not recorded: delete the voice at Unmixr, or raise "
                "MAX_CLONES_PER_SERVER and clone it again",
                voice.uuid,
                clone.name,
                clone.guild_id,
                reason,
            )
            return
        if recorded is None:
            return  # another process settled this upload first
        if clone.slot_id in self._waiting:
            self._recorded[clone.slot_id] = recorded
        await self._catalogue.add_clone(clone.guild_id, voice)
        log.info(
            "recorded the voice %s (%r) for server %s: Unmixr made it although its /clone timed out",
            voice.uuid,
            clone.name,
            clone.guild_id,
        )

    async def run(self) -> None:
        """Fetch the clone list when an awaited voice's 10 minutes are up, for as long as the bot runs."""
        while True:
            self._wake.clear()
            try:
                due = [
                    clone.sent_at + timedelta(seconds=LIST_AGAIN_SECONDS)
                    for clone in await self._storage.awaited_clones()
                    if clone.lapsed_at is None
                ]
                if not due:
                    await self._wake.wait()
                    continue
                wait = (min(due) - self.now()).total_seconds()
                if wait > 0:
                    await self._sleep(wait + 1)
                    continue
                await self._catalogue.refresh_clones()
            except Exception:
                log.exception("looking for awaited clones failed")
            await self._sleep(RETRY_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        # A new upload that timed out wakes the loop to consider its deadline.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
