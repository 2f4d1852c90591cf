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


async def test_a_new_clone_is_usable_at_once_with_its_languages_and_capabilities(catalogue) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(1)
    fake.clones.append(
        {**fake.voices[0], "uuid": "clone-2", "character": "Nell", "language": "en", "other_languages": ["de", "ja"]}
    )
    before = len(fake.requests)
    offered = await voices.add_clone(1, Voice(uuid="clone-2", character="Nell", description="warm"))
    nell = voices.find("Nell", 1)
    assert nell is offered and nell.uuid == "clone-2"
    # Known at once, not at the next refresh: Unmixr's details of the voice were fetched, once.
    assert nell.speaks("de") and nell.speaks("ja-JP")
    assert nell.capabilities == fake.voices[0]["capabilities"]
    assert [r.path for r in fake.requests[before:]] == ["/api/v1/voice/clone-2/"]
    assert [voice.uuid for voice in voices.suggest("ne", 1)][:1] == ["clone-2"]
    assert voices.find("Nell", 2) is None


async def test_a_new_clone_whose_details_cannot_be_fetched_is_usable_as_told(catalogue, caplog) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(1)
    fake.fail_next(404, endpoint="/voice/")
    offered = await voices.add_clone(1, Voice(uuid="clone-3", character="Wren", description="bright"))
    assert voices.find("Wren", 1) is offered
    told = (offered.uuid, offered.character, offered.description, offered.languages)
    assert told == ("clone-3", "Wren", "bright", [])
    assert "could not fetch the details of the new clone clone-3" in caplog.text


async def test_odd_and_extra_fields_lose_no_voice_and_what_cannot_be_listed_is_logged_once(catalogue, caplog) -> None:
    voices, fake, _storage = catalogue
    await voices.prepare(None)
    plain = {voice.uuid: voice for voice in voices.voices_for(None)}
    fake.vary("odd-fields", "extra-fields")
    caplog.clear()
    await voices.refresh()
    odd = {voice.uuid: voice for voice in voices.voices_for(None)}
    assert odd.keys() == plain.keys(), "every voice is still listed; the entries without a uuid or name are not"
    brian = odd[BRIAN_ID]
    # The fields that could be read are kept: languages from locales (one with a null URL), capabilities.
    assert brian.languages == plain[BRIAN_ID].languages
    assert brian.capabilities == plain[BRIAN_ID].capabilities
    assert brian.emotions == [] and brian.gender is None and brian.wpm == plain[BRIAN_ID].wpm
    unlisted = [record.getMessage() for record in caplog.records if "without a uuid or a name" in record.getMessage()]
    # Once per refresh for each list; each list's first page carried three: no uuid, no name, not an object.
    assert sorted(unlisted) == sorted(
        [
            f"left out {3 * len(voices._categories)} entries of the catalogue without a uuid or a name",
            "left out 3 entries of the cloned-voice list without a uuid or a name",
        ]
    )


async def test_one_capability_sent_as_a_string_is_a_list_of_one(catalogue) -> None:
    voices, fake, _storage = catalogue
    fake.voices.append({**fake.voices[0], "uuid": "one-capability", "character": "Solo", "capabilities": ["intensity"]})
    fake.vary("odd-fields")
    await voices.prepare(None)
    assert voices.find("Solo", None).capabilities == ["intensity"]


async def test_the_clone_list_stops_at_a_page_that_repeats_the_previous(catalogue) -> None:
    voices, fake, storage = catalogue
    for index in range(3):
        fake.clones.append({**fake.voices[0], "uuid": f"clone-{index}", "character": f"Clone {index}"})
        await storage.add_cloned_voice(f"clone-{index}", 1, f"Clone {index}", None, 42)
    fake.max_page_size = 1
    fake.vary("ignored-page")  # page 2 is page 1 again, with next_page 2 as before
    await voices.prepare(1)
    await voices.refresh()
    listing = [r for r in fake.requests if r.endpoint == "/cloned-voice-list/"]
    assert [r.query.get("page") for r in listing] == [None, "2"]
    assert voices.get("clone-0", 1).language == fake.voices[0]["language"]  # detailed by the list
    # The others are still this server's, as storage knows them.
    assert {voice.uuid for voice in voices.guild_clones(1)} == {"clone-0", "clone-1", "clone-2"}
