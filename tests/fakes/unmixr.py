"""A local stand-in for the Unmixr API: the six documented endpoints, real audio, and fault injection."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hmac
import http
import json
import math
import re
import socket
import struct
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.unmixr_audio import Audio, ToneGenerator, probe_duration
from tests.fakes.unmixr_catalogue import CATALOGUE_ORIGIN, CATEGORIES, CLONE_LANGUAGES, default_voices

API_PREFIX = "/api/v1"
MAX_TEXT_LENGTH = 2000
DEFAULT_PAGE_SIZE = 12
CLONE_MAX_BYTES = 120_000_000
CLONE_MIN_SECONDS = 30.0
CLONE_MAX_SECONDS = 80.0
# Like any service measuring uploads, tolerate an encoder's few frames of padding (80 s as mp3 is ~80.05 s).
CLONE_PADDING_SECONDS = 0.1
SAMPLE_SECONDS = 3.0
# Clips kept for download at /audio/, oldest forgotten first past either bound.
STORED_AUDIO_LIMIT = 2000
STORED_AUDIO_BYTES = 512 * 1024 * 1024

TTS_ENDPOINT = "/short-tts/"
CLONE_ENDPOINT = "/clone-voice/"

# The reference's "API Response Codes" table.
DOCUMENTED_ERRORS: dict[str, dict[int, str]] = {
    TTS_ENDPOINT: {
        400: "Invalid response_type. Supported values are: 'url', 'bytes', and 'base64'.",
        401: "Input too long. Please limit your input to under 2000 characters.",
        500: "Internal Server Error",
        501: "Specify OpenAI API key in the header with key `OpenAI-API-Key`",
        502: "Input too long. Please limit your input to under 2000 characters.",
        503: "Multiple voices are not supported on this endpoint.",
        504: "Insufficient API balance (cloned characters) to full-fill the request.",
        505: "Insufficient API balance (prebuilt characters) to full-fill the request",
        508: "Server Error - Something went wrong",
        509: "Audio Generation Failed",
    },
    CLONE_ENDPOINT: {
        400: "Audio is required",
        401: "Name is required",
        402: "You've reached the limit",
        500: "Internal Server Error",
        501: "Failed to create clone",
    },
}
COMMON_ERRORS = {200: "Successful Response", 404: "Not Found"}

# The reference shows one example of each answer; the real API may differ from it in these ways (PRODUCT.md,
# Unmixr responses), each served by `FakeUnmixr.vary`:
#   odd-fields    optional voice fields of other types than the example's: objects in `emotions` and `roles`,
#                 a null sample URL in `supported_locales`, one capability as a string rather than a list,
#                 objects or numbers where strings were shown, numbers as strings; plus, on every list's first
#                 page, one entry without a uuid, one without a name and one that is not an object at all
#   extra-fields  keys the reference does not show, in voices, pages and every other answer
#   moved         every API path answers with a same-origin redirect to the same path under /moved (301 for
#                 a GET; 308 for a POST, which keeps its method and body as RFC 9110 section 15.4.9 says,
#                 where a 301 would let a client turn it into a GET, as the reference's `curl --location` does)
#   ignored-page  `/cloned-voice-list/` ignores `page` (not in the reference for it): page 1 every time
VARIATIONS = ("odd-fields", "extra-fields", "moved", "ignored-page")
MOVED_PREFIX = "/moved"
# What a cloud gateway in front of an API answers when the API behind it fails, in its own shape (never
# Unmixr's): Amazon API Gateway's JSON (`{"message": ...}`, "Endpoint request timed out" after its
# integration timeout) or a reverse proxy's HTML page (nginx's).
GATEWAY_MESSAGES = {502: "Internal server error", 503: "Service Unavailable", 504: "Endpoint request timed out"}
GATEWAY_PAGES = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out"}

GENDERS = ("any", "male", "female", "child")
RESPONSE_TYPES = ("url", "base64", "bytes")
OUTPUT_TYPES = ("mp3", "wav")
_PROSODY: dict[str, tuple[int, tuple[str, ...]]] = {
    "speaking_rate": (100, ("default", "x-slow", "slow", "medium", "fast", "x-fast")),
    "speaking_pitch": (50, ("default", "x-low", "low", "medium", "high", "x-high")),
    "speaking_volume": (100, ("default", "silent", "x-soft", "soft", "medium", "loud", "x-loud")),
}
_PERCENT = re.compile(r"([+-]?)(\d{1,3})%")
_MALFORMED_BODY = b'{"success": true, "code": 200, "duration": 1.2, "audio_url": "http://'
# A 1x1 transparent PNG, served for avatar URLs.
_AVATAR_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def documented_message(endpoint: str, code: int) -> str:
    """Return the reference's description of `code` on `endpoint`, or the HTTP reason phrase."""
    message = DOCUMENTED_ERRORS.get(endpoint, {}).get(code) or COMMON_ERRORS.get(code)
    if message:
        return message
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def normalize_endpoint(endpoint: str) -> str:
    """Turn "/api/v1/short-tts/", "short-tts" or "/short-tts/" into the endpoint form "/short-tts/"."""
    path = endpoint.strip().removeprefix(MOVED_PREFIX + API_PREFIX)
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    first = path.strip("/").split("/")[0]
    return f"/{first}/" if first else "/"


