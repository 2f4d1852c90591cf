"""The voice catalogue against the Unmixr stand-in: loading, lookup by name and uuid, clone scoping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.catalogue import Catalogue
from bot.storage import Storage
from bot.unmixr import UnmixrClient
from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID


@pytest.fixture
async def catalogue(tmp_path) -> AsyncIterator[tuple[Catalogue, FakeUnmixr, Storage]]:
    fake = FakeUnmixr()
    await fake.start()
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    async with aiohttp.ClientSession() as session:
        client = UnmixrClient(session, SecretStr(fake.api_key), base_url=fake.base_url, backoff_base=0.01)
        yield Catalogue(client, storage, include_openai=False), fake, storage
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
