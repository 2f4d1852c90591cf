"""An asynchronous client for the Unmixr text-to-speech API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from yarl import URL

from bot.outages import outages, transport_reason
from bot.unmixr.errors import (
    CLONE_ENDPOINT,
    TTS_ENDPOINT,
    AudioDownloadError,
    AudioTooLargeError,
    GenerationServerError,
    InputTooLongError,
    InvalidApiKeyError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UnmixrConnectionError,
    UnmixrError,
    UnmixrTimeoutError,
    UpstreamServerError,
    error_for,
)
from bot.unmixr.limiter import AdaptiveLimiter
from bot.unmixr.models import (
    CloneResult,
    CreditBalance,
    CreditUsage,
    TTSRequest,
    TTSResult,
    Voice,
    VoicePage,
)

log = logging.getLogger("bot.unmixr")

DEFAULT_BASE_URL: Final = "https://unmixr.com/api/v1"
MAX_TEXT_LENGTH: Final = 2000
ALLOWED_AUDIO_HOSTS: Final = frozenset({"unmixr.com", "resource.unmixr.com", "unmixr.s3.amazonaws.com"})
# A local API (a stand-in or proxy) may call itself by any loopback name: localhost, 127.0.0.0/8 or ::1.
_LOCALHOST: Final = "localhost"
# A server asking for a longer pause than this is not worth waiting for inside one interaction.
MAX_RETRY_AFTER: Final = 20.0

VOICE_LIST_ENDPOINT: Final = "/voice-list/"
VOICE_ENDPOINT: Final = "/voice/"
CLONED_VOICE_LIST_ENDPOINT: Final = "/cloned-voice-list/"
CREDIT_BALANCE_ENDPOINT: Final = "/credit-balance/"
DOWNLOAD_ENDPOINT: Final = "audio-download"
# How each endpoint is named to an observer: the reference's path template, never a real uuid or audio URL.
ENDPOINT_TEMPLATES: Final = {VOICE_ENDPOINT: "/voice/{uuid}/", DOWNLOAD_ENDPOINT: "{audio_url}"}

# Told of every HTTP attempt: (endpoint template, HTTP status or "timeout"/"connection_error", seconds).
RequestObserver = Callable[[str, str, float], None]

_BASE64_KEYS: Final = ("audio", "audio_base64", "audio_content", "data")
_MAX_REDIRECTS: Final = 3
_CHUNK_SIZE: Final = 64 * 1024
# Retried when the server says so; every other documented code is permanent.
_RETRYABLE_STATUS_ERRORS: Final = (
    RateLimitedError,
    ServiceUnavailableError,
    UpstreamServerError,
    GenerationServerError,
)
_WAV_TYPES: Final = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_MP3_TYPES: Final = frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg"})

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Reply:
    """The parts of an HTTP response the client keeps once the connection is released."""

    status: int
    content_type: str
    body: bytes
    retry_after: float | None
    location: str


class _Retryable(Exception):
    """Carries an error that the retry loop may retry."""

    def __init__(self, error: UnmixrError) -> None:
        super().__init__(error.message)
        self.error = error


def _query_value(value: object) -> str:
    """Render one query parameter: sequences become comma-separated lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(str(item) for item in value)
    return str(value)


def _query(**parameters: object) -> dict[str, str]:
    """Build a query string mapping, leaving out parameters that are None."""
    return {name: _query_value(value) for name, value in parameters.items() if value is not None}


def _parse_retry_after(value: str | None) -> float | None:
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


def _body_code(data: Mapping[str, Any]) -> int | None:
    """Read the `code` of a JSON body, if it is a number."""
    code = data.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


def _body_message(data: Mapping[str, Any]) -> str:
    """Read the human message of a JSON body under any of the usual keys."""
    for key in ("message", "detail", "error", "msg"):
        value = data.get(key)
        if value:
            return value if isinstance(value, str) else json.dumps(value)[:300]
    return ""


