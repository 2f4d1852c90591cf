"""Fixtures shared by the stand-ins' own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, for requests made to a stand-in directly rather than through discord.py."""
    async with aiohttp.ClientSession() as session:
        yield session
