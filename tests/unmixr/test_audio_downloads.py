"""Where the client downloads audio from (PRODUCT.md, Untrusted media): https on 443 from a host whose every
resolved address is global, or exactly UNMIXR_BASE_URL's origin; the connection goes to the checked address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.unmixr import UnmixrClient
from bot.unmixr.errors import AudioDownloadError, MalformedResponseError
from bot.unmixr.models import TTSRequest
from tests.fakes.internet import Authority, FakeDNS, HttpsHost, connected, internet_session
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import API_KEY, BRIAN_ID, header, requests_to

MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
LOOPBACK_BASE = "http://127.0.0.1:8123/api/v1"
# Global addresses (documentation ranges are not global, so these are real, unrelated public addresses).
CDN_ADDRESS = "93.184.216.34"
CDN_V6 = "2606:4700::1111"

RECORDS = {
    "cdn.example.net": [CDN_ADDRESS],
    "bucket.eu-west.example.net": [CDN_V6, "93.184.216.35"],
    "internal.example.net": ["10.1.2.3"],
    "metadata.example.net": ["169.254.169.254"],
    "mixed.example.net": [CDN_ADDRESS, "192.168.0.7"],
    "ula.example.net": ["fd00:ec2::254"],
    "mapped.example.net": ["::ffff:127.0.0.1"],
    "nat64.example.net": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.example.net": ["2002:c0a8:1::1"],
    "cgnat.example.net": ["100.64.0.9"],
}


def client_for(
    session: aiohttp.ClientSession, base_url: str, dns: FakeDNS | None = None, **options: float
) -> UnmixrClient:
    return UnmixrClient(
        session, SecretStr(API_KEY), base_url=base_url, backoff_base=0.01, backoff_cap=0.02, resolver=dns, **options
    )


@pytest.fixture
def dns() -> FakeDNS:
    return FakeDNS(RECORDS)


# The rule, URL by URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        # Exactly the base URL's origin; a loopback base may call itself by any loopback name.
        ("http://127.0.0.1:8123/audio/a.mp3", None),
        ("http://localhost:8123/audio/a.mp3", None),
        ("http://LOCALHOST:8123/audio/a.mp3", None),
        ("http://[::1]:8123/audio/a.mp3", None),
        ("http://127.0.0.2:8123/audio/a.mp3", None),
        ("/audio/a.mp3", None),
        # https on 443 from a host whose every address is global: a CDN or a regional bucket.
        ("https://cdn.example.net/a.mp3", CDN_ADDRESS),
        ("https://CDN.example.net:443/a.mp3", CDN_ADDRESS),
        ("https://cdn.example.net./a.mp3", CDN_ADDRESS),
        ("https://bucket.eu-west.example.net/clip.wav", CDN_V6),
        # A global address written out needs no look-up.
        (f"https://{CDN_ADDRESS}/a.mp3", None),
        (f"https://[{CDN_V6}]/a.mp3", None),
        (f"https://[::ffff:{CDN_ADDRESS}]/a.mp3", None),
    ],
)
async def test_allowed_audio_urls_and_the_address_each_connects_to(
    session: aiohttp.ClientSession, dns: FakeDNS, url: str, address: str | None
) -> None:
    client = client_for(session, LOOPBACK_BASE, dns)
    checked, pinned = await client._origins.check(url)
    assert checked.is_absolute()
    assert pinned == address


REFUSED = [
    # Other ports, schemes and hosts of this machine.
    "http://127.0.0.1:8124/audio/a.mp3",
    "http://localhost/audio/a.mp3",
    "https://127.0.0.1:8123/audio/a.mp3",
    "https://localhost:8123/audio/a.mp3",
    # Not https on 443.
    "http://cdn.example.net/a.mp3",
    "https://cdn.example.net:8443/a.mp3",
    "ftp://cdn.example.net/a.mp3",
    "file:///etc/passwd",
    # Credentials, and the userinfo trick that hides the real host after an @.
    "https://user:pass@cdn.example.net/a.mp3",
    "https://cdn.example.net@127.0.0.1/a.mp3",
    "https://cdn.example.net:443@10.0.0.1/a.mp3",
    # Names that resolve to a non-global address (one is enough).
    "https://internal.example.net/a.mp3",
    "https://metadata.example.net/latest/meta-data/",
    "https://mixed.example.net/a.mp3",
    "https://ula.example.net/a.mp3",
    "https://mapped.example.net/a.mp3",
    "https://nat64.example.net/a.mp3",
    "https://sixtofour.example.net/a.mp3",
    "https://cgnat.example.net/a.mp3",
    # Addresses written out.
    "https://10.0.0.1/a.mp3",
    "https://172.16.0.1/a.mp3",
    "https://192.168.1.1/a.mp3",
    "https://169.254.169.254/latest/meta-data/",
    "https://0.0.0.0/a.mp3",
    "https://255.255.255.255/a.mp3",
    "https://224.0.0.1/a.mp3",
    "https://100.64.0.1/a.mp3",
    "https://[::1]/a.mp3",
    "https://[::]/a.mp3",
    "https://[fe80::1]/a.mp3",
    "https://[fd00:ec2::254]/a.mp3",
    "https://[ff02::1]/a.mp3",
    "https://[::ffff:10.0.0.1]/a.mp3",
    "https://[::ffff:7f00:1]/a.mp3",
    "https://[64:ff9b::7f00:1]/a.mp3",
    "https://[64:ff9b:1::a00:1]/a.mp3",
    "https://[::127.0.0.1]/a.mp3",
    "https://[2002:7f00:1::1]/a.mp3",
    "https://[fec0::1]/a.mp3",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_refused_audio_urls_are_never_fetched(session: aiohttp.ClientSession, dns: FakeDNS, url: str) -> None:
    client = client_for(session, LOOPBACK_BASE, dns)
    with pytest.raises(AudioDownloadError) as raised:
        await client._origins.check(url)
    assert type(raised.value) is AudioDownloadError
    assert not raised.value.transient


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/a.mp3",
        "https://LOCALHOST./a.mp3",
        "https://127.1/a.mp3",
        "https://2130706433/a.mp3",
        "https://0x7f000001/a.mp3",
        "https://0x7f.1/a.mp3",
        "https://0177.0.0.1/a.mp3",
        "https://127.000.000.001/a.mp3",
    ],
)
async def test_loopback_in_every_spelling_is_refused_by_what_it_resolves_to(
    session: aiohttp.ClientSession, url: str
) -> None:
    # The system's own look-up: whatever spelling it understands as this machine is refused for what it is.
    client = client_for(session, LOOPBACK_BASE)
    with pytest.raises(AudioDownloadError) as raised:
        await client._origins.check(url)
    assert not raised.value.transient


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--zz.com/a.mp3",  # an invalid IDNA label: yarl raises only when the host is read
        "https://xn--/a.mp3",
        "http://[::1/a.mp3",
        "https://cdn.example.net:abc/a.mp3",
        "http://127.0.0.1:99999/a.mp3",
        "https://ab\xadc.com/a.mp3",
        "https://cdn.example.net\\.evil.example.com/a.mp3",
        "https:///a.mp3",
        "",
    ],
)
async def test_a_malformed_audio_url_is_a_malformed_response(
    session: aiohttp.ClientSession, dns: FakeDNS, url: str
) -> None:
    client = client_for(session, LOOPBACK_BASE, dns)
    with pytest.raises(MalformedResponseError):
        await client._origins.check(url)


async def test_a_name_that_does_not_resolve_is_a_passing_failure(session: aiohttp.ClientSession, dns: FakeDNS) -> None:
    client = client_for(session, LOOPBACK_BASE, dns)
    with pytest.raises(AudioDownloadError) as raised:
        await client.download_sample("https://nowhere.example.net/a.mp3")
    assert raised.value.transient
    assert dns.lookups == ["nowhere.example.net"] * 3, "looked up again for each of the three attempts"


# End to end over TLS, through a stand-in for the internet -----------------------------------------------


@pytest.fixture(scope="module")
def authority() -> Iterator[Authority]:
    made = Authority()
    yield made
    made.close()


async def test_audio_from_a_cdn_is_fetched_over_tls_from_the_checked_address(
    fake: FakeUnmixr, dns: FakeDNS, authority: Authority
) -> None:
    async def relay(request: web.Request) -> web.StreamResponse:
        # The CDN serves what the stand-in made: the same path on its origin.
        async with aiohttp.ClientSession() as plain, plain.get(fake.origin + request.path) as answer:
            return web.Response(body=await answer.read(), content_type=answer.content_type)

    cdn = HttpsHost(authority, relay)
    await cdn.start()
    session = internet_session(authority, {(CDN_ADDRESS, 443): cdn.port})
    opened = connected(session)
    try:
        client = client_for(session, fake.base_url, dns)
        fake.audio_url_base_next("https://cdn.example.net")
        result = await client.short_tts(TTSRequest(text="From a CDN.", voice_id=BRIAN_ID))
    finally:
        await session.close()
        await cdn.close()
    assert result.audio
    assert result.credit_usage.prebuilt == len("From a CDN.")
    # One look-up; the connection went to the address it gave, with the name in Host (and in TLS).
    assert dns.lookups == ["cdn.example.net"]
    assert (CDN_ADDRESS, 443) in opened
    assert cdn.hosts == ["cdn.example.net"]
    assert [request.path for request in cdn.requests] == [requests_to(fake, "/audio/")[0].path]
    assert "Authorization" not in cdn.requests[0].headers


async def test_a_name_that_rebinds_to_loopback_is_connected_to_where_it_was_checked(
    fake: FakeUnmixr, dns: FakeDNS, authority: Authority
) -> None:
    # DNS rebinding: the first answer is global, the next would be this machine. The bot looks up once.
    dns.add("rebind.example.net", [CDN_ADDRESS], ["127.0.0.1"])
    host = HttpsHost(authority, lambda request: _audio())
    await host.start()
    session = internet_session(authority, {(CDN_ADDRESS, 443): host.port})
    opened = connected(session)
    try:
        client = client_for(session, fake.base_url, dns)
        assert await client.download_sample("https://rebind.example.net/clip.mp3") == MP3_FRAME * 4
    finally:
        await session.close()
        await host.close()
    assert dns.lookups == ["rebind.example.net"]
    assert opened == [(CDN_ADDRESS, 443)]
    assert host.hosts == ["rebind.example.net"]
    assert fake.requests == []


async def test_each_redirect_hop_is_checked_and_connected_as_checked(
    fake: FakeUnmixr, dns: FakeDNS, authority: Authority
) -> None:
    dns.add("hop.example.net", ["93.184.216.36"])
    locations = {
        "/to-cdn": "https://cdn.example.net/final.mp3",
        "/to-internal": "https://internal.example.net/final.mp3",
        "/to-loopback": fake.origin.replace("http://", "https://") + "/audio/x.mp3",
        "/to-bad-url": "https://xn--zz.com/a.mp3",
        "/loop": "/loop",
    }

    async def hop(request: web.Request) -> web.StreamResponse:
        if request.path == "/final.mp3":
            return await _audio()
        return web.Response(status=302, headers={"Location": locations[request.path]})

    hops = HttpsHost(authority, hop)
    await hops.start()
    routes = {("93.184.216.36", 443): hops.port, (CDN_ADDRESS, 443): hops.port}
    session = internet_session(authority, routes)
    opened = connected(session)
    try:
        client = client_for(session, fake.base_url, dns)
        # A hop to another global host is followed, to the address its name resolved to.
        assert await client.download_sample("https://hop.example.net/to-cdn") == MP3_FRAME * 4
        assert hops.hosts == ["hop.example.net", "cdn.example.net"]
        # A hop to a private or loopback host is refused without being asked.
        for path in ("/to-internal", "/to-loopback"):
            with pytest.raises(AudioDownloadError) as refused:
                await client.download_sample(f"https://hop.example.net{path}")
            assert not refused.value.transient
        # A hop to a malformed URL is a malformed response; a fourth hop is one too many.
        with pytest.raises(MalformedResponseError):
            await client.download_sample("https://hop.example.net/to-bad-url")
        asked = len(hops.requests)
        with pytest.raises(AudioDownloadError) as looped:
            await client.download_sample("https://hop.example.net/loop")
        assert looped.value.detail == "too many redirects"
        assert len(hops.requests) - asked == 4
    finally:
        await session.close()
        await hops.close()
    assert "internal.example.net" in dns.lookups
    assert all(address != "10.1.2.3" for address, _ in opened)
    assert fake.requests == []


async def _audio() -> web.Response:
    return web.Response(body=MP3_FRAME * 4, content_type="audio/mpeg")


# Through the Unmixr stand-in ------------------------------------------------------------------------------


async def test_an_invalid_idna_audio_url_from_unmixr_is_a_malformed_response(
    session: aiohttp.ClientSession, fake: FakeUnmixr
) -> None:
    # End to end through /short-tts/: the answer is understood as malformed, not as an unexpected error.
    client = client_for(session, fake.base_url)
    fake.audio_url_base_next("https://xn--zz.com")
    with pytest.raises(MalformedResponseError):
        await client.short_tts(TTSRequest(text="Broken link.", voice_id=BRIAN_ID))
    assert requests_to(fake, "/audio/") == []


async def test_the_stand_in_still_serves_audio_under_its_own_origin(
    session: aiohttp.ClientSession, fake: FakeUnmixr
) -> None:
    client = client_for(session, fake.base_url)
    result = await client.short_tts(TTSRequest(text="Allowed audio.", voice_id=BRIAN_ID))
    assert result.audio
    [download] = requests_to(fake, "/audio/")
    assert download.path.startswith("/audio/")
    assert header(download, "Authorization") is None
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
            return await _audio()
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


async def test_a_hop_within_the_api_origin_is_followed_and_one_to_another_port_is_not(
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
