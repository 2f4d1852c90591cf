"""Opening and closing the storage."""

from pathlib import Path

import pytest

from bot.storage import DatabaseUnavailableError, Storage, StorageClosedError, url_secrets
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


async def test_the_database_password_is_in_no_repr_description_or_error(postgres_database: str) -> None:
    secrets = url_secrets(postgres_database)
    assert secrets
    async with await Storage.open(postgres_database) as storage:
        shown = f"{storage!r} {storage.description}"
        assert "[redacted]" in shown and not any(secret in shown for secret in secrets)

    wrong = postgres_database.replace("unmixr:", "unmixr:wrong-", 1)
    with pytest.raises(DatabaseUnavailableError) as refused:
        await Storage.open(wrong)
    text = f"{refused.value} {refused.value!r} {refused.value.__cause__!r} {refused.value.__context__!r}"
    assert "password authentication failed" in text
    assert not any(secret in text for secret in url_secrets(wrong))
