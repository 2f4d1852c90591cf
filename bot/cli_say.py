"""`python -m bot say`: the operator's /say, through the bot's own speech service, budget door and audio cache.

The operator's requests are planned, reserved and synthesised exactly as a member's /say is (SpeechService), so the
same checks answer with the same sentences, and the audio cache is shared: a repeat costs nothing and makes no
upstream call. They are recorded in the usage ledger under the reserved id 0 (no Discord server or user has it),
so they never count toward a server's budget or show in its /balance; the server and member budgets do not limit
them. They spend the account's credits like any server, though: they count toward ACCOUNT_DAILY_BUDGET, which
refuses them too once the day's limit is reached (`ACCOUNT_DAILY_BUDGET=` for one run goes past it on purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp

from bot.audio import AudioCache
from bot.audio.shared_tier import shared_tier
from bot.budget import BudgetError, CreditGuard
from bot.catalogue import REFRESH_SECONDS, Catalogue
from bot.errors import TextTooLongError, UnknownVoiceError
from bot.files import write_atomically
from bot.i18n import ReadoutWords
from bot.settings import Settings
from bot.speech import SayOptions, SpeechPlan, SpeechResult, SpeechService
from bot.storage import Storage
from bot.text import NO_NAMES, clean_message
from bot.unmixr import UnmixrClient
from bot.unmixr.client import CLONED_VOICE_LIST_ENDPOINT, VOICE_LIST_ENDPOINT
from bot.wording import counted, number

log = logging.getLogger(__name__)

# The ledger's server and member for the operator's own requests: Discord never gives out id 0.
OPERATOR_ID: Final = 0
FORMATS: Final = ("mp3", "wav")
# Where the catalogue pages a `say` needed are kept, next to the audio they helped make.
SNAPSHOT_NAME: Final = "catalogue-pages.json"
# /say cleans text without cutting it: an over-long text is refused with its length.
_NO_CUT: Final = 1_000_000


class OutputError(Exception):
    """The output file cannot be written or its format cannot be told; `usage` for a bad command line."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


def output_format(path: Path, given: str | None) -> str:
    """The format to write: `--format` when given, else the file's extension (.mp3 or .wav)."""
    if given is not None:
        return given
    extension = path.suffix.lower().removeprefix(".")
    if extension in FORMATS:
        return extension
    raise OutputError(
        f"Cannot tell the audio format from the name {path.name!r}: end it in .mp3 or .wav, or give --format mp3|wav.",
        usage=True,
    )


