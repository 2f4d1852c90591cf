"""The voice catalogue against the Unmixr stand-in: loading, look-ups by name and uuid, clone scoping, and
serving from memory while Unmixr is slow (stale-while-revalidate)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.catalogue import CATEGORIES, Catalogue
from bot.storage import Storage
from bot.unmixr import UnmixrClient, UnmixrError, Voice
from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID


@pytest.fixture
async def catalogue(tmp_path) -> AsyncIterator[tuple[Catalogue, FakeUnmixr, Storage]]:
    fake = FakeUnmixr()
    await fake.start()
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    async with aiohttp.ClientSession() as session:
        client = UnmixrClient(session, SecretStr(fake.api_key), base_url=fake.base_url, backoff_base=0.01)
        voices = Catalogue(client, storage, include_openai=False)
        yield voices, fake, storage
        await voices.close()
    await storage.close()
    await fake.close()


async def test_loads_every_available_voice_but_openai_without_a_key(catalogue) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(None)
    names = {voice.character for voice in voices.voices_for(None)}
    assert {"Brian", "Jenny", "Amelie"} <= names
    assert "Retired Voice" not in names
    assert "Alloy" not in names
    requested = [r.query.get("c") for r in fake.requests if r.endpoint == "/voice-list/"]
    assert "openai-voices" not in requested and "clones" not in requested


async def test_a_refused_page_size_falls_back_to_the_default(catalogue) -> None:
    voices, fake, _storage = catalogue
    fake.fail_next(400, endpoint="/voice-list/", body={"detail": "page_size too large"})
    await voices.prepare(None)
    assert voices.find("Brian", None).uuid == BRIAN_ID
    listed = [r for r in fake.requests if r.endpoint == "/voice-list/"]
    refused = next(r for r in listed if r.status == 400)
    assert refused.query.get("page_size") == "100"
    again = [r for r in listed if r.query.get("c") == refused.query.get("c") and r is not refused]
    # That category was fetched again, every page at the API's default size.
    assert again and all("page_size" not in r.query for r in again)


async def test_lookup_by_uuid_exact_name_prefix_and_substring(catalogue) -> None:
    voices, _fake, _storage = catalogue
    await voices.prepare(None)
    assert voices.find(BRIAN_ID.upper(), None).character == "Brian"
    assert voices.find("brian", None).character == "Brian"
    assert voices.find("Steff", None).character == "Steffan (Express)"
    assert voices.find("xpress", None).character == "Steffan (Express)"
    assert voices.find("no such voice at all", None) is None
    assert voices.default_voice("fr-FR").character == "Amelie"


async def test_a_clone_belongs_to_the_server_that_made_it(catalogue) -> None:
    voices, fake, storage = catalogue
    fake.clones.append({**fake.voices[0], "uuid": "clone-1", "character": "Brian", "language": "en"})
    await storage.add_cloned_voice("clone-1", 1, "Brian", None, 42)
    await voices.prepare(1)
    await voices.prepare(2)
    # In its own server the clone wins the exact-name tie; elsewhere it does not exist.
    assert voices.find("Brian", 1).uuid == "clone-1"
    assert voices.find("Brian", 2).uuid == BRIAN_ID
    assert voices.get("clone-1", 2) is None
    assert voices.suggest("Bri", 1)[0].uuid == "clone-1"


def names(voices: Catalogue, guild_id: int | None = None) -> set[str]:
    """Every voice name the catalogue serves now."""
    return {voice.character for voice in voices.voices_for(guild_id)}


async def test_nothing_is_offered_before_the_first_load(catalogue) -> None:
    voices, fake, _storage = catalogue
    assert voices.suggest("bri", 1) == [] and voices.suggest("", 1) == []
    assert voices.find("Brian", 1) is None and voices.default_voice("en-US") is None
    assert fake.requests == []  # looking up never fetches anything


async def test_concurrent_first_look_ups_share_one_load(catalogue) -> None:
    voices, fake, _storage = catalogue
    fake.set_latency(0.3, endpoint="/voice-list/")
    await asyncio.gather(*(voices.prepare(guild_id) for guild_id in (None, 1, 2, 3, 4)))
    requested = [r.query.get("c") for r in fake.requests if r.endpoint == "/voice-list/"]
    assert sorted(requested) == sorted(set(requested))  # each category once
    assert voices.find("Jenny", 1) is not None


async def test_a_refresh_serves_the_old_catalogue_until_the_new_one_is_complete(catalogue) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(None)
    jenny = next(voice for voice in fake.voices if voice["character"] == "Jenny")
    jenny["character"] = "Jenna"
    fake.set_latency(0.5, endpoint="/voice-list/")
    refresh = asyncio.create_task(voices.refresh())
    await asyncio.sleep(0.2)
    assert not refresh.done()
    assert voices.find("Jenny", None) is not None and voices.find("Jenna", None) is None
    await refresh
    assert voices.find("Jenna", None) is not None and voices.find("Jenny", None) is None


async def test_a_failed_refresh_never_empties_what_is_served(catalogue) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(None)
    before = names(voices)
    # Three categories fail (which ones depends on the order the requests arrive in): a failed category
    # keeps its voices, and if prebuilt-voices is among them the refresh fails and everything stays.
    fake.fail_next(500, 3, endpoint="/voice-list/")
    with contextlib.suppress(UnmixrError):
        await voices.refresh()
    assert names(voices) == before
    fake.set_latency(0.3, endpoint="/voice-list/")
    fake.fail_next(500, len(CATEGORIES), endpoint="/voice-list/")
    with pytest.raises(UnmixrError):
        await voices.refresh()
    assert names(voices) == before
    assert voices.default_voice("en-US") is not None


async def test_clones_known_from_storage_are_usable_before_the_clone_list_answers(catalogue) -> None:
    voices, fake, storage = catalogue
    fake.clones.append({**fake.voices[0], "uuid": "clone-1", "character": "Quill", "language": "de"})
    await storage.add_cloned_voice("clone-1", 1, "Quill", "a clone", 42)
    fake.hang_next(endpoint="/cloned-voice-list/")
    refresh = asyncio.create_task(voices.refresh())
    await voices.prepare(1)
    listing = [r for r in fake.requests if r.endpoint == "/cloned-voice-list/"]
    assert listing and all(r.finished_at is None for r in listing) and not refresh.done()
    quill = voices.find("quill", 1)
    assert quill is not None and quill.uuid == "clone-1" and quill.language is None  # what storage knows
    assert voices.find("quill", 2) is None
    refresh.cancel()


async def test_the_clone_list_details_clones_and_drops_unavailable_ones(catalogue) -> None:
    voices, fake, storage = catalogue
    fake.clones.append({**fake.voices[0], "uuid": "clone-1", "character": "Quill", "language": "de"})
    await storage.add_cloned_voice("clone-1", 1, "Quill", "a clone", 42)
    await voices.prepare(1)
    await voices.refresh()
    assert voices.get("clone-1", 1).language == "de"
    fake.clones[0]["is_available"] = False
    await voices.refresh()
    assert voices.get("clone-1", 1) is None


async def test_a_new_clone_is_added_without_fetching_anything(catalogue) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(1)
    before = len(fake.requests)
    voices.add_clone(1, Voice(uuid="clone-2", character="Nell"))
    assert voices.find("Nell", 1).uuid == "clone-2"
    assert [voice.uuid for voice in voices.suggest("ne", 1)][:1] == ["clone-2"]
    assert voices.find("Nell", 2) is None
    assert len(fake.requests) == before
