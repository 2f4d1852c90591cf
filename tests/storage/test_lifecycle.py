"""Opening and closing the storage."""

from pathlib import Path

import pytest

from bot.storage import Storage, StorageClosedError


async def test_use_after_close_raises_a_storage_error(database_path: Path) -> None:
    storage = await Storage.open(database_path)
    await storage.get_guild_settings(1)
    await storage.close()
    # Closing twice is harmless.
    await storage.close()
    with pytest.raises(StorageClosedError):
        await storage.set_guild_setting(1, "language", "en-US")
    with pytest.raises(StorageClosedError):
        await storage.usage_for_month(1, 2024, 1)


async def test_async_with_closes(database_path: Path) -> None:
    async with await Storage.open(database_path) as storage:
        await storage.set_guild_setting(1, "format", "wav")
    with pytest.raises(StorageClosedError):
        await storage.list_pronunciations(1)
    async with await Storage.open(database_path) as reopened:
        assert (await reopened.get_guild_settings(1)).format == "wav"


async def test_open_accepts_a_string_path_in_an_existing_folder(tmp_path: Path) -> None:
    async with await Storage.open(str(tmp_path / "plain.sqlite3")) as storage:
        await storage.set_member_preference(1, 2, "nickname", "N")
    assert (tmp_path / "plain.sqlite3").is_file()