def speaks(voice: dict[str, Any], language: str) -> bool:
    """Tell whether a voice speaks `language`; a bare language such as "en" matches its locales and back."""
    wanted = language.strip().lower()
    if not wanted:
        return False
    spoken = [str(voice.get("language") or "")]
    spoken += [str(item) for item in voice.get("other_languages") or []]
    spoken += [str(item) for item in (voice.get("supported_locales") or {})]
    for item in spoken:
        code = item.lower()
        if code and (code == wanted or code.split("-")[0] == wanted or wanted.split("-")[0] == code):
            return True
    return False


def _reason(status: int) -> str:
    """Return a reason phrase for any status, including the non-standard 508/509."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Return a JSON response with an explicit reason phrase."""
    return web.Response(
        text=json.dumps(payload),
        status=status,
        reason=_reason(status),
        content_type="application/json",
        headers=headers,
    )


def _normalize_use_case(value: str) -> str:
    """Reduce "podcast-voices" and "Podcast" (or "e-Learning" and "elearning-voices") to one form."""
    value = value.strip().lower()
    value = value.removesuffix("-voices")
    return re.sub(r"[^a-z0-9]", "", value)


def _split(value: str) -> list[str]:
    """Split a comma-separated query value into its non-empty, trimmed parts."""
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass
class RecordedRequest:
    """One request the stand-in received, as the client sent it."""

    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    json: Any | None
    form: dict[str, str] | None
    file_size: int | None
    headers: dict[str, str]
    started_at: float
    finished_at: float | None = None
    status: int | None = None


@dataclass
class _Fault:
    """A pending fault for the next `remaining` requests to `endpoint` (None: any endpoint)."""

    kind: str
    remaining: int
    endpoint: str | None
    status: int = 500
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] | None = None
    http_status: int | None = None
    # Only requests this accepts take the fault (None: every request to the endpoint).
    when: Callable[[RecordedRequest], bool] | None = None


@dataclass
class _Body:
    """The request body as read before any fault or handler runs."""

    raw: bytes = b""
    form: dict[str, str] | None = None
    file: bytes | None = None
    file_size: int | None = None
    json_error: bool = False
    parsed_json: Any = None


_Handler = Callable[[web.Request, _Body, dict[str, str]], Awaitable[web.StreamResponse]]


