"""The voice catalogue: every available voice, kept in memory, plus each server's own clones."""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Iterable

from bot.storage import Storage
from bot.unmixr import InvalidRequestError, UnmixrClient, UnmixrError, Voice

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


def _key(name: str) -> str:
    return name.casefold().strip()


class Catalogue:
    """All voices the bot offers, looked up by uuid or name without any upstream call."""

    def __init__(self, client: UnmixrClient, storage: Storage, *, include_openai: bool) -> None:
        self._client = client
        self._storage = storage
        self._categories = tuple(c for c in CATEGORIES if include_openai or c != "openai-voices")
        self._voices: dict[str, Voice] = {}
        self._prebuilt_order: list[str] = []
        self._clones: dict[int, dict[str, Voice]] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the catalogue has been fetched at least once."""
        return self._loaded_at is not None

    @property
    def stale(self) -> bool:
        """Whether the catalogue is due for its periodic refresh."""
        return self._loaded_at is None or time.monotonic() - self._loaded_at > REFRESH_SECONDS

    async def ensure_loaded(self) -> None:
        """Fetch the catalogue if it has never been fetched."""
        if not self.loaded:
            await self.refresh()

    async def refresh(self) -> None:
        """Fetch every category again (one fetch at a time, however many callers ask)."""
        started = self._loaded_at
        async with self._lock:
            if self._loaded_at != started and self._loaded_at is not None:
                return  # another caller refreshed while we waited
            voices: dict[str, Voice] = {}
            prebuilt: list[str] = []
            for category in self._categories:
                try:
                    for voice in await self._list_category(category):
                        if not voice.uuid or voice.is_available is False:
                            continue
                        voices.setdefault(voice.uuid, voice)
                        if category == "prebuilt-voices":
                            prebuilt.append(voice.uuid)
                except UnmixrError as error:
                    if category == "prebuilt-voices":
                        raise
                    log.warning("could not list %s: %s", category, error.message)
            self._voices = voices
            self._prebuilt_order = prebuilt
            self._clones.clear()
            self._loaded_at = time.monotonic()
            log.info("voice catalogue loaded: %d voices", len(voices))

    async def _list_category(self, category: str) -> list[Voice]:
        """Every voice of a category, in the API's order, with the largest page size the API accepts."""
        try:
            return [voice async for voice in self._client.iter_voices(category=category, page_size=PAGE_SIZE)]
        except InvalidRequestError:
            # The reference names no maximum page size: if ours is refused, page with the API's default.
            log.info("page_size=%d refused for %s; using the default page size", PAGE_SIZE, category)
            return [voice async for voice in self._client.iter_voices(category=category, page_size=None)]

    async def guild_clones(self, guild_id: int) -> dict[str, Voice]:
        """This server's cloned voices by uuid (from storage, detailed by the cloned-voice list)."""
        cached = self._clones.get(guild_id)
        if cached is not None:
            return cached
        records = await self._storage.list_cloned_voices(guild_id)
        clones: dict[str, Voice] = {}
        if records:
            wanted = {record.voice_id: record for record in records}
            try:
                async for voice in self._client.iter_cloned_voices(page_size=PAGE_SIZE):
                    if voice.uuid in wanted and voice.is_available is not False:
                        clones[voice.uuid] = voice
            except UnmixrError as error:
                log.warning("could not list cloned voices: %s", error.message)
            for voice_id, record in wanted.items():
                # A clone the list did not show (yet) is still this server's: keep what storage knows.
                clones.setdefault(voice_id, Voice(uuid=voice_id, character=record.name, description=record.description))
        self._clones[guild_id] = clones
        return clones

    def is_clone(self, voice_id: str, guild_id: int) -> bool:
        """Whether the voice is one of this server's clones (charged in cloned-voice credits); memory only."""
        return voice_id in self._clones.get(guild_id, {})

    def add_clone(self, guild_id: int, voice: Voice) -> None:
        """Make a new clone usable in its server at once."""
        self._clones.setdefault(guild_id, {})[voice.uuid] = voice

    async def voices_for(self, guild_id: int | None) -> list[Voice]:
        """Every voice a server may use: its clones first, then the catalogue."""
        await self.ensure_loaded()
        clones = list((await self.guild_clones(guild_id)).values()) if guild_id is not None else []
        return clones + list(self._voices.values())

    async def get(self, uuid: str, guild_id: int | None) -> Voice | None:
        """A voice by uuid, if this server may use it."""
        await self.ensure_loaded()
        if guild_id is not None:
            clone = (await self.guild_clones(guild_id)).get(uuid)
            if clone is not None:
                return clone
        return self._voices.get(uuid)

    async def find(self, query: str, guild_id: int | None) -> Voice | None:
        """A voice by uuid, else by name: exact (clones win ties), then prefix, then substring."""
        query = query.strip()
        if not query:
            return None
        # Unmixr's uuids are lower-case, but a uuid means the same in any case (RFC 4122).
        by_id = await self.get(query, guild_id) or await self.get(query.lower(), guild_id)
        if by_id is not None:
            return by_id
        ranked = rank(query, await self.voices_for(guild_id))
        return ranked[0] if ranked else None

    async def suggest(self, query: str, guild_id: int | None, limit: int = MAX_SUGGESTIONS) -> list[Voice]:
        """Autocomplete suggestions, best match first; without a query, clones then prebuilt voices."""
        voices = await self.voices_for(guild_id)
        if not query.strip():
            return voices[:limit]
        return rank(query, voices)[:limit]

    async def close_names(self, query: str, guild_id: int | None, count: int = 3) -> list[str]:
        """Up to `count` voice names that look like `query`, for an unknown-voice answer."""
        names: dict[str, str] = {}
        for voice in await self.voices_for(guild_id):
            if voice.character:
                names.setdefault(_key(voice.character), voice.character)
        matches = difflib.get_close_matches(_key(query), list(names), n=count, cutoff=0.4)
        return [names[match] for match in matches]

    async def default_voice(self, language: str) -> Voice | None:
        """The first available prebuilt voice for `language`: a native one if any, else one that speaks it."""
        await self.ensure_loaded()
        prebuilt = [self._voices[uuid] for uuid in self._prebuilt_order if uuid in self._voices]
        # A native speaker of the language first, then a multilingual voice that also speaks it.
        for voice in prebuilt:
            if voice.speaks(language, natively=True):
                return voice
        for voice in prebuilt:
            if voice.speaks(language):
                return voice
        return prebuilt[0] if prebuilt else None


def rank(query: str, voices: Iterable[Voice]) -> list[Voice]:
    """Voices whose name matches `query`, ranked exact, prefix, word prefix, then substring."""
    wanted = _key(query)
    scored: list[tuple[int, int, str, Voice]] = []
    seen: set[str] = set()
    for order, voice in enumerate(voices):
        if not voice.character or voice.uuid in seen:
            continue
        name = _key(voice.character)
        if name == wanted:
            score = 0
        elif name.startswith(wanted):
            score = 1
        elif any(word.startswith(wanted) for word in name.replace("(", " ").split()):
            score = 2
        elif wanted in name:
            score = 3
        else:
            continue
        seen.add(voice.uuid)
        # Order keeps clones (listed first) ahead of catalogue voices of the same score.
        scored.append((score, order, name, voice))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [item[3] for item in scored]
