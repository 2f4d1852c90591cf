"""Where audio named by Unmixr may be downloaded from, and the address each download connects to.

PRODUCT.md, Untrusted media: https on port 443 from a host whose every resolved address is global, or exactly
the scheme, host and port of `UNMIXR_BASE_URL`. The name is looked up once and the connection goes to the
address that was checked, so a name that resolves elsewhere the second time (DNS rebinding) gains nothing;
each redirect hop is checked again. Discord's attachment URLs are not under this rule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver
from yarl import URL

from bot.unmixr.errors import AudioDownloadError, MalformedResponseError
from bot.unmixr.transport import DOWNLOAD_ENDPOINT, MAX_REDIRECTS, Reply, Request, Retryable

# A local API (a stand-in or proxy) may call itself by any loopback name: localhost, 127.0.0.0/8 or ::1.
_LOCALHOST: Final = "localhost"
_HTTPS_PORT: Final = 443
# RFC 6052's well-known NAT64 prefix carries an IPv4 address in its last 32 bits; RFC 8215's local-use
# prefix may carry it anywhere, so it is never treated as global.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64: Final = ipaddress.IPv6Network("64:ff9b:1::/48")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    """Whether an address is on the public internet: never loopback, private, link-local, multicast and the like.

    IPv4-mapped, NAT64 and 6to4 addresses are judged by the IPv4 address inside.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _LOCAL_NAT64 or address.is_site_local:
            return False
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
    # `is_global` leaves out loopback, private, link-local, unique-local, unspecified and shared (100.64/10)
    # ranges; multicast and the reserved ranges (IPv4-compatible ::a.b.c.d among them) are refused as well.
    return address.is_global and not address.is_multicast and not address.is_reserved


def _is_loopback(host: str) -> bool:
    """Whether a host (lower-case, as in a URL) names this machine: localhost or a loopback address."""
    if host == _LOCALHOST:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(detail: str) -> AudioDownloadError:
    return AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail=detail)


class AudioOrigins:
    """Checks each audio URL (and each redirect hop) against the rule and pins the address to connect to."""

    def __init__(self, base_url: URL, resolver: AbstractResolver | None, *, time_limit: float) -> None:
        self._base_url = base_url
        self._base_host = (base_url.host or "").lower().rstrip(".")
        self._resolver = resolver
        self._time_limit = time_limit

    async def request(self, raw: str, template: Request) -> Request:
        """The download request for an audio URL from an answer; refused, malformed or unresolvable raises."""
        url, address = await self.check(raw)
        return template.at(url, address=address)

    async def next_hop(self, request: Request, reply: Reply, hop: int) -> Request:
        """Where a redirect of a download may lead: checked like the first URL, at most MAX_REDIRECTS times."""
        if hop > MAX_REDIRECTS:
            raise AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail="too many redirects")
        url, address = await self.check(reply.location, relative_to=reply.url)
        return request.moved(url, status=reply.status, address=address)

    async def check(self, raw: str, *, relative_to: URL | None = None) -> tuple[URL, str | None]:
        """The absolute URL and the checked address to connect to (None: connect by the URL as it is)."""
        url, host, port = self._parse(raw, relative_to)
        if url.user is not None or url.password is not None:
            raise _refused("credentials in the audio URL")
        base = self._base_url
        # Exactly the scheme, host and port of UNMIXR_BASE_URL (a local one may call itself by any loopback name).
        same_host = host == self._base_host or (_is_loopback(host) and _is_loopback(self._base_host))
        if same_host and url.scheme == base.scheme and port == base.port:
            return url, None
        if url.scheme != "https" or port != _HTTPS_PORT:
            raise _refused(f"{url.scheme}://{host}:{port} is not https on port 443, nor the API's origin")
        if not host:
            raise MalformedResponseError(endpoint=DOWNLOAD_ENDPOINT, detail="audio URL without a host")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if not is_public(literal):
                raise _refused(f"{host} is not a public address")
            return url, None  # an address already: nothing is looked up
        # The name as sent on the wire (IDNA), without the root's dot: what is looked up is what is checked.
        return url, await self._resolve((url.raw_host or host).rstrip("."))

    def _parse(self, raw: str, relative_to: URL | None) -> tuple[URL, str, int | None]:
        """Parse a URL from an answer; one that cannot be parsed is a malformed response."""
        try:
            if not raw:
                raise ValueError("empty URL")
            url = URL(raw)
            if not url.is_absolute():
                url = (relative_to or self._base_url).join(url)
            # yarl decodes an IDNA host only when it is read: an invalid xn-- label raises UnicodeError here.
            host = (url.host or "").lower().rstrip(".")
            port = url.port
        except (TypeError, ValueError):  # UnicodeError is a ValueError
            raise MalformedResponseError(endpoint=DOWNLOAD_ENDPOINT, detail="audio URL cannot be parsed") from None
        return url, host, port

    async def _resolve(self, name: str) -> str:
        """Look the name up once; every address must be public. The first is the one to connect to."""
        try:
            async with asyncio.timeout(self._time_limit):
                if self._resolver is None:
                    # The system's look-up, in a thread (made here: it needs the running loop).
                    self._resolver = ThreadedResolver()
                found = await self._resolver.resolve(name, _HTTPS_PORT, family=socket.AF_UNSPEC)
        except (OSError, TimeoutError) as exc:
            # A failed look-up may be passing: retried like a connection error.
            failure = f"{name} could not be resolved ({type(exc).__name__})"
            raise Retryable(AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail=failure, transient=True)) from None
        addresses: list[Address] = []
        for entry in found:
            try:
                addresses.append(ipaddress.ip_address(entry["host"]))
            except ValueError:
                raise _refused(f"{name} resolved to something that is not an address") from None
        if not addresses:
            nothing = AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail=f"{name}: no address", transient=True)
            raise Retryable(nothing)
        refused = [str(address) for address in addresses if not is_public(address)]
        if refused:
            raise _refused(f"{name} resolves to {', '.join(refused)}, which is not public")
        return str(addresses[0])
