"""Sends one request to Unmixr or an audio host and keeps its reply: timeouts, redirects, the adaptive limit, retries.

Nothing here reads what an answer means (that is `parsing`); a failure of the exchange itself becomes an
`UnmixrError`, wrapped in `Retryable` when sending again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

import aiohttp
from yarl import URL

from bot.outages import outages, transport_reason
from bot.unmixr.errors import (
    TTS_ENDPOINT,
    MalformedResponseError,
    RateLimitedError,
    UnmixrConnectionError,
    UnmixrError,
    UnmixrTimeoutError,
)
from bot.unmixr.limiter import AdaptiveLimiter

log = logging.getLogger("bot.unmixr")

DOWNLOAD_ENDPOINT: Final = "audio-download"
VOICE_ENDPOINT: Final = "/voice/"
# How each endpoint is named to an observer: the reference's path template, never a real uuid or audio URL.
ENDPOINT_TEMPLATES: Final = {VOICE_ENDPOINT: "/voice/{uuid}/", DOWNLOAD_ENDPOINT: "{audio_url}"}
# A server asking for a longer pause than this is not worth waiting for inside one interaction.
MAX_RETRY_AFTER: Final = 20.0
# Redirects followed for one attempt, API calls and downloads alike.
MAX_REDIRECTS: Final = 3
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE: Final = 64 * 1024

# Told of every HTTP attempt: (endpoint template, HTTP status or "timeout"/"connection_error", seconds).
RequestObserver = Callable[[str, str, float], None]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the client means it: where, what, and the limits its answer must keep."""

    method: str
    # The documented endpoint (or DOWNLOAD_ENDPOINT): errors, logs, metrics and the adaptive limit go by it.
    endpoint: str
    url: URL
    time_limit: float
    body_cap: int
    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None
    json_body: Any = None
    # Built afresh for every send: an aiohttp FormData can be read only once.
    form: Callable[[], aiohttp.FormData] | None = None
    too_large: type[UnmixrError] = MalformedResponseError
    fairness_key: Hashable | None = None
    on_sent: Callable[[], None] | None = None
    # The checked address to connect to in place of the URL's host name (audio downloads), if any.
    address: str | None = None

    def at(self, url: URL, *, address: str | None = None) -> Request:
        """The same request sent to another URL (and checked address)."""
        return dataclasses.replace(self, url=url, address=address)

    def moved(self, url: URL, *, status: int, address: str | None = None) -> Request:
        """The same request sent to where a redirect points; a 303 turns it into a GET without a body."""
        if status == 303:
            return dataclasses.replace(
                self, url=url, address=address, method="GET", json_body=None, form=None, params=None
            )
        # The Location names the query in full: the original parameters are not added again.
        return dataclasses.replace(self, url=url, address=address, params=None)


@dataclass(frozen=True, slots=True)
class Reply:
    """The parts of an HTTP response the client keeps once the connection is released."""

    status: int
    content_type: str
    body: bytes
    retry_after: float | None
    location: str
    # The URL the request named (not the address it connected to): a relative Location resolves against it.
    url: URL

    @property
    def is_redirect(self) -> bool:
        """Whether the reply sends the request elsewhere."""
        return self.status in REDIRECT_STATUSES and bool(self.location)


class Retryable(Exception):
    """Carries an error that the retry loop may retry."""

    def __init__(self, error: UnmixrError) -> None:
        super().__init__(error.message)
        self.error = error