def check_writable(path: Path) -> None:
    """Refuse, before anything is spent, an output path that cannot be written."""
    if path.is_dir():
        raise OutputError(f"Cannot write {path}: it is a folder; give a file name such as {path / 'speech.mp3'}.")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise OutputError(f"Cannot write {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"Cannot write {path}: permission denied.")


class CatalogueSnapshotClient(UnmixrClient):
    """An Unmixr client that keeps the catalogue pages it fetched on disk for as long as the bot keeps its catalogue.

    A command-line run starts with an empty memory, so without this every `say` would list the whole catalogue
    again. Only voice-list and cloned-voice-list answers are kept; `bypass` fetches them afresh (and keeps the new
    ones), for a voice the snapshot does not know yet.
    """

    _KEPT: Final = frozenset({VOICE_LIST_ENDPOINT, CLONED_VOICE_LIST_ENDPOINT})

    def __init__(self, *args: Any, snapshot: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot_path = snapshot
        self._snapshot_pages: dict[str, dict[str, Any]] | None = None
        # Pages are fetched concurrently: the file is read once, and every page goes into that one copy.
        self._snapshot_lock = asyncio.Lock()
        self._snapshot_changed = False
        self.bypass = False
        self.served_from_snapshot = 0

    async def _get_json(self, endpoint: str, path: str, params: Mapping[str, str]) -> Any:
        if endpoint not in self._KEPT:
            return await super()._get_json(endpoint, path, params)
        pages = await self._load_snapshot()
        key = json.dumps([endpoint, sorted(params.items())])
        kept = pages.get(key)
        if not self.bypass and kept is not None and time.time() - kept["at"] < REFRESH_SECONDS:
            self.served_from_snapshot += 1
            return kept["data"]
        data = await super()._get_json(endpoint, path, params)
        pages[key] = {"at": time.time(), "data": data}
        self._snapshot_changed = True
        return data

    async def _load_snapshot(self) -> dict[str, dict[str, Any]]:
        async with self._snapshot_lock:
            if self._snapshot_pages is None:
                self._snapshot_pages = await asyncio.to_thread(self._read_snapshot)
            return self._snapshot_pages

    def _read_snapshot(self) -> dict[str, dict[str, Any]]:
        try:
            stored = json.loads(self._snapshot_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.debug("ignoring the catalogue snapshot %s: %s", self._snapshot_path, error)
            return {}
        now = time.time()
        if not isinstance(stored, dict):
            return {}
        return {
            key: page
            for key, page in stored.items()
            if isinstance(page, dict) and isinstance(page.get("at"), int | float) and now - page["at"] < REFRESH_SECONDS
        }

    async def save(self) -> None:
        """Write the pages fetched in this run beside the audio cache (a failure only costs a later fetch)."""
        if not self._snapshot_changed or self._snapshot_pages is None:
            return
        encoded = json.dumps(self._snapshot_pages, separators=(",", ":")).encode()
        try:
            await asyncio.to_thread(self._snapshot_path.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(write_atomically, self._snapshot_path, encoded)
        except OSError as error:
            log.debug("could not save the catalogue snapshot: %s", error)


async def say(settings: Settings, args: argparse.Namespace) -> str:
    """Synthesise `args.text` into `args.output`; returns the line to print. Raises on any failure."""
    output = Path(args.output)
    check_writable(output)
    output_type = output_format(output, args.format)
    options = SayOptions(
        voice=args.voice,
        language=args.language,
        rate=args.rate,
        pitch=args.pitch,
        volume=args.volume,
        intensity=args.intensity,
        format=output_type,
    )

    def text(words: ReadoutWords) -> str:
        # Cleaned with the readout words ("link") of the language the clip is spoken in.
        return clean_message(args.text, NO_NAMES, max_length=_NO_CUT, words=words)

    async with aiohttp.ClientSession() as session, await Storage.open(settings.database_location) as storage:
        client = CatalogueSnapshotClient(
            session,
            settings.unmixr_api_key,
            base_url=settings.unmixr_base_url,
            openai_api_key=settings.openai_api_key,
            max_concurrency=settings.unmixr_max_concurrency,
            snapshot=settings.audio_cache_dir / SNAPSHOT_NAME,
        )
        # With DATABASE_URL the shared tier too: a clip the bot paid for is free here, and the other way round.
        shared = shared_tier(storage, settings.audio_cache_db_max_bytes)
        cache = AudioCache(settings.audio_cache_dir, settings.audio_cache_max_bytes, shared=shared)
        catalogue = Catalogue(client, storage, include_openai=settings.openai_api_key is not None)
        # The operator pays the account: server and member budgets are for Discord's members, the account's
        # daily budget is for every spender of the account, this command included.
        guard = CreditGuard(storage, server_daily=None, member_hourly=None, account_daily=settings.account_daily_budget)
        speech = SpeechService(client, cache, storage, catalogue, guard, operator_voice_id=settings.default_voice_id)

        async def plan() -> SpeechPlan:
            return await speech.plan(
                guild_id=OPERATOR_ID, user_id=OPERATOR_ID, text=text, options=options, given_length=len(args.text)
            )

        try:
            planned = await plan()
        except TextTooLongError as error:
            raise OutputError(
                f"That text is {number(error.length)} characters long but one request takes at most "
                f"{number(error.limit)}; "
                "shorten it or split it."
            ) from None
        except UnknownVoiceError:
            if not client.served_from_snapshot:
                raise
            # The kept catalogue may predate the voice: look once more in a fresh one.
            client.bypass = True
            await catalogue.refresh()
            planned = await plan()
        try:
            reservation = await speech.reserve(planned, joined=True)
        except BudgetError as refused:
            raise OutputError(account_refusal(refused)) from None
        try:
            result = await speech.synthesise(planned, reservation)
        finally:
            await reservation.release_all()
            # The cache writes in the background: the next run must find this audio on disk.
            await guard.flush()
            await cache.flush()
            await catalogue.close()
        await client.save()
    try:
        await asyncio.to_thread(functools.partial(write_atomically, output, result.audio, private=False))
    except OSError as error:
        raise OutputError(
            f"Cannot write {output}: {error.strerror or error}; the audio is cached, so running the same command "
            "again costs nothing."
        ) from None
    return describe(output, result)


def account_refusal(refused: BudgetError) -> str:
    """The one line for a run that ACCOUNT_DAILY_BUDGET refuses (the only budget that limits the operator)."""
    if refused.frees_at is None:
        return (
            f"That text needs more credits than ACCOUNT_DAILY_BUDGET allows in a whole day ({refused.budget}); "
            "shorten it, or raise the limit."
        )
    return (
        f"That would pass ACCOUNT_DAILY_BUDGET, the account's limit of {refused.budget} credits a day for every "
        f"server and this command together; it frees up at {refused.frees_at:%Y-%m-%d %H:%M} UTC, or raise the limit."
    )


def describe(output: Path, result: SpeechResult) -> str:
    """The line printed after writing: file, voice, duration and credits (or "from cache")."""
    cost = (
        "from cache, 0 credits" if result.from_cache else counted(result.credits, "{count} credit", "{count} credits")
    )
    line = f"Wrote {output}: {result.plan.voice.character}, {result.output_type}, {result.duration:.1f} s, {cost}"
    if result.plan.dropped:
        line += f" (not used with this voice: {', '.join(str(item) for item in result.plan.dropped)})"
    return line
