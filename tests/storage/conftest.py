"""Fixtures for the storage tests: a real database file in a temporary folder."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import Storage


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    # A nested folder, so that every test also exercises the folder creation.
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
async def storage(database_path: Path) -> AsyncIterator[Storage]:
    opened = await Storage.open(database_path)
    yield opened
    await opened.close()