# Where a redirect may lead: the next request, or an error raised; the hop number counts from 1.
NextHop = Callable[[Request, Reply, int], Awaitable[Request]]
# Whether an answer means Unmixr is overloaded (a 429, a gateway's timeout): the adaptive limit's signal.
OverloadTest = Callable[[Reply], bool]


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class Transport:
    """Makes requests over the one shared aiohttp session; `/short-tts/` attempts hold a slot of the limit."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        limiter: AdaptiveLimiter,
        *,
        max_retries: int,
        backoff_base: float,
        backoff_cap: float,
        observer: RequestObserver | None = None,
        base_url: URL | None = None,
        scrub: Callable[[str], str] = str,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self._session = session
        # Public so that a benchmark can swap in a limiter that never binds.
        self.limiter = limiter
        self.max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._observer = observer
        # The API's root, named in outage reports; `scrub` takes secrets out of an error's text.
        self._base_url = base_url
        self._scrub = scrub

    async def fetch(
        self,
        request: Request,
        attempt: int,
        *,
        follow: NextHop | None = None,
        overloaded: OverloadTest | None = None,
    ) -> Reply:
        """Make one attempt, following up to MAX_REDIRECTS redirects that `follow` allows.

        A `/short-tts/` attempt holds one slot of the adaptive limit for all its hops and reports its answer
        to it: a timeout, or an answer `overloaded` recognises, lowers the limit.
        """
        # Only synthesis loads Unmixr: catalogue reads, clones and downloads of ready audio never queue.
        gate = (
            self.limiter.slot(request.fairness_key, retry=attempt > 1)
            if request.endpoint == TTS_ENDPOINT
            else contextlib.nullcontext()
        )
        async with gate as permit:
            if request.on_sent is not None:
                request.on_sent()
            try:
                reply = await self._exchange(request, attempt)
                hop = 0
                while follow is not None and reply.is_redirect:
                    hop += 1
                    request = await follow(request, reply, hop)
                    reply = await self._exchange(request, attempt)
            except UnmixrTimeoutError:
                if permit is not None:
                    permit.answered(overloaded=True)
                raise
            if permit is not None:
                permit.answered(overloaded=reply.status == 429 or (overloaded is not None and overloaded(reply)))
            return reply

    async def with_retries(
        self,
        method: str,
        endpoint: str,
        attempt: Callable[[int], Awaitable[T]],
        *,
        retry: bool,
    ) -> T:
        """Run `attempt` until it succeeds, retrying only transient failures with jittered back-off."""
        total = 1 + (self.max_retries if retry else 0)
        number = 1
        while True:
            try:
                return await attempt(number)
            except Retryable as signal:
                error = signal.error
            if number >= total:
                raise error
            if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER:
                raise RateLimitedError(
                    code=error.code,
                    endpoint=error.endpoint,
                    detail=error.detail,
                    retry_after=error.retry_after,
                )
            delay = self.delay(number, error.retry_after)
            # An outage is reported once a minute by _exchange; each retry is detail.
            log.debug(
                "Unmixr %s %s failed (%s, code %s); retrying in %.2f s (attempt %d of %d)",
                method,
                endpoint,
                type(error).__name__,
                error.code,
                delay,
                number + 1,
                total,
            )
            await asyncio.sleep(delay)
            number += 1

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before the next attempt: the server's word, else capped jittered back-off."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        # Equal jitter: spread clients apart without ever retrying immediately.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter needs no cryptography)

    async def _exchange(self, request: Request, attempt: int) -> Reply:
        """Make one HTTP request and read its body, translating transport failures."""
        endpoint = request.endpoint
        label = endpoint if endpoint != DOWNLOAD_ENDPOINT else f"{request.url.host}{request.url.path}"
        started = time.perf_counter()
        outcome = "no response"
        status = "connection_error"
        try:
            opened = await self._open(request)
            if not isinstance(opened, aiohttp.ClientResponse):
                failure = opened.error if isinstance(opened, Retryable) else opened
                outcome = failure.detail or type(failure).__name__
                status = "timeout" if isinstance(failure, UnmixrTimeoutError) else status
                # Raised here, outside any except clause, so no aiohttp exception (which may hold the
                # request's headers) stays attached as the context.
                raise opened
            response = opened
            outcome = status = str(response.status)
            body = await self._read(response, request)
            if isinstance(body, UnmixrError):
                outcome = f"{response.status}, {body.detail}"
                status = "timeout" if isinstance(body, UnmixrTimeoutError) else status
                raise body
            return Reply(
                status=response.status,
                content_type=response.headers.get("Content-Type", ""),
                body=body,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location", ""),
                url=request.url,
            )
        finally:
            elapsed = time.perf_counter() - started
            log.debug("%s %s -> %s in %.0f ms (attempt %d)", request.method, label, outcome, elapsed * 1000, attempt)
            if status in ("connection_error", "timeout") or status.startswith("5"):
                self._report_outage(request, status, outcome, f"{request.method} {label}")
            if self._observer is not None:
                self._observer(ENDPOINT_TEMPLATES.get(endpoint, endpoint), status, elapsed)

    def _report_outage(self, request: Request, status: str, outcome: str, what: str) -> None:
        """Log Unmixr being down or failing, once a minute per kind of failure (bot.outages)."""
        address = request.url.origin() if request.endpoint == DOWNLOAD_ENDPOINT else self._base_url
        if status == "connection_error":
            message = f"Unmixr at {address} could not be reached ({outcome}; {what})"
        elif status == "timeout":
            message = f"Unmixr at {address} did not answer in time ({what})"
        else:
            message = f"Unmixr at {address} answered {outcome} ({what})"
        outages.report(f"unmixr {status}", message)

    async def _open(self, request: Request) -> aiohttp.ClientResponse | UnmixrError | Retryable:
        """Send a request and wait for the response head; a failure is returned, wrapped if safe to retry."""
        endpoint = request.endpoint
        url = request.url
        headers = dict(request.headers or {})
        server_hostname: str | None = None
        if request.address is not None:
            # Connect to the address that was checked, never to a second look-up of the name: the name still
            # goes in the Host header and in TLS (SNI and the certificate check).
            name = url.raw_host or ""
            url = url.with_host(request.address)
            headers["Host"] = name if url.is_default_port() else f"{name}:{url.port}"
            server_hostname = name.rstrip(".") if url.scheme == "https" else None
        try:
            response = await self._session.request(
                request.method,
                url,
                params=request.params or None,
                json=request.json_body,
                data=request.form() if request.form is not None else None,
                headers=headers or None,
                timeout=aiohttp.ClientTimeout(total=request.time_limit),
                allow_redirects=False,
                raise_for_status=False,
                server_hostname=server_hostname,
            )
        except TimeoutError:
            # It may have been sent and charged, so a timeout is never retried.
            timed_out = UnmixrTimeoutError(endpoint=endpoint, detail="timeout")
            timed_out.maybe_charged = True
            return timed_out
        except aiohttp.ClientConnectionError as exc:
            # Nothing came back, so it is safe to try again.
            return Retryable(UnmixrConnectionError(endpoint=endpoint, detail=self._scrub(transport_reason(exc))))
        except aiohttp.ClientError as exc:
            return UnmixrConnectionError(endpoint=endpoint, detail=self._scrub(transport_reason(exc)), transient=False)
        return response

    async def _read(self, response: aiohttp.ClientResponse, request: Request) -> bytes | UnmixrError:
        """Read the body within the cap and release the connection; a failure is returned, never retried."""
        failure: UnmixrError
        try:
            body = await _read_capped(response, request.body_cap, request.endpoint, request.too_large)
        except TimeoutError:
            failure = UnmixrTimeoutError(endpoint=request.endpoint, detail="body timeout")
        except aiohttp.ClientError as exc:
            # The server answered, so the request may have been acted on.
            failure = UnmixrConnectionError(endpoint=request.endpoint, detail=type(exc).__name__)
        except UnmixrError as error:
            failure = error
        else:
            response.release()
            return body
        response.close()
        failure.__context__ = None
        failure.maybe_charged = True  # the server answered, so it may have acted on the request
        return failure


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, endpoint: str, too_large: type[UnmixrError]
) -> bytes:
    """Read a body in chunks, giving up as soon as it passes `cap` bytes."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise too_large(endpoint=endpoint, detail=f"{declared} bytes declared, limit {cap}")
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        body += chunk
        if len(body) > cap:
            raise too_large(endpoint=endpoint, detail=f"over {cap} bytes")
    return bytes(body)