class FakeUnmixr:
    """An aiohttp server on 127.0.0.1 that behaves like the Unmixr API reference describes."""

    def __init__(
        self,
        *,
        api_key: str = "test-unmixr-key",
        prebuilt_chars: int = 1_000_000,
        cloned_chars: int = 100_000,
        clone_limit: int = 10,
        chars_per_second: float = 15.0,
        max_page_size: int = 100,
        voices: list[dict[str, Any]] | None = None,
        tts_capacity: int | None = None,
        capacity_retry_after: float = 1.0,
    ) -> None:
        self.api_key = api_key
        self.prebuilt_chars = prebuilt_chars
        self.cloned_chars = cloned_chars
        self.clone_limit = clone_limit
        self.chars_per_second = chars_per_second
        self.max_page_size = max_page_size
        # Set to serve pages of this size whatever `page_size` asks for (an upstream that ignores it).
        self.page_size_override: int | None = None
        # Ways the answers differ from the reference's examples (see VARIATIONS); none by default.
        self.variations: set[str] = set()
        self.max_clone_bytes = CLONE_MAX_BYTES
        self.voices: list[dict[str, Any]] = copy.deepcopy(voices) if voices is not None else default_voices()
        self.clones: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.tts_latency_per_char = 0.0
        # Capacity mode: above this many /short-tts/ at once, 429 with Retry-After (None: no limit).
        self.tts_capacity = tts_capacity
        self.capacity_retry_after = capacity_retry_after
        self.too_many_requests = 0
        self.peak_tts_concurrency = 0
        self._tts_in_flight = 0
        self.base_url = ""
        self.origin = ""
        self._faults: list[_Fault] = []
        self._latency: dict[str | None, float] = {}
        self._shapes: list[str] = []
        self._audio_url_bases: list[str] = []
        self._audio: OrderedDict[str, Audio] = OrderedDict()
        self._audio_bytes = 0
        self._frequencies: dict[str, int] = {}
        self._tones = ToneGenerator()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        # Catalogue voices get their tones up front so each keeps its pitch whatever order tests use them in.
        for voice in self.voices:
            self._frequency(str(voice.get("uuid", "")))
        # An API path is also served under /moved, where the "moved" variation sends it.
        api = r"(?:/moved)?/api/v1"
        self._routes: list[tuple[str, re.Pattern[str], _Handler, bool]] = [
            ("GET", re.compile(api + r"/voice-list/"), self._voice_list, True),
            ("GET", re.compile(api + r"/voice/(?P<uuid>[^/]+)/"), self._voice_detail, True),
            ("POST", re.compile(api + r"/short-tts/"), self._short_tts, True),
            ("POST", re.compile(api + r"/clone-voice/"), self._clone_voice, True),
            ("GET", re.compile(api + r"/cloned-voice-list/"), self._cloned_voice_list, True),
            ("GET", re.compile(api + r"/credit-balance/"), self._credit_balance, True),
            ("GET", re.compile(r"/audio/(?P<name>[^/]+)"), self._serve_audio, False),
            ("GET", re.compile(r"/samples/(?P<name>[^/]+)\.mp3"), self._serve_sample, False),
            ("GET", re.compile(r"/avatars/(?P<name>[^/]+)\.png"), self._serve_avatar, False),
        ]

    # Lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on `host`:`port` (0 picks a free port) and set `origin` and `base_url`."""
        self._closing = asyncio.Event()
        # Clone uploads may be up to 120 MB, and a bit over, to be refused properly rather than cut off.
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)  # bursts of concurrent requests queue, not drop
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.origin = f"http://{host}:{bound_port}"
        self.base_url = self.origin + API_PREFIX
        for voice in self.voices:
            self._rebase_urls(voice)

    async def close(self) -> None:
        """Stop serving; hung requests are released by dropping their connections."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeUnmixr:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Fault injection and latency

    def fail_next(
        self,
        status: int,
        n: int = 1,
        *,
        endpoint: str | None = None,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        http_status: int | None = None,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Answer the next `n` matching requests with an error (default: the documented one for that code).

        With `when`, only requests it accepts match (say, the one chunk of a long text that should fail).
        """
        self._add_fault(
            _Fault("fail", n, endpoint, status=status, body=body, headers=headers, http_status=http_status, when=when)
        )

    def gateway_error_next(self, status: int, n: int = 1, *, endpoint: str | None = None, html: bool = False) -> None:
        """Answer the next `n` matching requests as a gateway in front of the API would: 502, 503 or 504.

        The body is the gateway's (JSON, or an HTML page with `html`), never Unmixr's. A 502 or 503 means the
        request never reached the API; a 504 means the API got it and works on (a `/short-tts/` is charged,
        a clone is made) while the gateway gave up waiting.
        """
        if status not in GATEWAY_MESSAGES:
            raise ValueError(f"a gateway answers {sorted(GATEWAY_MESSAGES)}, not {status}")
        self._add_fault(_Fault("gateway", n, endpoint, status=status, body="html" if html else "json"))

    def vary(self, *names: str) -> None:
        """Serve these variations of the reference's answers from now on ("all" for every one); none clears them."""
        wanted = set(VARIATIONS) if "all" in names else set(names)
        unknown = wanted - set(VARIATIONS)
        if unknown:
            raise ValueError(f"unknown variations {sorted(unknown)}; known: {', '.join(VARIATIONS)}")
        self.variations = wanted

    def set_latency(self, seconds: float, *, endpoint: str | None = None) -> None:
        """Delay every matching response by `seconds` until reset with 0."""
        key = normalize_endpoint(endpoint) if endpoint is not None else None
        if seconds > 0:
            self._latency[key] = seconds
        else:
            self._latency.pop(key, None)

    def hang_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Read the next `n` matching requests and never answer them (until close())."""
        self._add_fault(_Fault("hang", n, endpoint))

    def hang_after_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Do what the next `n` matching requests ask (a clone is made, credits are charged), then never answer.

        What a client sees when its request was acted on but the answer was lost: a timeout after sending.
        """
        self._add_fault(_Fault("hang_after", n, endpoint))

    def malformed_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Answer the next `n` matching requests with 200, a JSON content type and a body that is not JSON."""
        self._add_fault(_Fault("malformed", n, endpoint))

    def reset_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Drop the connection of the next `n` matching requests without any response."""
        self._add_fault(_Fault("reset", n, endpoint))

    def shape_next(self, shape: str, n: int = 1) -> None:
        """Force the shape of the next `n` successful /short-tts/ responses: "url", "base64" or "bytes"."""
        if shape not in RESPONSE_TYPES:
            raise ValueError(f"shape must be one of {RESPONSE_TYPES}, not {shape!r}")
        self._shapes.extend([shape] * n)

    def audio_url_base_next(self, base: str, n: int = 1) -> None:
        """Point the audio_url of the next `n` url-shaped /short-tts/ responses at another origin."""
        self._audio_url_bases.extend([base.rstrip("/")] * n)

    def set_capacity(self, limit: int | None, *, retry_after: float | None = None) -> None:
        """Allow at most `limit` concurrent /short-tts/ requests (None: no limit), answering 429 above it."""
        if limit is not None and limit < 1:
            raise ValueError("capacity must be at least 1")
        self.tts_capacity = limit
        if retry_after is not None:
            self.capacity_retry_after = retry_after

    def reset_load_counters(self) -> None:
        """Start counting 429s sent and the peak of concurrent /short-tts/ requests afresh."""
        self.too_many_requests = 0
        self.peak_tts_concurrency = self._tts_in_flight

    @property
    def tts_in_flight(self) -> int:
        """How many /short-tts/ requests are being served now."""
        return self._tts_in_flight

    def _add_fault(self, fault: _Fault) -> None:
        """Queue a fault after normalising its endpoint."""
        if fault.remaining < 1:
            return
        if fault.endpoint is not None:
            fault.endpoint = normalize_endpoint(fault.endpoint)
        self._faults.append(fault)

    def _take_fault(self, record: RecordedRequest) -> _Fault | None:
        """Consume one use of the oldest fault that matches the request."""
        for fault in self._faults:
            if (fault.endpoint is None or fault.endpoint == record.endpoint) and (
                fault.when is None or fault.when(record)
            ):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server is closing."""
        if seconds <= 0 or self._closing.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _drop_connection(self, request: web.Request) -> None:
        """Reset the client's connection (RST, not a graceful close) without writing a response."""
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    # Dispatch

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request, read its body, apply latency and faults, then route it."""
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            endpoint=normalize_endpoint(request.path),
            query=dict(request.query),
            json=None,
            form=None,
            file_size=None,
            headers=dict(request.headers),
            started_at=time.monotonic(),
        )
        self.requests.append(record)
        try:
            body = await self._read_body(request, record)
        except web.HTTPException as error:
            record.status = error.status
            record.finished_at = time.monotonic()
            raise
        if "moved" in self.variations and request.path.startswith(API_PREFIX):
            # Same origin, same path and query, under /moved; a POST keeps its method with a 308.
            status = 301 if request.method == "GET" else 308
            response = web.Response(status=status, headers={"Location": MOVED_PREFIX + request.path_qs})
            self._finish(record, response)
            return response
        if record.endpoint != TTS_ENDPOINT:
            return await self._answer(request, record, body)
        if self.tts_capacity is not None and self._tts_in_flight >= self.tts_capacity:
            # Like a gateway shedding load: refused at once, before any work or fault.
            response = self._over_capacity()
            self._finish(record, response)
            return response
        self._tts_in_flight += 1
        self.peak_tts_concurrency = max(self.peak_tts_concurrency, self._tts_in_flight)
        try:
            return await self._answer(request, record, body)
        finally:
            self._tts_in_flight -= 1

    async def _answer(self, request: web.Request, record: RecordedRequest, body: _Body) -> web.StreamResponse:
        """Apply latency and faults, then route the request."""
        await self._sleep(self._latency.get(None, 0.0) + self._latency.get(record.endpoint, 0.0))
        fault = self._take_fault(record)
        if fault is not None and fault.kind == "hang_after":
            await self._route(request, body)
            await self._closing.wait()
            self._drop_connection(request)
            return web.Response(status=499)
        if fault is not None and fault.kind in ("hang", "reset"):
            if fault.kind == "hang":
                await self._closing.wait()
            else:
                record.finished_at = time.monotonic()
            self._drop_connection(request)
            # Nothing reaches the client: aiohttp ignores writes to the aborted transport.
            return web.Response(status=499)
        response: web.StreamResponse
        if fault is not None and fault.kind == "gateway":
            if fault.status == 504:
                # The API behind the gateway does the work (and charges for it); only its answer is lost.
                await self._route(request, body)
            response = self._gateway_response(fault)
        elif fault is not None:
            response = self._fault_response(record.endpoint, fault)
        else:
            response = await self._route(request, body)
        self._finish(record, response)
        return response

    def _finish(self, record: RecordedRequest, response: web.StreamResponse) -> None:
        """Record the answer's status and time, counting a 429."""
        record.status = response.status
        record.finished_at = time.monotonic()
        if response.status == 429:
            self.too_many_requests += 1

    def _over_capacity(self) -> web.Response:
        """The 429 sent above capacity, in the API's error shape, with Retry-After in seconds."""
        payload = {"success": False, "code": 429, "message": "Too many concurrent requests. Please retry later."}
        return _json_response(payload, 429, {"Retry-After": f"{self.capacity_retry_after:g}"})

    @staticmethod
    def _gateway_response(fault: _Fault) -> web.Response:
        """A gateway's own error answer: JSON in its shape, or an HTML page."""
        status = fault.status
        if fault.body == "html":
            title = GATEWAY_PAGES[status]
            page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center></body></html>"
            return web.Response(text=page, status=status, reason=_reason(status), content_type="text/html")
        return _json_response({"message": GATEWAY_MESSAGES[status]}, status)

    def _fault_response(self, endpoint: str, fault: _Fault) -> web.Response:
        """Build the response of a "fail" or "malformed" fault."""
        if fault.kind == "malformed":
            return web.Response(body=_MALFORMED_BODY, status=200, content_type="application/json")
        status = fault.http_status if fault.http_status is not None else fault.status
        if isinstance(fault.body, str):
            return web.Response(
                text=fault.body,
                status=status,
                reason=_reason(status),
                content_type="text/html",
                headers=fault.headers,
            )
        payload = fault.body
        if payload is None:
            payload = {
                "success": False,
                "code": fault.status,
                "message": documented_message(endpoint, fault.status),
            }
        return _json_response(payload, status, fault.headers)

    async def _route(self, request: web.Request, body: _Body) -> web.StreamResponse:
        """Find the route for the path, check the method and the key, and run the handler."""
        path_matched = False
        for method, pattern, handler, needs_key in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            path_matched = True
            if method != request.method:
                continue
            if needs_key and not self._authorized(request):
                return _json_response({"detail": "Invalid API key."}, 401)
            return await handler(request, body, match.groupdict())
        if path_matched:
            return _json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)
        return _json_response({"detail": "Not found."}, 404)

    def _authorized(self, request: web.Request) -> bool:
        """Check the `Authorization: Bearer <key>` header in constant time."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    async def _read_body(self, request: web.Request, record: RecordedRequest) -> _Body:
        """Read the whole body (multipart streamed, the audio kept up to the size limit) and record it."""
        body = _Body()
        if request.content_type.startswith("multipart/"):
            body.form = {}
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                if name == "audio" or part.filename is not None:
                    data, size = await self._read_file_part(part)
                    if name == "audio":
                        body.file, body.file_size = data, size
                else:
                    body.form[name] = (await part.read()).decode("utf-8", errors="replace")
            record.form = dict(body.form)
            record.file_size = body.file_size
            return body
        if request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            body.form = {key: str(value) for key, value in posted.items()}
            record.form = dict(body.form)
            return body
        body.raw = await request.read()
        if body.raw:
            try:
                body.parsed_json = json.loads(body.raw)
                record.json = body.parsed_json
            except ValueError:
                body.json_error = True
        return body

    async def _read_file_part(self, part: BodyPartReader) -> tuple[bytes, int]:
        """Read a file part, keeping at most one byte over the clone limit but counting all of it."""
        kept = bytearray()
        size = 0
        while True:
            chunk = await part.read_chunk(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if len(kept) <= self.max_clone_bytes:
                kept += chunk[: self.max_clone_bytes + 1 - len(kept)]
        return bytes(kept), size

    # Voice lists

    async def _voice_list(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /voice-list/: filter the catalogue (or the clones) and return one page."""
        query = request.query
        category = (query.get("c") or "prebuilt-voices").strip().lower()
        if category not in CATEGORIES:
            return _json_response(
                {"detail": f"Invalid category '{category}'. Supported values: {', '.join(CATEGORIES)}."}, 400
            )
        gender = (query.get("gender") or "any").strip().lower()
        if gender not in GENDERS:
            return _json_response(
                {"detail": f"Invalid gender '{gender}'. Supported values: {', '.join(GENDERS)}."}, 400
            )
        if category == "clones":
            pool = self.clones
        else:
            # A voice given without a category counts as prebuilt.
            pool = [voice for voice in self.voices if voice.get("category", "prebuilt-voices") == category]
        matches = [voice for voice in pool if self._matches(voice, query, gender)]
        return self._page(matches, query)

    async def _cloned_voice_list(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /cloned-voice-list/: the account's clones, filtered by name, one page."""
        search = (request.query.get("q") or "").strip().lower()
        matches = [voice for voice in self.clones if search in str(voice.get("character", "")).lower()]
        query: Mapping[str, str] = request.query
        if "ignored-page" in self.variations:
            query = {key: value for key, value in query.items() if key != "page"}
        return self._page(matches, query)

    def _matches(self, voice: dict[str, Any], query: Mapping[str, str], gender: str) -> bool:
        """Apply the q, lang, gender, capabilities, styles and uc filters to one voice."""
        search = (query.get("q") or "").strip().lower()
        if search and search not in str(voice.get("character", "")).lower():
            return False
        language = (query.get("lang") or "").strip()
        if language and not speaks(voice, language):
            return False
        voice_gender = str(voice.get("gender") or "").lower()
        if gender == "child":
            if voice_gender != "child" and str(voice.get("age") or "").lower() != "child":
                return False
        elif gender != "any" and voice_gender != gender:
            return False
        capabilities = {str(item).lower() for item in voice.get("capabilities") or []}
        if any(item.lower() not in capabilities for item in _split(query.get("capabilities") or "")):
            return False
        styles = {str(item).lower() for item in [*(voice.get("emotions") or []), *(voice.get("roles") or [])]}
        if any(item.lower() not in styles for item in _split(query.get("styles") or "")):
            return False
        use_cases = {_normalize_use_case(str(item)) for item in voice.get("use_cases") or []}
        return all(_normalize_use_case(item) in use_cases for item in _split(query.get("uc") or ""))

    def _page(self, voices: list[dict[str, Any]], query: Mapping[str, str]) -> web.Response:
        """Return one page of `voices` in the reference's paging shape, honouring `fields`."""
        size_text = (query.get("page_size") or "").strip()
        size = DEFAULT_PAGE_SIZE
        if size_text:
            try:
                size = int(size_text)
            except ValueError:
                size = 0
            if size < 1:
                return _json_response({"detail": "Invalid page_size: it must be a positive integer."}, 400)
        size = min(size, self.max_page_size)
        if self.page_size_override is not None:
            size = self.page_size_override
        count = len(voices)
        total = max(1, math.ceil(count / size))
        page_text = (query.get("page") or "1").strip()
        if page_text == "last":
            page = total
        else:
            try:
                page = int(page_text)
            except ValueError:
                return _json_response({"detail": "Invalid page: it must be an integer."}, 400)
        if page < 1 or page > total:
            return _json_response({"detail": "Invalid page."}, 404)
        start = (page - 1) * size
        chunk = voices[start : start + size]
        fields = _split(query.get("fields") or "")
        results: list[Any] = [self._public(voice, fields) for voice in chunk]
        paging: dict[str, Any] = {
            "current_page": page,
            "page_start": start + 1 if count else 0,
            "page_end": start + len(chunk),
            "next_page": page + 1 if page < total else None,
            "prev_page": page - 1 if page > 1 else None,
            "total_page": total,
        }
        if "odd-fields" in self.variations:
            paging = {key: None if value is None else str(value) for key, value in paging.items()}
            if page == 1:
                results += copy.deepcopy(_BROKEN_ENTRIES)
        answer: dict[str, Any] = {"count": count, "results": results, **paging}
        if "extra-fields" in self.variations:
            answer["links"] = {"next": None, "previous": None}
            answer["cached"] = False
        return _json_response(answer)

    def _public(self, voice: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        """Return the voice as the API shows it: without the internal category, only `fields` if given."""
        shown = {key: value for key, value in voice.items() if key != "category"}
        if fields:
            wanted = set(fields)
            shown = {key: value for key, value in shown.items() if key in wanted}
        shown = copy.deepcopy(shown)
        if "odd-fields" in self.variations:
            shown = _odd_voice(shown)
        if "extra-fields" in self.variations:
            shown.update(_EXTRA_VOICE_FIELDS)
        return shown

    def _find_voice(self, voice_id: str) -> dict[str, Any] | None:
        """Find a catalogue voice or clone by uuid (case-insensitive)."""
        wanted = voice_id.strip().lower()
        for voice in [*self.voices, *self.clones]:
            if str(voice.get("uuid", "")).lower() == wanted:
                return voice
        return None

    def _is_clone(self, voice: dict[str, Any]) -> bool:
        """Tell whether the voice is one of the account's clones."""
        return any(clone is voice for clone in self.clones) or voice.get("category") == "clones"

    async def _voice_detail(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /voice/{uuid}/: one voice (clones too), honouring `fields`."""
        voice = self._find_voice(params["uuid"])
        if voice is None:
            return _json_response({"detail": "Not found."}, 404)
        return _json_response(self._public(voice, _split(request.query.get("fields") or "")))

    async def _credit_balance(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /credit-balance/: the live balances."""
        credits: dict[str, Any] = {"prebuilt_chars": self.prebuilt_chars, "cloned_chars": self.cloned_chars}
        answer: dict[str, Any] = {"status": "SUCCESS", "code": 200, "credits": credits}
        if "odd-fields" in self.variations:
            answer["credits"] = {kind: str(left) for kind, left in credits.items()}
        if "extra-fields" in self.variations:
            answer["plan"] = {"name": "Business", "renews": None}
            answer["credits"]["voiceover_minutes"] = 12
        return _json_response(answer)

    # Text to speech

    @staticmethod
    def _tts_error(code: int, message: str | None = None) -> web.Response:
        """Return a /short-tts/ error body at HTTP status `code`."""
        text = message or documented_message(TTS_ENDPOINT, code)
        return _json_response({"success": False, "code": code, "message": text}, code)

    async def _short_tts(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """POST /short-tts/: validate every field, charge credits, and return audio in the asked shape."""
        payload = body.parsed_json
        if body.json_error or not isinstance(payload, dict):
            return self._tts_error(400, "Invalid request body: send a JSON object.")
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._tts_error(400, "text is required.")
        if len(text) > MAX_TEXT_LENGTH:
            return self._tts_error(401)
        voice_id = payload.get("voice_id")
        if not isinstance(voice_id, str) or not voice_id.strip():
            return self._tts_error(400, "voice_id is required.")
        if "," in voice_id:
            return self._tts_error(503)
        voice = self._find_voice(voice_id)
        if voice is None or not voice.get("is_available", True):
            return self._tts_error(404)
        if voice.get("category") == "openai-voices" and not request.headers.get("OpenAI-API-Key", "").strip():
            return self._tts_error(501)
        problem = self._tts_problem(payload, voice)
        if problem is not None:
            return self._tts_error(400, problem)
        response_type = payload.get("response_type") or "url"
        output_type = payload.get("output_type") or "mp3"

        cost = len(text)
        is_clone = self._is_clone(voice)
        # Reserve the credits before generating, so concurrent requests cannot overdraw the balance.
        if is_clone:
            if self.cloned_chars < cost:
                return self._tts_error(504)
            self.cloned_chars -= cost
        else:
            if self.prebuilt_chars < cost:
                return self._tts_error(505)
            self.prebuilt_chars -= cost
        try:
            spoken = self._apply_pronunciations(text, payload.get("pronunciation_dict") or {})
            await self._sleep(self.tts_latency_per_char * len(text))
            seconds = max(0.5, len(spoken) / self.chars_per_second)
            audio = await self._tones.tone(self._frequency(str(voice["uuid"])), seconds, output_type)
        except Exception:
            self._refund(is_clone, cost)
            return self._tts_error(509)
        except asyncio.CancelledError:
            self._refund(is_clone, cost)
            raise

        shape = self._shapes.pop(0) if self._shapes else response_type
        if shape == "bytes":
            return web.Response(body=audio.data, content_type=audio.content_type)
        result: dict[str, Any] = {
            "success": True,
            "code": 200,
            "duration": round(audio.duration, 3),
            "credit_usage": {"prebuilt": 0 if is_clone else cost, "voice_cloning": cost if is_clone else 0},
        }
        if shape == "base64":
            result["audio"] = base64.b64encode(audio.data).decode("ascii")
        else:
            audio_id = self._store_audio(audio)
            origin = self._audio_url_bases.pop(0) if self._audio_url_bases else self.origin
            result["audio_url"] = f"{origin}/audio/{audio_id}.{audio.extension}"
        if "odd-fields" in self.variations:
            result["duration"] = str(result["duration"])
            result["credit_usage"] = {kind: str(spent) for kind, spent in result["credit_usage"].items()}
        if "extra-fields" in self.variations:
            result["request_id"] = uuid.uuid4().hex
            result["meta"] = {"model": "stand-in", "characters": len(text)}
        return _json_response(result)

    def _refund(self, is_clone: bool, cost: int) -> None:
        """Give back reserved credits after a failed generation."""
        if is_clone:
            self.cloned_chars += cost
        else:
            self.prebuilt_chars += cost

    def _tts_problem(self, payload: dict[str, Any], voice: dict[str, Any]) -> str | None:
        """Return why the optional /short-tts/ fields are invalid for this voice, or None if they are fine."""
        response_type = payload.get("response_type")
        if response_type is not None and response_type not in RESPONSE_TYPES:
            return documented_message(TTS_ENDPOINT, 400)
        output_type = payload.get("output_type")
        if output_type is not None and output_type not in OUTPUT_TYPES:
            return "Invalid output_type. Supported values are: 'mp3' and 'wav'."
        for name, (limit, words) in _PROSODY.items():
            value = payload.get(name)
            if value is not None and not _valid_prosody(value, limit, words):
                return f"Invalid {name}. Supported values are: -{limit}% to +{limit}%, {', '.join(words)}."
        intensity = payload.get("intensity")
        if intensity is not None:
            if isinstance(intensity, bool) or not isinstance(intensity, int) or not -100 <= intensity <= 100:
                return "Invalid intensity. Supported values are integers from -100 to 100."
            if "intensity" not in (voice.get("capabilities") or []):
                return "Invalid intensity. This voice does not support intensity."
        language = payload.get("language")
        if language is not None:
            if not isinstance(language, str) or not speaks(voice, language):
                return f"Invalid language. The selected voice does not speak {language!r}."
        dictionary = payload.get("pronunciation_dict")
        if dictionary is not None and not (
            isinstance(dictionary, dict)
            and all(isinstance(key, str) and isinstance(value, str) for key, value in dictionary.items())
        ):
            return "Invalid pronunciation_dict. It must map words (strings) to pronunciations (strings)."
        return None

    @staticmethod
    def _apply_pronunciations(text: str, dictionary: dict[str, str]) -> str:
        """Replace each dictionary word in the text (whole word, case-insensitive) by its pronunciation."""
        lookup = {word.lower(): spoken for word, spoken in dictionary.items() if word}
        if not lookup:
            return text
        words = sorted(lookup, key=len, reverse=True)
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in words) + r")(?!\w)", re.IGNORECASE)
        return pattern.sub(lambda match: lookup[match.group(0).lower()], text)

    def _frequency(self, voice_id: str) -> int:
        """Return the voice's tone frequency in Hz: stable per uuid and distinct from other voices' here."""
        key = voice_id.lower()
        known = self._frequencies.get(key)
        if known is not None:
            return known
        used = set(self._frequencies.values())
        candidate = 200 + zlib.crc32(key.encode()) % 600
        while candidate in used:
            candidate = 200 + (candidate - 200 + 7) % 600
        self._frequencies[key] = candidate
        return candidate

    def _store_audio(self, audio: Audio) -> str:
        """Keep a clip for download under a new id; the oldest clips are forgotten past a bound."""
        audio_id = uuid.uuid4().hex
        self._audio[audio_id] = audio
        self._audio_bytes += len(audio.data)
        while len(self._audio) > 1 and (
            len(self._audio) > STORED_AUDIO_LIMIT or self._audio_bytes > STORED_AUDIO_BYTES
        ):
            _, forgotten = self._audio.popitem(last=False)
            self._audio_bytes -= len(forgotten.data)
        return audio_id

    # Cloning

    @staticmethod
    def _clone_error(code: int) -> web.Response:
        """Return a /clone-voice/ error body at HTTP status `code`."""
        return _json_response(
            {"success": False, "code": code, "message": documented_message(CLONE_ENDPOINT, code)}, code
        )

    async def _clone_voice(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """POST /clone-voice/: check the upload as the reference says and add the new clone."""
        if not body.file:
            return self._clone_error(400)
        form = body.form or {}
        name = form.get("name", "").strip()
        if not name:
            return self._clone_error(401)
        if len(self.clones) >= self.clone_limit:
            return self._clone_error(402)
        if (body.file_size or 0) > self.max_clone_bytes:
            return self._clone_error(501)
        duration = await probe_duration(body.file)
        low, high = CLONE_MIN_SECONDS - CLONE_PADDING_SECONDS, CLONE_MAX_SECONDS + CLONE_PADDING_SECONDS
        if duration is None or not low <= duration <= high:
            return self._clone_error(501)
        voice_id = str(uuid.uuid4())
        self.clones.append(
            {
                "uuid": voice_id,
                "character": name,
                "gender": "",
                "language": "en",
                "quality": "",
                "sample_voice_url": f"{self.origin}/samples/{voice_id}.mp3",
                "emotions": [],
                "capabilities": [],
                "roles": [],
                "use_cases": [],
                "other_languages": list(CLONE_LANGUAGES),
                "supported_locales": {},
                "is_available": True,
                "date_created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "is_multilingual": True,
                "wpm": None,
                "is_new": True,
                "description": form.get("description", ""),
                "age": None,
                "personality": [],
                "avatar_url": None,
                "category": "clones",
            }
        )
        self._frequency(voice_id)
        answer: dict[str, Any] = {"status": "SUCCESS", "voice_id": voice_id, "code": 200}
        if "extra-fields" in self.variations:
            answer["message"] = "Clone created"
            answer["voice"] = {"uuid": voice_id, "status": "processing"}
        return _json_response(answer)

    # Files served without a key

    async def _serve_audio(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /audio/<id>.<ext>: a clip made by /short-tts/."""
        audio_id, _, extension = params["name"].partition(".")
        audio = self._audio.get(audio_id)
        if audio is None or extension != audio.extension:
            return _json_response({"detail": "Not found."}, 404)
        return web.Response(body=audio.data, content_type=audio.content_type)

    async def _serve_sample(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /samples/<uuid>[-<locale>].mp3: a short sample of a known voice."""
        voice = self._find_voice(params["name"][:36])
        if voice is None:
            return _json_response({"detail": "Not found."}, 404)
        audio = await self._tones.tone(self._frequency(str(voice["uuid"])), SAMPLE_SECONDS, "mp3")
        return web.Response(body=audio.data, content_type=audio.content_type)

    async def _serve_avatar(self, request: web.Request, body: _Body, params: dict[str, str]) -> web.StreamResponse:
        """GET /avatars/<uuid>.png: a tiny placeholder image."""
        return web.Response(body=_AVATAR_PNG, content_type="image/png")

    def _rebase_urls(self, voice: dict[str, Any]) -> None:
        """Point the catalogue's placeholder URLs at this server's origin."""
        for key in ("sample_voice_url", "avatar_url"):
            value = voice.get(key)
            if isinstance(value, str) and value.startswith(CATALOGUE_ORIGIN):
                voice[key] = self.origin + value[len(CATALOGUE_ORIGIN) :]
        locales = voice.get("supported_locales")
        if isinstance(locales, dict):
            for locale, value in locales.items():
                if isinstance(value, str) and value.startswith(CATALOGUE_ORIGIN):
                    locales[locale] = self.origin + value[len(CATALOGUE_ORIGIN) :]


# Entries the "odd-fields" variation adds to the first page of every list: no uuid, no name, not an object.
_BROKEN_ENTRIES: list[Any] = [
    {"character": "Nameless Uuid", "language": "en-US", "is_available": True},
    {"uuid": "0badc0de-0000-4000-8000-000000000000", "character": None, "language": "en-US"},
    "voice-removed",
]
# Keys the "extra-fields" variation adds to every voice.
_EXTRA_VOICE_FIELDS: dict[str, Any] = {
    "accent": {"name": "General American", "region": "US"},
    "tags": ["featured", {"id": 7}],
    "pricing_tier": 2,
}


def _odd_voice(shown: dict[str, Any]) -> dict[str, Any]:
    """The same voice with its optional fields in types other than the reference's example (see VARIATIONS)."""
    odd = dict(shown)
    if "emotions" in odd:
        odd["emotions"] = [{"name": name, "intensity": 1} for name in odd["emotions"]] or [{"name": "neutral"}]
    if "roles" in odd:
        odd["roles"] = [{"role": role} for role in odd["roles"]] or [{"role": "narrator", "age": None}]
    locales = odd.get("supported_locales")
    if isinstance(locales, dict) and locales:
        odd["supported_locales"] = {**locales, next(iter(locales)): None}
    capabilities = odd.get("capabilities")
    if isinstance(capabilities, list) and len(capabilities) == 1:
        odd["capabilities"] = capabilities[0]
    elif isinstance(capabilities, list) and capabilities:
        odd["capabilities"] = [*capabilities, {"name": "beta-feature"}]
    for key in ("gender", "description", "avatar_url"):
        if odd.get(key):
            odd[key] = {"value": odd[key]}
    if "age" in odd:
        odd["age"] = 30
    if "quality" in odd:
        odd["quality"] = None
    if odd.get("wpm") is not None:
        odd["wpm"] = f"{odd['wpm']}"
    for key in ("is_new", "is_multilingual"):
        if key in odd:
            odd[key] = "true" if odd[key] else "false"
    if "date_created" in odd:
        odd["date_created"] = 1713796376
    personality = odd.get("personality")
    if isinstance(personality, list) and personality:
        odd["personality"] = personality[0]
    return odd


def _valid_prosody(value: Any, limit: int, words: tuple[str, ...]) -> bool:
    """Check a rate, pitch or volume: one of the reference's words (any case) or a percentage up to ±limit."""
    if not isinstance(value, str):
        return False
    if value.lower() in words:
        return True
    match = _PERCENT.fullmatch(value)
    return match is not None and int(match.group(2)) <= limit


async def _serve(host: str, port: int, api_key: str, tts_capacity: int | None, variations: list[str]) -> None:
    """Run the stand-in until cancelled."""
    fake = FakeUnmixr(api_key=api_key, tts_capacity=tts_capacity)
    fake.vary(*variations)
    await fake.start(host, port)
    print(f"Unmixr stand-in listening; UNMIXR_BASE_URL={fake.base_url}", flush=True)
    print(f"UNMIXR_API_KEY={fake.api_key}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: serve the stand-in by hand, e.g. `python -m tests.fakes.unmixr --port 8765`."""
    parser = argparse.ArgumentParser(description="A local stand-in for the Unmixr API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="test-unmixr-key")
    parser.add_argument("--tts-capacity", type=int, default=None, help="429 above this many concurrent /short-tts/")
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        choices=[*VARIATIONS, "all"],
        help="serve answers that differ from the reference's examples this way (repeatable)",
    )
    arguments = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(arguments.host, arguments.port, arguments.api_key, arguments.tts_capacity, arguments.vary))


if __name__ == "__main__":
    main()
