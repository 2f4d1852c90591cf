"""Cloned voices: recorded with the server that made them, listed per server."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.storage import ClonedVoice, ClonedVoiceExistsError, CloneNameTakenError, Storage
from tests.storage.conftest import Database

GUILD = 1
OTHER_GUILD = 2
ADMIN = 3
WHEN = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)


async def test_add_get_list_and_survive_a_reopen(database: Database) -> None:
    storage = await Storage.open(database.location)
    first = await storage.add_cloned_voice("uuid-1", GUILD, "Narrator", "warm and slow", ADMIN, WHEN)
    assert first == ClonedVoice("uuid-1", GUILD, "Narrator", "warm and slow", ADMIN, WHEN)
    later = WHEN + timedelta(minutes=5)
    await storage.add_cloned_voice("uuid-2", GUILD, "Host", None, ADMIN, later)
    await storage.add_cloned_voice("uuid-3", OTHER_GUILD, "Secret", None, ADMIN, WHEN)
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        voices = await reopened.list_cloned_voices(GUILD)
        assert [voice.voice_id for voice in voices] == ["uuid-1", "uuid-2"]
        assert voices[0] == first
        assert voices[1].description is None
        assert voices[1].created_at == later
        assert voices[1].created_at.tzinfo is not None
        # Another server's clone is never listed here, but its owner is known.
        assert [voice.voice_id for voice in await reopened.list_cloned_voices(OTHER_GUILD)] == ["uuid-3"]
        found = await reopened.get_cloned_voice("uuid-3")
        assert found is not None and found.guild_id == OTHER_GUILD
        assert await reopened.get_cloned_voice("unknown") is None
        assert await reopened.list_cloned_voices(99) == []
    finally:
        await reopened.close()


async def test_created_at_is_stored_in_utc(storage: Storage) -> None:
    local = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    record = await storage.add_cloned_voice("uuid-tz", GUILD, "Local", None, ADMIN, local)
    assert record.created_at == local
    assert record.created_at.utcoffset() == timedelta(0)
    stored = await storage.get_cloned_voice("uuid-tz")
    assert stored is not None
    assert stored.created_at == datetime(2023, 12, 31, 23, 0, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_created_at_defaults_to_now(storage: Storage) -> None:
    before = datetime.now(UTC)
    await storage.add_cloned_voice("uuid-now", GUILD, "Now", None, ADMIN)
    after = datetime.now(UTC)
    stored = await storage.get_cloned_voice("uuid-now")
    assert stored is not None
    assert before <= stored.created_at <= after


async def test_naive_datetimes_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.add_cloned_voice("uuid-naive", GUILD, "Naive", None, ADMIN, datetime(2024, 1, 1))
    assert await storage.get_cloned_voice("uuid-naive") is None


async def test_a_voice_id_is_recorded_once(storage: Storage) -> None:
    await storage.add_cloned_voice("uuid-1", GUILD, "Narrator", None, ADMIN, WHEN)
    with pytest.raises(ClonedVoiceExistsError):
        await storage.add_cloned_voice("uuid-1", OTHER_GUILD, "Thief", None, ADMIN, WHEN)
    stored = await storage.get_cloned_voice("uuid-1")
    assert stored is not None and stored.guild_id == GUILD
    # The failed insert left no transaction open.
    await storage.add_cloned_voice("uuid-2", GUILD, "Next", None, ADMIN, WHEN)


async def test_remove_forgets_the_voice(storage: Storage) -> None:
    record = await storage.add_cloned_voice("uuid-1", GUILD, "Narrator", "d", ADMIN, WHEN)
    assert await storage.remove_cloned_voice("uuid-1") == record
    assert await storage.remove_cloned_voice("uuid-1") is None
    assert await storage.list_cloned_voices(GUILD) == []


async def test_two_processes_recording_one_voice_record_it_once(database: Database) -> None:
    # Two processes sharing a database: the voice keeps the owner of the one recorded first.
    first = await Storage.open(database.location)
    second = await Storage.open(database.location)
    try:
        results = await asyncio.gather(
            first.add_cloned_voice("voice-x", 1, "X", None, 10),
            second.add_cloned_voice("voice-x", 2, "X", None, 20),
            return_exceptions=True,
        )
        recorded = [result for result in results if isinstance(result, ClonedVoice)]
        assert len(recorded) == 1
        assert any(isinstance(result, ClonedVoiceExistsError) for result in results)
        stored = await second.get_cloned_voice("voice-x")
        assert stored is not None and stored.guild_id == recorded[0].guild_id
        assert await first.count_cloned_voices() == 1
    finally:
        await first.close()
        await second.close()


async def test_a_clone_name_is_unique_in_its_server_without_case(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:
        await storage.add_cloned_voice("uuid-1", GUILD, "My Voice", None, ADMIN, WHEN)
        assert await storage.clone_names(GUILD) == ["My Voice"] and await storage.clone_names(OTHER_GUILD) == []
        with pytest.raises(CloneNameTakenError):
            await storage.take_clone_slot(GUILD, 10, name="my  VOICE")
        # An upload under way reserves its name as well; another server may use it.
        slot = await storage.take_clone_slot(GUILD, 10, name="Ça Va")
        with pytest.raises(CloneNameTakenError):
            await storage.take_clone_slot(GUILD, 10, name="ÇA VA")
        await storage.take_clone_slot(OTHER_GUILD, 10, name="Ça va")
        # A slot given back frees its name.
        await storage.release_clone_slot(slot)
        await storage.take_clone_slot(GUILD, 10, name="ça va")
        # Two takes of one name at once: one wins.
        taken = await asyncio.gather(
            storage.take_clone_slot(GUILD, 10, name="Twin"),
            storage.take_clone_slot(GUILD, 10, name="twin"),
            return_exceptions=True,
        )
        assert sorted(type(result).__name__ for result in taken) == ["CloneNameTakenError", "str"]
    finally:
        await storage.close()
