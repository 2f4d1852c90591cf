"""Opening and closing the storage."""

from pathlib import Path

import pytest

from bot.storage import Storage, StorageClosedError
from tests.storage.conftest import Database


async def test_use_after_close_raises_a_storage_error(database: Database) -> None:
    storage = await Storage.open(database.location)
    await storage.get_guild_settings(1)
    await storage.close()
    # Closing twice is harmless.
    await storage.close()
    with pytest.raises(StorageClosedError):
        await storage.set_guild_setting(1, "language", "en-US")
    with pytest.raises(StorageClosedError):
        await storage.usage_for_month(1, 2024, 1)


async def test_async_with_closes(database: Database) -> None:
    async with await Storage.open(database.location) as storage:
        await storage.set_guild_setting(1, "format", "wav")
    with pytest.raises(StorageClosedError):
        await storage.list_pronunciations(1)
    async with await Storage.open(database.location) as reopened:
        assert (await reopened.get_guild_settings(1)).format == "wav"


async def test_open_accepts_a_string_path_in_an_existing_folder(tmp_path: Path) -> None:
    async with await Storage.open(str(tmp_path / "plain.sqlite3")) as storage:
        await storage.set_member_preference(1, 2, "nickname", "N")
    assert (tmp_path / "plain.sqlite3").is_file()
