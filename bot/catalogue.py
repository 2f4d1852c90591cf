"""The voice catalogue: every available voice, plus each server's own clones, served from memory.

Look-ups are synchronous and read memory only. What they read is loaded by `prepare` (the first time) and
kept fresh by `refresh` in the background (stale-while-revalidate): a refresh swaps in a complete new copy
and never empties what is being served, so an interaction can always be answered before Unmixr replies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.budget import Clock, utc_now
from bot.storage import Storage
from bot.unmixr import InvalidRequestError, UnmixrClient, UnmixrError, Voice, VoicePage
from bot.voice_index import EMPTY, SUBSTRING, VoiceIndex, rank, similar_names

log = logging.getLogger(__name__)

# Every category of the reference but `clones`: the account's clones are shared by every server,
# so they are offered only to the server that made each one (from storage), never by category.
CATEGORIES = (
    "prebuilt-voices",
    "openai-voices",
    "multilingual-voices",
    "community-shared-voices",
    "animation-voices",
    "child-voices",
    "narration-voices",
    "assistant-voices",
    "audiobook-voices",
    "announcer-voices",
    "gaming-voices",
    "documentary-voices",
    "podcast-voices",
    "advertisement-voices",
    "news-voices",
    "elearning-voices",
    "meditation-voices",
    "chat-voices",
)
PAGE_SIZE = 100
REFRESH_SECONDS = 6 * 3600
MAX_SUGGESTIONS = 25
# Catalogue pages fetched at once: a cold start is a few round trips, not one per category and page.
FETCH_CONCURRENCY = 8
# A page count past this is a malformed answer, not a catalogue.
MAX_PAGES = 1000
# How long a new clone's answer may wait for its details from Unmixr; past this it is offered as it is.
DETAILS_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One complete fetch of the catalogue, swapped in whole so look-ups never see half a refresh."""

    by_category: dict[str, tuple[Voice, ...]]
    index: VoiceIndex
    prebuilt: tuple[Voice, ...]
    languages: tuple[str, ...]
    defaults: dict[str, Voice | None] = field(default_factory=dict)

    @classmethod
    def build(cls, by_category: dict[str, tuple[Voice, ...]]) -> _Snapshot:
        """Index the voices of every category (a CPU-bound step: run it off the event loop)."""
        voices = [voice for listed in by_category.values() for voice in listed]
        languages = sorted({code for voice in voices for code in voice.languages})
        prebuilt = by_category.get("prebuilt-voices", ())
        return cls(by_category, VoiceIndex(voices), prebuilt, tuple(languages))


@dataclass(frozen=True, slots=True)
class _ServerClones:
    """One server's clones: what storage knows of each, detailed by Unmixr's clone list when it has them."""

    known: tuple[Voice, ...]
    index: VoiceIndex


_NO_CLONES = _ServerClones((), EMPTY)