def _is_failure(data: Mapping[str, Any]) -> bool:
    """Tell whether a JSON body reports a failure whatever the HTTP status."""
    if data.get("success") is False:
        return True
    status = data.get("status")
    if isinstance(status, str) and status.strip().upper() != "SUCCESS":
        return True
    code = _body_code(data)
    return code is not None and code >= 400


def _media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def _is_audio_type(content_type: str) -> bool:
    """Tell whether a Content-Type announces raw audio."""
    media = _media_type(content_type)
    return media.startswith("audio/") or media == "application/octet-stream"


def _sniff_format(audio: bytes) -> str | None:
    """Recognise WAV and MP3 by their first bytes."""
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        return "wav"
    if audio[:3] == b"ID3" or (len(audio) > 1 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def _audio_format(audio: bytes, *, content_type: str = "", url: str = "", fallback: str | None) -> str:
    """Work out "mp3" or "wav" from the bytes, the Content-Type, the URL, then the request."""
    sniffed = _sniff_format(audio)
    if sniffed:
        return sniffed
    media = _media_type(content_type)
    if media in _WAV_TYPES:
        return "wav"
    if media in _MP3_TYPES:
        return "mp3"
    path = URL(url).path.lower() if url else ""
    if path.endswith(".wav"):
        return "wav"
    if path.endswith(".mp3"):
        return "mp3"
    return fallback or "mp3"


def _decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, tolerating a data: prefix and whitespace."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))


def _number(value: object) -> float | None:
    """Read a duration-like number, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_loopback(host: str) -> bool:
    """Whether a host (lower-case, as in a URL) names this machine: localhost or a loopback address."""
    if host == _LOCALHOST:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UnmixrClient:
    """Talks to the Unmixr API over one shared aiohttp session, with retries, timeouts and adaptive limits."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        openai_api_key: SecretStr | None = None,
        max_concurrency: int = 64,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        tts_timeout: float = 25.0,
        default_timeout: float = 10.0,
        max_audio_bytes: int = 50 * 1024 * 1024,
        observer: RequestObserver | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        base = URL(base_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        self._session = session
        self._api_key = api_key
        self._openai_api_key = openai_api_key
        self._base_url = base
        self._base_host = base.host.lower().rstrip(".")
        self._limiter = AdaptiveLimiter(max_concurrency)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._tts_timeout = tts_timeout
        self._default_timeout = default_timeout
        self._max_audio_bytes = max_audio_bytes
        self._observer = observer
        # Whether Unmixr's last answer to an API call refused the key (the health check's `unmixr`).
        self.key_rejected = False
        self._secrets = tuple(
            secret.get_secret_value()
            for secret in (api_key, openai_api_key)
            if secret is not None and secret.get_secret_value()
        )

    def __repr__(self) -> str:
        return (
            f"UnmixrClient(base_url={str(self._base_url)!r}, "
            f"openai_key_configured={self._openai_api_key is not None}, "
            f"concurrency={self._limiter.limit} of at most {self._limiter.ceiling}, max_retries={self._max_retries})"
        )

    @property
    def base_url(self) -> str:
        """The API root every endpoint is relative to."""
        return str(self._base_url)

    @property
    def has_openai_key(self) -> bool:
        """Tell whether an OpenAI API key is configured (needed for openai-voices)."""
        return self._openai_api_key is not None

    @property
    def limiter(self) -> AdaptiveLimiter:
        """The adaptive limit shared by every `/short-tts/` attempt of this client."""
        return self._limiter

    # Public API -------------------------------------------------------------

    async def voice_list(
        self,
        *,
        category: str | None = None,
        query: str | None = None,
        language: str | None = None,
        gender: str | None = None,
        capabilities: str | Sequence[str] | None = None,
        styles: str | Sequence[str] | None = None,
        use_case: str | Sequence[str] | None = None,
        page: int | None = None,
        page_size: int | None = None,
        fields: Sequence[str] | None = None,
    ) -> VoicePage:
        """Fetch one page of the voice catalogue matching the filters."""
        params = _query(
            c=category,
            q=query,
            lang=language,
            gender=gender,
            capabilities=capabilities,
            styles=styles,
            uc=use_case,
            page=page,
            page_size=page_size,
            fields=fields,
        )
        data = await self._get_json(VOICE_LIST_ENDPOINT, VOICE_LIST_ENDPOINT, params)
        return self._parse(VoicePage, data, VOICE_LIST_ENDPOINT)

    async def iter_voices(
        self,
        *,
        category: str | None = None,
        query: str | None = None,
        language: str | None = None,
        gender: str | None = None,
        capabilities: str | Sequence[str] | None = None,
        styles: str | Sequence[str] | None = None,
        use_case: str | Sequence[str] | None = None,
        page_size: int | None = 100,
        fields: Sequence[str] | None = None,
    ) -> AsyncIterator[Voice]:
        """Yield every matching voice, following `next_page` until the last page."""

        async def fetch(page: int | None) -> VoicePage:
            return await self.voice_list(
                category=category,
                query=query,
                language=language,
                gender=gender,
                capabilities=capabilities,
                styles=styles,
                use_case=use_case,
                page=page,
                page_size=page_size,
                fields=fields,
            )

        async for voice in self._iter_pages(fetch):
            yield voice

    async def voice_details(self, uuid: str, *, fields: Sequence[str] | None = None) -> Voice:
        """Fetch one voice by uuid."""
        if not uuid.strip():
            raise NotFoundError(endpoint=VOICE_ENDPOINT, detail="empty uuid")
        path = f"{VOICE_ENDPOINT}{quote(uuid.strip(), safe='')}/"
        data = await self._get_json(VOICE_ENDPOINT, path, _query(fields=fields))
        return self._parse(Voice, data, VOICE_ENDPOINT)

    async def cloned_voice_list(
        self,
        *,
        query: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
        fields: Sequence[str] | None = None,
    ) -> VoicePage:
        """Fetch one page of the account's cloned voices."""
        params = _query(q=query, page=page, page_size=page_size, fields=fields)
        data = await self._get_json(CLONED_VOICE_LIST_ENDPOINT, CLONED_VOICE_LIST_ENDPOINT, params)
        return self._parse(VoicePage, data, CLONED_VOICE_LIST_ENDPOINT)

    async def iter_cloned_voices(
        self,
        *,
        query: str | None = None,
        page_size: int | None = 100,
        fields: Sequence[str] | None = None,
    ) -> AsyncIterator[Voice]:
        """Yield every cloned voice of the account, following `next_page` until the last page."""

        async def fetch(page: int | None) -> VoicePage:
            return await self.cloned_voice_list(query=query, page=page, page_size=page_size, fields=fields)

        async for voice in self._iter_pages(fetch):
            yield voice

    async def credit_balance(self) -> CreditBalance:
        """Fetch the characters left on the account; the cheapest call that proves the key works."""
        data = await self._get_json(CREDIT_BALANCE_ENDPOINT, CREDIT_BALANCE_ENDPOINT, {})
        credits = data.get("credits") if isinstance(data, dict) else None
        if not isinstance(credits, dict):
            if isinstance(data, dict) and ("prebuilt_chars" in data or "cloned_chars" in data):
                credits = data
            else:
                raise MalformedResponseError(endpoint=CREDIT_BALANCE_ENDPOINT, detail="no credits in body")
        return self._parse(CreditBalance, credits, CREDIT_BALANCE_ENDPOINT)

    async def short_tts(
        self,
        request: TTSRequest,
        *,
        fairness_key: Hashable | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> TTSResult:
        """Synthesise up to 2,000 characters and return the audio with its duration and cost.

        `on_sent` is called when the request leaves (it has its slot): until then, cancelling costs nothing.
        """
        if len(request.text) > MAX_TEXT_LENGTH:
            # Refused locally: the request could only fail, so it is not sent at all.
            raise InputTooLongError(
                endpoint=TTS_ENDPOINT, detail=f"{len(request.text)} characters over {MAX_TEXT_LENGTH}"
            )
        payload = request.payload()
        # base64 inflates by a third; the decoded audio is checked against the cap afterwards.
        body_cap = self._max_audio_bytes * 4 // 3 + _CHUNK_SIZE

        async def attempt(number: int) -> tuple[_Reply, Any]:
            reply = await self._send(
                "POST",
                TTS_ENDPOINT,
                self._api_url(TTS_ENDPOINT),
                number,
                headers=self._api_headers(),
                json_body=payload,
                time_limit=self._tts_timeout,
                on_sent=on_sent,
                fairness_key=fairness_key,
                body_cap=body_cap,
                too_large=AudioTooLargeError,
            )
            return reply, self._check(TTS_ENDPOINT, reply, accept_audio=True)

        reply, data = await self._with_retries("POST", TTS_ENDPOINT, attempt, retry=True)
        try:
            return await self._tts_result(reply, data, request, fairness_key)
        except UnmixrError as error:
            # Unmixr answered with success, so the request was charged even though its audio is unusable.
            error.maybe_charged = True
            raise

    async def clone_voice(
        self,
        *,
        audio: bytes,
        filename: str,
        name: str,
        description: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> CloneResult:
        """Upload a recording to create a cloned voice; never retried, since each clone counts."""
        # Only the last path component: a local path says nothing Unmixr needs to know.
        upload_name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "audio"

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("audio", audio, filename=upload_name, content_type=content_type)
            data.add_field("name", name)
            if description is not None:
                data.add_field("description", description)
            return data

        async def attempt(number: int) -> Any:
            try:
                reply = await self._send(
                    "POST",
                    CLONE_ENDPOINT,
                    self._api_url(CLONE_ENDPOINT),
                    number,
                    headers=self._api_headers(),
                    form=form(),
                    time_limit=self._tts_timeout,
                    fairness_key=None,
                    body_cap=self._max_audio_bytes,
                )
            except UnmixrTimeoutError as error:
                raise UnmixrTimeoutError(
                    "Unmixr took too long to answer; the clone may still have been created, "
                    "so check the voice list before trying again.",
                    endpoint=CLONE_ENDPOINT,
                    detail=error.detail,
                ) from None
            return self._check(CLONE_ENDPOINT, reply)

        data = await self._with_retries("POST", CLONE_ENDPOINT, attempt, retry=False)
        return self._parse(CloneResult, data, CLONE_ENDPOINT)

    async def download_sample(self, url: str) -> bytes:
        """Download a voice's sample audio from an allowed Unmixr host."""
        return await self._download(url, fairness_key=None)

    # Requests ---------------------------------------------------------------

    def _api_url(self, path: str) -> URL:
        """The full URL of an API path such as "/voice-list/"."""
        return URL(str(self._base_url) + path, encoded=True)

    def _api_headers(self) -> dict[str, str]:
        """Headers for API calls only; audio hosts never receive them."""
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        if self._openai_api_key is not None:
            headers["OpenAI-API-Key"] = self._openai_api_key.get_secret_value()
        return headers

    def _scrub(self, text: str) -> str:
        """Remove any configured secret from upstream text before it reaches an error or a log."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text[:500]

    async def _get_json(self, endpoint: str, path: str, params: Mapping[str, str]) -> Any:
        """GET an API path with retries and return its JSON body."""

        async def attempt(number: int) -> Any:
            reply = await self._send(
                "GET",
                endpoint,
                self._api_url(path),
                number,
                headers=self._api_headers(),
                params=params,
                time_limit=self._default_timeout,
                fairness_key=None,
                body_cap=self._max_audio_bytes,
            )
            return self._check(endpoint, reply)

        return await self._with_retries("GET", endpoint, attempt, retry=True)

    async def _send(
        self,
        method: str,
        endpoint: str,
        url: URL,
        attempt: int,
        *,
        headers: Mapping[str, str] | None,
        time_limit: float,
        fairness_key: Hashable | None,
        body_cap: int,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: aiohttp.FormData | None = None,
        too_large: type[UnmixrError] = MalformedResponseError,
        on_sent: Callable[[], None] | None = None,
    ) -> _Reply:
        """Make one HTTP request and read its body; a `/short-tts/` attempt holds a slot of the adaptive limit."""
        # Only synthesis loads Unmixr: catalogue reads, clones and downloads of ready audio never queue.
        gate = (
            self._limiter.slot(fairness_key, retry=attempt > 1)
            if endpoint == TTS_ENDPOINT
            else contextlib.nullcontext()
        )
        async with gate as permit:
            if on_sent is not None:
                on_sent()
            try:
                reply = await self._exchange(
                    method,
                    endpoint,
                    url,
                    attempt,
                    headers=headers,
                    time_limit=time_limit,
                    body_cap=body_cap,
                    params=params,
                    json_body=json_body,
                    form=form,
                    too_large=too_large,
                )
            except UnmixrTimeoutError:
                if permit is not None:
                    permit.answered(overloaded=True)
                raise
            if permit is not None:
                permit.answered(overloaded=reply.status == 429)
            return reply

    async def _exchange(
        self,
        method: str,
        endpoint: str,
        url: URL,
        attempt: int,
        *,
        headers: Mapping[str, str] | None,
        time_limit: float,
        body_cap: int,
        params: Mapping[str, str] | None,
        json_body: Any,
        form: aiohttp.FormData | None,
        too_large: type[UnmixrError],
    ) -> _Reply:
        """Make one HTTP request and read its body, translating transport failures."""
        label = endpoint if endpoint != DOWNLOAD_ENDPOINT else f"{url.host}{url.path}"
        started = time.perf_counter()
        outcome = "no response"
        status = "connection_error"
        try:
            opened = await self._open(
                method,
                endpoint,
                url,
                headers=headers,
                time_limit=time_limit,
                params=params,
                json_body=json_body,
                form=form,
            )
            if not isinstance(opened, aiohttp.ClientResponse):
                failure = opened.error if isinstance(opened, _Retryable) else opened
                outcome = failure.detail or type(failure).__name__
                status = "timeout" if isinstance(failure, UnmixrTimeoutError) else status
                # Raised here, outside any except clause, so no aiohttp exception (which may hold the
                # request's headers) stays attached as the context.
                raise opened
            response = opened
            outcome = status = str(response.status)
            body = await self._read(response, body_cap, endpoint, too_large)
            if isinstance(body, UnmixrError):
                outcome = f"{response.status}, {body.detail}"
                status = "timeout" if isinstance(body, UnmixrTimeoutError) else status
                raise body
            return _Reply(
                status=response.status,
                content_type=response.headers.get("Content-Type", ""),
                body=body,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location", ""),
            )
        finally:
            elapsed = time.perf_counter() - started
            log.debug("%s %s -> %s in %.0f ms (attempt %d)", method, label, outcome, elapsed * 1000, attempt)
            if status in ("connection_error", "timeout") or status.startswith("5"):
                self._report_outage(url, endpoint, status, outcome, f"{method} {label}")
            if self._observer is not None:
                self._observer(ENDPOINT_TEMPLATES.get(endpoint, endpoint), status, elapsed)

    def _report_outage(self, url: URL, endpoint: str, status: str, outcome: str, request: str) -> None:
        """Log Unmixr being down or failing, once a minute per kind of failure (bot.outages)."""
        address = url.origin() if endpoint == DOWNLOAD_ENDPOINT else self._base_url
        if status == "connection_error":
            message = f"Unmixr at {address} could not be reached ({outcome}; {request})"
        elif status == "timeout":
            message = f"Unmixr at {address} did not answer in time ({request})"
        else:
            message = f"Unmixr at {address} answered {outcome} ({request})"
        outages.report(f"unmixr {status}", message)

    async def _open(
        self,
        method: str,
        endpoint: str,
        url: URL,
        *,
        headers: Mapping[str, str] | None,
        time_limit: float,
        params: Mapping[str, str] | None,
        json_body: Any,
        form: aiohttp.FormData | None,
    ) -> aiohttp.ClientResponse | UnmixrError | _Retryable:
        """Send a request and wait for the response head; a failure is returned, wrapped if safe to retry."""
        try:
            response = await self._session.request(
                method,
                url,
                params=params or None,
                json=json_body,
                data=form,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=time_limit),
                allow_redirects=False,
                raise_for_status=False,
            )
        except TimeoutError:
            # It may have been sent and charged, so a timeout is never retried.
            timed_out = UnmixrTimeoutError(endpoint=endpoint, detail="timeout")
            timed_out.maybe_charged = True
            return timed_out
        except aiohttp.ClientConnectionError as exc:
            # Nothing came back, so it is safe to try again.
            return _Retryable(UnmixrConnectionError(endpoint=endpoint, detail=self._scrub(transport_reason(exc))))
        except aiohttp.ClientError as exc:
            return UnmixrConnectionError(endpoint=endpoint, detail=self._scrub(transport_reason(exc)), transient=False)
        return response

    async def _read(
        self,
        response: aiohttp.ClientResponse,
        cap: int,
        endpoint: str,
        too_large: type[UnmixrError],
    ) -> bytes | UnmixrError:
        """Read the body within the cap and release the connection; a failure is returned, never retried."""
        failure: UnmixrError
        try:
            body = await self._read_capped(response, cap, endpoint, too_large)
        except TimeoutError:
            failure = UnmixrTimeoutError(endpoint=endpoint, detail="body timeout")
        except aiohttp.ClientError as exc:
            # The server answered, so the request may have been acted on.
            failure = UnmixrConnectionError(endpoint=endpoint, detail=type(exc).__name__)
        except UnmixrError as error:
            failure = error
        else:
            response.release()
            return body
        response.close()
        failure.__context__ = None
        failure.maybe_charged = True  # the server answered, so it may have acted on the request
        return failure

    @staticmethod
    async def _read_capped(
        response: aiohttp.ClientResponse, cap: int, endpoint: str, too_large: type[UnmixrError]
    ) -> bytes:
        """Read a body in chunks, giving up as soon as it passes `cap` bytes."""
        declared = response.content_length
        if declared is not None and declared > cap:
            raise too_large(endpoint=endpoint, detail=f"{declared} bytes declared, limit {cap}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_SIZE):
            body += chunk
            if len(body) > cap:
                raise too_large(endpoint=endpoint, detail=f"over {cap} bytes")
        return bytes(body)

    def _check(self, endpoint: str, reply: _Reply, *, accept_audio: bool = False) -> Any:
        """Return the JSON body of a successful reply (None for raw audio), or raise its error."""
        if accept_audio and 200 <= reply.status < 300 and _is_audio_type(reply.content_type):
            return None
        data: Any = None
        parsed = False
        if reply.body:
            try:
                data = json.loads(reply.body)
                parsed = True
            except (ValueError, UnicodeDecodeError):
                parsed = False
        is_object = parsed and isinstance(data, dict)
        if reply.status >= 300 or (is_object and _is_failure(data)):
            code = (_body_code(data) if is_object else None) or reply.status
            message = self._scrub(_body_message(data)) if is_object else ""
            error = error_for(endpoint, code, message, json_body=is_object, retry_after=reply.retry_after)
            if isinstance(error, InvalidApiKeyError):
                self.key_rejected = True
                outages.report(
                    "unmixr key",
                    f"Unmixr at {self._base_url} rejected UNMIXR_API_KEY ({code}); copy the key again from "
                    "https://app.unmixr.com/manage-api-keys/ and restart the bot",
                )
            if isinstance(error, _RETRYABLE_STATUS_ERRORS):
                raise _Retryable(error)
            raise error
        self.key_rejected = False
        if not parsed:
            if accept_audio and _sniff_format(reply.body):
                # Audio with a missing or wrong Content-Type is still audio.
                return None
            malformed = MalformedResponseError(
                endpoint=endpoint, code=reply.status, detail=f"body is not JSON ({reply.content_type!r})"
            )
            malformed.maybe_charged = True  # a success status: the work may have been done
            raise malformed
        return data

    async def _with_retries(
        self,
        method: str,
        endpoint: str,
        attempt: Callable[[int], Awaitable[T]],
        *,
        retry: bool,
    ) -> T:
        """Run `attempt` until it succeeds, retrying only transient failures with jittered back-off."""
        total = 1 + (self._max_retries if retry else 0)
        number = 1
        while True:
            try:
                return await attempt(number)
            except _Retryable as signal:
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
            delay = self._delay(number, error.retry_after)
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

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before the next attempt: the server's word, else capped jittered back-off."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        # Equal jitter: spread clients apart without ever retrying immediately.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter needs no cryptography)

    # Responses --------------------------------------------------------------

    def _parse(self, model: type[ModelT], data: Any, endpoint: str) -> ModelT:
        """Validate a JSON body into a model, reporting a mismatch as a malformed response."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponseError(
                endpoint=endpoint, detail=f"{model.__name__}: {exc.error_count()} invalid field(s)"
            ) from None

    async def _iter_pages(self, fetch: Callable[[int | None], Awaitable[VoicePage]]) -> AsyncIterator[Voice]:
        """Follow `next_page` from the first page to the last, guarding against loops."""
        page = await fetch(None)
        seen = {page.current_page or 1}
        while True:
            for voice in page.results:
                yield voice
            following = page.next_page
            if following is None or following in seen or not page.results:
                return
            seen.add(following)
            page = await fetch(following)

    async def _tts_result(
        self, reply: _Reply, data: Any, request: TTSRequest, fairness_key: Hashable | None
    ) -> TTSResult:
        """Turn a successful `/short-tts/` reply of any shape into audio bytes."""
        if data is None:
            audio = reply.body
            output_type = _audio_format(audio, content_type=reply.content_type, fallback=request.output_type)
            return self._result(audio, output_type, None, CreditUsage())
        if not isinstance(data, dict):
            raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail="body is not a JSON object")
        fields: dict[str, Any] = dict(data)
        nested = data.get("data")
        if isinstance(nested, dict):
            fields = {**nested, **{key: value for key, value in data.items() if key != "data"}}
        usage_data = fields.get("credit_usage")
        usage = self._parse(CreditUsage, usage_data, TTS_ENDPOINT) if usage_data else CreditUsage()
        try:
            return await self._tts_audio(fields, request, usage, fairness_key, reported=bool(usage_data))
        except UnmixrError as error:
            if usage_data:
                error.credit_usage = usage
            raise

    async def _tts_audio(
        self,
        fields: dict[str, Any],
        request: TTSRequest,
        usage: CreditUsage,
        fairness_key: Hashable | None,
        *,
        reported: bool,
    ) -> TTSResult:
        """Fetch or decode the audio of a successful `/short-tts/` JSON answer."""
        duration = _number(fields.get("duration"))
        declared_type = fields.get("output_type") or fields.get("format") or request.output_type
        fallback = declared_type if declared_type in ("mp3", "wav") else request.output_type
        audio_url = fields.get("audio_url") or fields.get("url")
        if isinstance(audio_url, str) and audio_url:
            audio = await self._download(audio_url, fairness_key=fairness_key)
            output_type = _audio_format(audio, url=audio_url, fallback=fallback)
            return self._result(audio, output_type, duration, usage, reported=reported)
        for key in _BASE64_KEYS:
            encoded = fields.get(key)
            if isinstance(encoded, str) and encoded:
                try:
                    audio = _decode_base64(encoded)
                except (binascii.Error, ValueError):
                    raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail=f"{key} is not valid base64") from None
                return self._result(audio, _audio_format(audio, fallback=fallback), duration, usage, reported=reported)
        raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail="no audio_url and no audio in body")

    def _result(
        self,
        audio: bytes,
        output_type: str,
        duration: float | None,
        usage: CreditUsage,
        *,
        reported: bool = False,
    ) -> TTSResult:
        """Build a TTSResult after checking the audio is neither empty nor over the cap."""
        if not audio:
            raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail="empty audio")
        if len(audio) > self._max_audio_bytes:
            raise AudioTooLargeError(endpoint=TTS_ENDPOINT, detail=f"{len(audio)} bytes")
        return TTSResult(
            audio=audio, output_type=output_type, duration=duration, credit_usage=usage, usage_reported=reported
        )

    # Downloads --------------------------------------------------------------

    def _allowed_audio_url(self, raw: str, base: URL | None = None) -> URL:
        """Parse an audio URL, refusing any origin outside the allow-list; one that cannot be parsed is malformed."""
        try:
            if not raw:
                raise ValueError("empty URL")
            url = URL(raw)
            if not url.is_absolute():
                url = (base or self._base_url).join(url)
            # yarl decodes an IDNA host only when it is read: an invalid xn-- label raises UnicodeError here.
            host = (url.host or "").lower().rstrip(".")
            port = url.port
        except (TypeError, ValueError):  # UnicodeError is a ValueError
            raise MalformedResponseError(endpoint=DOWNLOAD_ENDPOINT, detail="audio URL cannot be parsed") from None
        if url.user is not None or url.password is not None:
            raise AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail="credentials in the audio URL")
        base_url = self._base_url
        # Exactly the scheme, host and port of UNMIXR_BASE_URL (a local one may call itself by any loopback name) ...
        same_host = host == self._base_host or (_is_loopback(host) and _is_loopback(self._base_host))
        is_api_origin = same_host and url.scheme == base_url.scheme and port == base_url.port
        # ... or one of Unmixr's own audio hosts, over https on its port only.
        is_unmixr_host = url.scheme == "https" and host in ALLOWED_AUDIO_HOSTS and port == 443
        if not (is_api_origin or is_unmixr_host):
            raise AudioDownloadError(
                endpoint=DOWNLOAD_ENDPOINT, detail=f"{url.scheme}://{host}:{port} is not an allowed audio origin"
            )
        return url

    async def _download(self, raw_url: str, *, fairness_key: Hashable | None) -> bytes:
        """Download audio from an allowed host with no credentials, a size cap and retries."""
        start = self._allowed_audio_url(raw_url)

        async def attempt(number: int) -> bytes:
            url = start
            for _ in range(_MAX_REDIRECTS + 1):
                reply = await self._send(
                    "GET",
                    DOWNLOAD_ENDPOINT,
                    url,
                    number,
                    headers=None,
                    time_limit=self._default_timeout,
                    fairness_key=fairness_key,
                    body_cap=self._max_audio_bytes,
                    too_large=AudioTooLargeError,
                )
                if reply.status in (301, 302, 303, 307, 308):
                    url = self._allowed_audio_url(reply.location, base=url)
                    continue
                return self._check_download(reply)
            raise AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, detail="too many redirects")

        try:
            return await self._with_retries("GET", DOWNLOAD_ENDPOINT, attempt, retry=True)
        except (UnmixrConnectionError, UnmixrTimeoutError) as error:
            raise AudioDownloadError(
                endpoint=DOWNLOAD_ENDPOINT, detail=error.detail, transient=True, code=error.code
            ) from None

    @staticmethod
    def _check_download(reply: _Reply) -> bytes:
        """Return a downloaded body, or raise the download error for its status."""
        if 200 <= reply.status < 300:
            if not reply.body:
                raise AudioDownloadError(endpoint=DOWNLOAD_ENDPOINT, code=reply.status, detail="empty body")
            return reply.body
        transient = reply.status == 429 or reply.status >= 500
        error = AudioDownloadError(
            endpoint=DOWNLOAD_ENDPOINT,
            code=reply.status,
            detail=f"HTTP {reply.status}",
            retry_after=reply.retry_after,
            transient=transient,
        )
        if transient:
            raise _Retryable(error)
        raise error
