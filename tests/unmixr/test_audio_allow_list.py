"""Where the client downloads audio from: exactly UNMIXR_BASE_URL's origin, or Unmixr's hosts over https on 443."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.unmixr import UnmixrClient
from bot.unmixr.errors import AudioDownloadError, MalformedResponseError
from bot.unmixr.models import TTSRequest
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import API_KEY, BRIAN_ID, requests_to

MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)


def client_for(session: aiohttp.ClientSession, base_url: str) -> UnmixrClient:
    return UnmixrClient(session, SecretStr(API_KEY), base_url=base_url, backoff_base=0.01, backoff_cap=0.02)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123/audio/a.mp3",
        "http://localhost:8123/audio/a.mp3",
        "http://LOCALHOST:8123/audio/a.mp3",
        "http://[::1]:8123/audio/a.mp3",
        "http://127.0.0.2:8123/audio/a.mp3",
        "/audio/a.mp3",
        "https://unmixr.com/a.mp3",
        "https://resource.unmixr.com:443/a.mp3",
        "https://unmixr.s3.amazonaws.com/a/b.mp3",
    ],
)
async def test_a_loopback_base_allows_any_loopback_name_on_its_port_and_unmixr_hosts(
    session: aiohttp.ClientSession, url: str
) -> None:
    client = client_for(session, "http://127.0.0.1:8123/api/v1")
    allowed = client._allowed_audio_url(url)
    assert allowed.is_absolute()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8124/audio/a.mp3",  # another port of the same host
        "http://localhost/audio/a.mp3",  # port 80
        "https://127.0.0.1:8123/audio/a.mp3",  # another scheme
        "http://evil.example.com:8123/audio/a.mp3",
        "http://unmixr.com/a.mp3",  # Unmixr's host, but not over https
        "https://unmixr.com:8443/a.mp3",
        "https://evil.unmixr.com/a.mp3",
        "https://unmixr.com.evil.example.com/a.mp3",
        "https://user:pass@unmixr.com/a.mp3",
        "ftp://unmixr.com/a.mp3",
        "file:///etc/passwd",
    ],
)
async def test_a_loopback_base_refuses_other_ports_schemes_and_hosts(session: aiohttp.ClientSession, url: str) -> None:
    client = client_for(session, "http://127.0.0.1:8123/api/v1")
    with pytest.raises(AudioDownloadError) as raised:
        client._allowed_audio_url(url)
    assert type(raised.value) is AudioDownloadError


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://proxy.example.com:8443/audio/a.mp3", True),
        ("https://PROXY.example.com:8443/audio/a.mp3", True),
        ("https://proxy.example.com/audio/a.mp3", False),  # 443, not the base's port
        ("http://proxy.example.com:8443/audio/a.mp3", False),
        ("https://localhost:8443/audio/a.mp3", False),  # loopback names count only for a loopback base
        ("https://127.0.0.1:8443/audio/a.mp3", False),
        ("https://unmixr.com/a.mp3", True),
    ],
)
async def test_a_proxy_base_allows_exactly_its_origin(session: aiohttp.ClientSession, url: str, allowed: bool) -> None:
    client = client_for(session, "https://proxy.example.com:8443/api/v1")
    if allowed:
        client._allowed_audio_url(url)
    else:
        with pytest.raises(AudioDownloadError):
            client._allowed_audio_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--zz.com/a.mp3",  # an invalid IDNA label: yarl raises only when the host is read
        "https://xn--/a.mp3",
        "http://[::1/a.mp3",
        "https://unmixr.com:abc/a.mp3",
        "http://127.0.0.1:99999/a.mp3",
        "https://ab\xadc.com/a.mp3",
        "https://unmixr.com\\.evil.example.com/a.mp3",
        "",
    ],
)
async def test_a_malformed_audio_url_is_a_malformed_response(session: aiohttp.ClientSession, url: str) -> None:
    client = client_for(session, "http://127.0.0.1:8123/api/v1")
    with pytest.raises(MalformedResponseError):
        client._allowed_audio_url(url)


async def test_an_invalid_idna_audio_url_from_unmixr_is_a_malformed_response(
    session: aiohttp.ClientSession, fake: FakeUnmixr
) -> None:
    # End to end through /short-tts/: the answer is understood as malformed, not as an unexpected error.
    client = client_for(session, fake.base_url)
    fake.audio_url_base_next("https://xn--zz.com")
    with pytest.raises(MalformedResponseError):
        await client.short_tts(TTSRequest(text="Broken link.", voice_id=BRIAN_ID))
    assert requests_to(fake, "/audio/") == []


async def test_the_stand_in_still_serves_audio_under_an_allowed_url(
    session: aiohttp.ClientSession, fake: FakeUnmixr
) -> None:
    client = client_for(session, fake.base_url)
    result = await client.short_tts(TTSRequest(text="Allowed audio.", voice_id=BRIAN_ID))
    assert result.audio
    [download] = requests_to(fake, "/audio/")
    assert download.path.startswith("/audio/")
    voice = await client.voice_details(BRIAN_ID)
    assert voice.sample_voice_url is not None
    assert await client.download_sample(voice.sample_voice_url)


class Redirector:
    """A local server standing for UNMIXR_BASE_URL's origin whose audio answers with a redirect."""

    def __init__(self) -> None:
        self.location = ""
        self.paths: list[str] = []
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.origin = f"http://127.0.0.1:{port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if request.path.startswith("/final/"):
            return web.Response(body=MP3_FRAME * 4, content_type="audio/mpeg")
        return web.Response(status=302, headers={"Location": self.location})

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def redirector() -> AsyncIterator[Redirector]:
    server = Redirector()
    await server.start()
    yield server
    await server.close()


async def test_each_redirect_hop_is_checked_again(
    session: aiohttp.ClientSession, redirector: Redirector, fake: FakeUnmixr
) -> None:
    client = client_for(session, redirector.origin + "/api/v1")
    # A hop on the same origin is followed.
    redirector.location = "/final/a.mp3"
    assert await client.download_sample(redirector.origin + "/audio/a.mp3") == MP3_FRAME * 4
    # A hop to another port of this machine (the Unmixr stand-in here) is refused without being asked.
    redirector.location = fake.origin + "/audio/elsewhere.mp3"
    with pytest.raises(AudioDownloadError) as refused:
        await client.download_sample(redirector.origin + "/audio/b.mp3")
    assert not refused.value.transient
    assert fake.requests == []
    # A hop to a malformed URL is a malformed response.
    redirector.location = "https://xn--zz.com/a.mp3"
    with pytest.raises(MalformedResponseError):
        await client.download_sample(redirector.origin + "/audio/c.mp3")
    assert redirector.paths == ["/audio/a.mp3", "/final/a.mp3", "/audio/b.mp3", "/audio/c.mp3"]
