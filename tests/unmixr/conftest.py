"""Shared fixtures: the Unmixr stand-in over real HTTP, one aiohttp session per test, and a client factory."""

from __future__ import annotations

import functools
import io
import math
import wave
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.unmixr import UnmixrClient
from tests.fakes.internet import FakeDNS
from tests.fakes.unmixr import FakeUnmixr, RecordedRequest

# Distinctive, so that a leak anywhere is easy to find in logs, reprs and exception text.
API_KEY = "umx-SECRET-key-0123456789abcdef"
OPENAI_KEY = "sk-openai-SECRET-9876543210"
BRIAN_ID = "1283979c-87a5-44d5-a8de-4082ba20cc5b"
STEFFAN_ID = "57f0ec2e-bbb7-460f-92d5-e7277669b985"

ClientFactory = Callable[..., UnmixrClient]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUnmixr]:
    """A running Unmixr stand-in on 127.0.0.1."""
    server = FakeUnmixr(api_key=API_KEY)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session for the test, as the bot shares one per process."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def make_client(fake: FakeUnmixr, session: aiohttp.ClientSession) -> ClientFactory:
    """Build clients against the stand-in with fast back-off; keyword arguments override the defaults."""

    def make(**overrides: Any) -> UnmixrClient:
        options: dict[str, Any] = {
            "base_url": fake.base_url,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "tts_timeout": 5.0,
            "default_timeout": 5.0,
            # No test looks a name up in the real DNS: an audio host must be in a test's own FakeDNS.
            "resolver": FakeDNS(),
        }
        api_key = overrides.pop("api_key", API_KEY)
        options.update(overrides)
        return UnmixrClient(session, SecretStr(api_key), **options)

    return make


@pytest.fixture
def client(make_client: ClientFactory) -> UnmixrClient:
    """A client with the right key and no OpenAI key."""
    return make_client()


def requests_to(fake: FakeUnmixr, endpoint: str) -> list[RecordedRequest]:
    """The stand-in's recorded requests to one endpoint, in arrival order."""
    return [request for request in fake.requests if request.endpoint == endpoint]


def header(request: RecordedRequest, name: str) -> str | None:
    """A recorded request header, looked up case-insensitively."""
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


@functools.cache
def wav_tone(seconds: float, rate: int = 8000) -> bytes:
    """A mono 8-bit 400 Hz WAV tone of the given length, for clone uploads."""
    period = rate // 400
    cycle = bytes(int(128 + 60 * math.sin(2 * math.pi * index / period)) for index in range(period))
    frames = (cycle * (int(rate * seconds) // period + 1))[: int(rate * seconds)]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(1)
        output.setframerate(rate)
        output.writeframes(frames)
    return buffer.getvalue()