class Catalogue:
    """All voices the bot offers, looked up by uuid or name from memory only."""

    def __init__(self, client: UnmixrClient, storage: Storage, *, include_openai: bool) -> None:
        self._client = client
        self._storage = storage
        self._categories = tuple(c for c in CATEGORIES if include_openai or c != "openai-voices")
        self._snapshot: _Snapshot | None = None
        # The account's clones from /cloned-voice-list/ (None until it has answered once).
        self._account_clones: dict[str, Voice] | None = None
        self._servers: dict[int, _ServerClones] = {}
        # Bumped whenever a server's clones change, so a storage read that raced the change is read again.
        self._versions: dict[int, int] = {}
        # The fetch of the catalogue and the one of the clone list under way, joined by whoever asks meanwhile.
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self._clones_refreshed = False
        self._warming: dict[int, None] = {}  # servers whose clones wait to be read, in order
        self._warmer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Told of every clone list fetched (its voices, and when the fetch began): voices awaited after a /clone
        # that timed out are looked for there (bot/clones.py).
        self.on_clone_list: Callable[[list[Voice], datetime], Coroutine[Any, Any, None]] | None = None
        self.clock: Clock = utc_now

    # ----- state

    @property
    def loaded(self) -> bool:
        """Whether the catalogue has been fetched at least once."""
        return self._snapshot is not None

    def ready(self, guild_id: int | None, user_id: int | None = None) -> bool:
        """Whether `prepare` would use only memory and storage (no Unmixr call) for this server (any member)."""
        return self._snapshot is not None

    def has_server(self, guild_id: int) -> bool:
        """Whether this server's clones are in memory."""
        return guild_id in self._servers

    # ----- loading

    async def prepare(self, guild_id: int | None, user_id: int | None = None) -> None:
        """Load what this server's look-ups need: the catalogue the first time (waiting for Unmixr), its clones."""
        while self._snapshot is None:
            await asyncio.shield(self._start(self._refresh_catalogue, "catalogue"))
        if guild_id is not None and guild_id not in self._servers:
            await self._load_server(guild_id)

    def warm(self, guild_id: int | None) -> None:
        """Read this server's clones into memory in the background, if they are not there (autocomplete's source)."""
        if guild_id is None or guild_id in self._servers or guild_id in self._warming:
            return
        self._warming[guild_id] = None
        # One reader for every server waiting, in turn: a start with thousands of servers is one task, not thousands.
        if self._warmer is None or self._warmer.done():
            self._warmer = self._spawn(self._warm_waiting(), "catalogue-clones")

    async def _warm_waiting(self) -> None:
        while self._warming:
            guild_id = next(iter(self._warming))
            try:
                if guild_id not in self._servers:
                    await self._load_server(guild_id)
            except Exception as error:
                log.log(_level(error), "could not read the clones of server %s: %s", guild_id, error)
            finally:
                self._warming.pop(guild_id, None)

    async def refresh(self) -> None:
        """Fetch the catalogue and the clone list again while the old ones are served; joins a refresh under way.

        Raises when the catalogue could not be fetched (what was served before stays); a clone list that
        cannot be fetched is logged and the clones known from storage stay usable.
        """
        catalogue = self._start(self._refresh_catalogue, "catalogue")
        clones = self._start(self._refresh_clones, "clones")
        # Waiting does not cancel them: a caller that gives up leaves the fetches to finish for the others.
        await asyncio.wait([catalogue, clones])
        if not clones.cancelled() and clones.exception() is not None:
            log.log(_level(clones.exception()), "could not refresh the clones: %s", clones.exception())
        catalogue.result()

    async def refresh_clones(self) -> None:
        """Fetch the account's clone list again, or join the fetch under way; a failure is logged, not raised."""
        await asyncio.shield(self._start(self._refresh_clones, "clones"))

    async def close(self) -> None:
        """Stop every background fetch."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _start(self, fetch: Callable[[], Coroutine[Any, Any, None]], name: str) -> asyncio.Task[None]:
        """The fetch of this name under way, or a new one."""
        task = self._fetches.get(name)
        if task is None or task.done():
            task = self._fetches[name] = self._spawn(fetch(), f"catalogue-{name}")
        return task

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Whoever awaited a fetch got its error and answered or logged it; this only marks it as seen.
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s failed: %s", task.get_name(), task.exception())

    async def _refresh_catalogue(self) -> None:
        previous = self._snapshot.by_category if self._snapshot is not None else {}
        pages = asyncio.Semaphore(FETCH_CONCURRENCY)
        listed = await asyncio.gather(
            *(self._list_category(category, pages) for category in self._categories), return_exceptions=True
        )
        by_category: dict[str, tuple[Voice, ...]] = {}
        unlisted = 0
        for category, result in zip(self._categories, listed, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UnmixrError) or category == "prebuilt-voices":
                    raise result
                # An outage or a refused key is logged by the Unmixr client, once a minute, with its address.
                log.log(_level(result), "could not list %s: %s", category, result.message)
                if category in previous:
                    by_category[category] = previous[category]  # serve what we had rather than nothing
                continue
            voices, skipped = result
            unlisted += skipped + sum(1 for voice in voices if not voice.listable)
            by_category[category] = tuple(voice for voice in voices if voice.listable and voice.is_available)
        _log_unlisted("catalogue", unlisted)
        self._snapshot = await asyncio.to_thread(_Snapshot.build, by_category)
        log.info("voice catalogue loaded: %d voices", len(self._snapshot.index))

    async def _list_category(self, category: str, pages: asyncio.Semaphore) -> tuple[list[Voice], int]:
        """Every voice of a category, in the API's order, with the largest page size the API accepts.

        Also how many entries of its pages were not objects at all (so not even a voice without a uuid).
        """
        size: int | None = PAGE_SIZE
        try:
            async with pages:
                first = await self._client.voice_list(category=category, page_size=size)
        except InvalidRequestError:
            # The reference names no maximum page size: if ours is refused, page with the API's default.
            log.info("page_size=%d refused for %s; using the default page size", PAGE_SIZE, category)
            size = None
            async with pages:
                first = await self._client.voice_list(category=category, page_size=size)
        voices = list(first.results)
        skipped = first.skipped
        if first.next_page is None or not first.results:
            return voices, skipped
        if first.total_page is None or not 1 < first.total_page <= MAX_PAGES:
            # No page count to fan out on: follow the links one page at a time.
            seen = {first.current_page or 1}
            number: int | None = first.next_page
            while number is not None and number not in seen and len(seen) < MAX_PAGES:
                seen.add(number)
                async with pages:
                    page = await self._client.voice_list(category=category, page=number, page_size=size)
                voices.extend(page.results)
                skipped += page.skipped
                number = page.next_page if page.results else None
            return voices, skipped

        async def fetch(number: int) -> VoicePage:
            async with pages:
                return await self._client.voice_list(category=category, page=number, page_size=size)

        for page in await asyncio.gather(*(fetch(number) for number in range(2, first.total_page + 1))):
            voices.extend(page.results)
            skipped += page.skipped
        return voices, skipped

    async def _refresh_clones(self) -> None:
        first, self._clones_refreshed = not self._clones_refreshed, True
        started = self.clock()
        try:
            # Pages stop at an empty page or one that repeats the previous (an API that ignores `page`).
            pages = [page async for page in self._client.cloned_voice_pages(page_size=PAGE_SIZE)]
        except UnmixrError as error:
            log.log(_level(error), "could not list cloned voices: %s", error.message)
        else:
            listed = [voice for page in pages for voice in page.results]
            _log_unlisted("cloned-voice list", sum(page.skipped for page in pages), *listed)
            self._account_clones = {voice.uuid: voice for voice in listed if voice.listable}
            if self.on_clone_list is not None:
                try:
                    await self.on_clone_list(listed, started)
                except Exception:
                    log.exception("looking for awaited clones in the clone list failed")
        for guild_id, server in list(self._servers.items()):
            if first:
                self._servers[guild_id] = self._server_clones(server.known)  # just read: add the details
            else:
                # Read storage again: another process sharing the database may have cloned meanwhile.
                await self._load_server(guild_id)

    async def _load_server(self, guild_id: int) -> None:
        """Read this server's clones from storage and put them in memory."""
        while True:
            version = self._versions.get(guild_id, 0)
            records = await self._storage.list_cloned_voices(guild_id)
            if self._versions.get(guild_id, 0) == version:
                break
        known = tuple(
            Voice(uuid=record.voice_id, character=record.name, description=record.description) for record in records
        )
        self._servers[guild_id] = self._server_clones(known)

    def _server_clones(self, known: tuple[Voice, ...]) -> _ServerClones:
        if not known:
            return _NO_CLONES
        listed = self._account_clones or {}
        voices: list[Voice] = []
        for voice in known:
            detailed = listed.get(voice.uuid)
            if detailed is not None and not detailed.is_available:
                continue
            # A clone the list does not show (yet) is still this server's: use what storage knows.
            voices.append(detailed or voice)
        return _ServerClones(known, VoiceIndex(voices))

    def is_clone(self, voice_id: str, guild_id: int) -> bool:
        """Whether the voice is one of this server's clones (charged in cloned-voice credits); memory only."""
        return self._servers.get(guild_id, _NO_CLONES).index.get(voice_id) is not None

    async def add_clone(self, guild_id: int, voice: Voice) -> Voice:
        """Make a new clone usable in its server at once, with what Unmixr says of it (languages, capabilities).

        `voice` is what `/clone-voice/` told (uuid, name, description): usable as it is. Unmixr's details are
        fetched once, within DETAILS_SECONDS; if that fails, the next refresh completes the voice. Returns the
        voice as it is now offered.
        """
        self._put_clone(guild_id, voice, replace=False)
        try:
            async with asyncio.timeout(DETAILS_SECONDS):
                details = await self._client.voice_details(voice.uuid)
        except (UnmixrError, TimeoutError) as error:
            reason = error.message if isinstance(error, UnmixrError) else "no answer in time"
            log.warning("could not fetch the details of the new clone %s: %s", voice.uuid, reason)
            return voice
        # Unmixr's word on everything it says; the uuid, and the name and description if it left them out, ours.
        known: dict[str, str | None] = {"uuid": voice.uuid, "character": details.character or voice.character}
        if details.description is None:
            known["description"] = voice.description
        detailed = details.model_copy(update=known)
        self._put_clone(guild_id, detailed, replace=True)
        return detailed

    def _put_clone(self, guild_id: int, voice: Voice, *, replace: bool) -> None:
        """Put a clone of this server in memory (the catalogue is not fetched); `replace` what the list knew of it."""
        self._versions[guild_id] = self._versions.get(guild_id, 0) + 1
        if self._account_clones is not None:
            if replace:
                self._account_clones[voice.uuid] = voice
            else:
                self._account_clones.setdefault(voice.uuid, voice)
        server = self._servers.get(guild_id)
        if server is not None:
            known = tuple(known for known in server.known if known.uuid != voice.uuid)
            self._servers[guild_id] = self._server_clones((*known, voice))

    # ----- look-ups: memory only

    def _indexes(self, guild_id: int | None) -> list[VoiceIndex]:
        server = self._servers.get(guild_id, _NO_CLONES) if guild_id is not None else _NO_CLONES
        catalogue = self._snapshot.index if self._snapshot is not None else EMPTY
        return [server.index, catalogue]

    def guild_clones(self, guild_id: int) -> list[Voice]:
        """This server's cloned voices (those in memory), oldest first."""
        return list(self._servers.get(guild_id, _NO_CLONES).index)

    def listing(self, category: str | None, guild_id: int | None) -> list[Voice]:
        """One category's voices in Unmixr's order (`prebuilt-voices` when None, as the API defaults), or this
        server's clones for `clones`; memory only, empty while nothing is loaded."""
        if category == "clones":
            return self.guild_clones(guild_id) if guild_id is not None else []
        snapshot = self._snapshot
        return list(snapshot.by_category.get(category or "prebuilt-voices", ())) if snapshot is not None else []

    def voices_for(self, guild_id: int | None) -> list[Voice]:
        """Every voice a server may use: its clones first, then the catalogue."""
        return [voice for index in self._indexes(guild_id) for voice in index]

    def get(self, uuid: str, guild_id: int | None) -> Voice | None:
        """A voice by uuid, if this server may use it."""
        for index in self._indexes(guild_id):
            voice = index.get(uuid)
            if voice is not None:
                return voice
        return None

    def find(self, query: str, guild_id: int | None) -> Voice | None:
        """A voice by uuid (any case), else by name: exact (clones win ties), then prefix, then substring."""
        query = query.strip()
        if not query:
            return None
        # Unmixr's uuids are lower-case, but a uuid means the same in any case (RFC 4122).
        by_id = self.get(query, guild_id) or self.get(query.lower(), guild_id)
        if by_id is not None:
            return by_id
        found = rank(query, self._indexes(guild_id), 1, last_tier=SUBSTRING)
        return found[0] if found else None

    def suggest(self, query: str, guild_id: int | None, limit: int = MAX_SUGGESTIONS) -> list[Voice]:
        """Autocomplete suggestions, best match first; without a query, clones then the catalogue's first voices."""
        indexes = self._indexes(guild_id)
        if not query.strip():
            suggestions: list[Voice] = []
            for index in indexes:
                for voice in index:
                    if len(suggestions) >= limit:
                        return suggestions
                    suggestions.append(voice)
            return suggestions
        return rank(query, indexes, limit)

    def close_names(self, query: str, guild_id: int | None, count: int = 3) -> list[str]:
        """Up to `count` voice names that look like `query`, for an unknown-voice answer."""
        return similar_names(query, self._indexes(guild_id), count)

    def languages(self, guild_id: int | None) -> list[str]:
        """Every language a voice of this server speaks, sorted."""
        catalogue = self._snapshot.languages if self._snapshot is not None else ()
        clones = set() if guild_id is None else {code for v in self.guild_clones(guild_id) for code in v.languages}
        return sorted(clones.union(catalogue)) if clones else list(catalogue)

    def speaks(self, code: str, guild_id: int | None) -> bool:
        """Whether any voice of this server speaks `code` (`en` matches `en-US`)."""
        # Speaking is per language code, so the union of every voice's languages answers for all of them.
        return Voice(other_languages=self.languages(guild_id)).speaks(code)

    def default_voice(self, language: str) -> Voice | None:
        """The first available prebuilt voice for `language`: a native one if any, else one that speaks it."""
        snapshot = self._snapshot
        if snapshot is None:
            return None
        if language not in snapshot.defaults:
            snapshot.defaults[language] = _first_speaker(snapshot.prebuilt, language)
        return snapshot.defaults[language]


def _log_unlisted(where: str, skipped: int, *voices: Voice) -> None:
    """Say once per refresh how many entries were left out: not objects, or voices without a uuid or a name."""
    unlisted = skipped + sum(1 for voice in voices if not voice.listable)
    if unlisted:
        log.warning("left out %d entries of the %s without a uuid or a name", unlisted, where)


def _first_speaker(prebuilt: Iterable[Voice], language: str) -> Voice | None:
    voices = list(prebuilt)
    # A native speaker of the language first, then a multilingual voice that also speaks it.
    for voice in voices:
        if voice.speaks(language, natively=True):
            return voice
    for voice in voices:
        if voice.speaks(language):
            return voice
    return voices[0] if voices else None


def find_in(query: str, voices: Iterable[Voice]) -> Voice | None:
    """The best name match among `voices` (exact, prefix, word prefix, substring), for one-off lists."""
    found = rank(query, [VoiceIndex(voices)], 1, last_tier=SUBSTRING)
    return found[0] if found else None


def _level(error: BaseException | None) -> int:
    """DEBUG for a failure the Unmixr client has logged already (an outage, a refused key), else WARNING."""
    return logging.DEBUG if isinstance(error, UnmixrError) and error.logged_by_client else logging.WARNING
