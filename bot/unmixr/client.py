"""The Unmixr endpoints: what each call sends, and what it gives back as typed models.

How a request travels (timeouts, redirects, the adaptive limit, retries) is `transport`; how an answer is
read is `parsing`; where audio may be downloaded from is `downloads`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, BinaryIO, Final
from urllib.parse import quote

import aiohttp
from aiohttp.abc import AbstractResolver
from pydantic import SecretStr
from yarl import URL

from bot.i18n.text import _
from bot.outages import outages
from bot.unmixr import parsing
from bot.unmixr.downloads import AudioOrigins
from bot.unmixr.errors import (
    CLONE_ENDPOINT,
    TTS_ENDPOINT,
    AudioDownloadError,
    AudioTooLargeError,
    InputTooLongError,
    InvalidApiKeyError,
    MalformedResponseError,
    NotFoundError,
    UnexpectedStatusError,
    UnmixrConnectionError,
    UnmixrError,
    UnmixrTimeoutError,
)
from bot.unmixr.limiter import AdaptiveLimiter
from bot.unmixr.models import CloneResult, CreditBalance, CreditUsage, TTSRequest, TTSResult, Voice, VoicePage
from bot.unmixr.transport import (
    CHUNK_SIZE,
    DOWNLOAD_ENDPOINT,
    ENDPOINT_TEMPLATES,
    MAX_REDIRECTS,
    VOICE_ENDPOINT,
    Reply,
    Request,
    RequestObserver,
    Retryable,
    Transport,
)

__all__ = [
    "CLONED_VOICE_LIST_ENDPOINT",
    "CREDIT_BALANCE_ENDPOINT",
    "DEFAULT_BASE_URL",
    "DOWNLOAD_ENDPOINT",
    "ENDPOINT_TEMPLATES",
    "MAX_TEXT_LENGTH",
    "VOICE_ENDPOINT",
    "VOICE_LIST_ENDPOINT",
    "RequestObserver",
    "UnmixrClient",
]

DEFAULT_BASE_URL: Final = "https://unmixr.com/api/v1"
MAX_TEXT_LENGTH: Final = 2000

VOICE_LIST_ENDPOINT: Final = "/voice-list/"
CLONED_VOICE_LIST_ENDPOINT: Final = "/cloned-voice-list/"
CREDIT_BALANCE_ENDPOINT: Final = "/credit-balance/"
# A page count past this is a malformed answer, not a voice list.
MAX_PAGES: Final = 1000


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
        resolver: AbstractResolver | None = None,
    ) -> None:
        base = URL(base_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        self._api_key = api_key
        self._openai_api_key = openai_api_key
        self._base_url = base
        self._transport = Transport(
            session,
            AdaptiveLimiter(max_concurrency),
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            observer=observer,
            base_url=base,
            scrub=self._scrub,
        )
        # The look-up that audio hosts are checked with (the system's, unless a test stands in for DNS).
        self._origins = AudioOrigins(base, resolver, time_limit=default_timeout)
        self._tts_timeout = tts_timeout
        self._default_timeout = default_timeout
        self._max_audio_bytes = max_audio_bytes
        # Whether Unmixr's last answer to an API call refused the key (the health check's `unmixr`).
        self.key_rejected = False
        self._secrets = tuple(
            secret.get_secret_value()
            for secret in (api_key, openai_api_key)
            if secret is not None and secret.get_secret_value()
        )

    def __repr__(self) -> str:
        limiter = self._transport.limiter
        return (
            f"UnmixrClient(base_url={str(self._base_url)!r}, "
            f"openai_key_configured={self._openai_api_key is not None}, "
            f"concurrency={limiter.limit} of at most {limiter.ceiling}, max_retries={self._transport.max_retries})"
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
        return self._transport.limiter

    @property
    def transport(self) -> Transport:
        """What sends every request of this client."""
        return self._transport

    # Voices -----------------------------------------------------------------

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
        return parsing.parse(VoicePage, data, VOICE_LIST_ENDPOINT)

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
        """Yield every matching voice, page after page until the last."""

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

        async for page in _pages(fetch):
            for voice in page.results:
                yield voice

    async def voice_details(self, uuid: str, *, fields: Sequence[str] | None = None) -> Voice:
        """Fetch one voice by uuid."""
        if not uuid.strip():
            raise NotFoundError(endpoint=VOICE_ENDPOINT, detail="empty uuid")
        path = f"{VOICE_ENDPOINT}{quote(uuid.strip(), safe='')}/"
        data = await self._get_json(VOICE_ENDPOINT, path, _query(fields=fields))
        return parsing.parse(Voice, data, VOICE_ENDPOINT)

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
        return parsing.parse(VoicePage, data, CLONED_VOICE_LIST_ENDPOINT)

    def cloned_voice_pages(
        self,
        *,
        query: str | None = None,
        page_size: int | None = 100,
        fields: Sequence[str] | None = None,
    ) -> AsyncIterator[VoicePage]:
        """Yield every page of the account's cloned voices, in order.

        `page` is not in the reference for this list: an API that ignores it answers page 1 again, so the
        pages stop at an empty page or at one that repeats the previous.
        """

        async def fetch(page: int | None) -> VoicePage:
            return await self.cloned_voice_list(query=query, page=page, page_size=page_size, fields=fields)

        return _pages(fetch)

    async def iter_cloned_voices(
        self,
        *,
        query: str | None = None,
        page_size: int | None = 100,
        fields: Sequence[str] | None = None,
    ) -> AsyncIterator[Voice]:
        """Yield every cloned voice of the account, page after page until the last."""
        async for page in self.cloned_voice_pages(query=query, page_size=page_size, fields=fields):
            for voice in page.results:
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
        return parsing.parse(CreditBalance, credits, CREDIT_BALANCE_ENDPOINT)

    # Synthesis and cloning --------------------------------------------------

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
        outgoing = self._api_request(
            "POST",
            TTS_ENDPOINT,
            TTS_ENDPOINT,
            json_body=request.payload(),
            time_limit=self._tts_timeout,
            # base64 inflates by a third; the decoded audio is checked against the cap afterwards.
            body_cap=self._max_audio_bytes * 4 // 3 + CHUNK_SIZE,
            too_large=AudioTooLargeError,
            fairness_key=fairness_key,
            on_sent=on_sent,
        )

        async def attempt(number: int) -> tuple[Reply, Any]:
            reply = await self._transport.fetch(
                outgoing, number, follow=self._same_origin, overloaded=parsing.is_gateway_timeout
            )
            return reply, self._read(TTS_ENDPOINT, reply, accept_audio=True)

        reply, data = await self._transport.with_retries("POST", TTS_ENDPOINT, attempt, retry=True)
        try:
            return await self._tts_result(reply, data, request, fairness_key)
        except UnmixrError as error:
            # Unmixr answered with success, so the request was charged even though its audio is unusable.
            error.maybe_charged = True
            raise

    async def clone_voice(
        self,
        *,
        audio: bytes | BinaryIO,
        filename: str,
        name: str,
        description: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> CloneResult:
        """Upload a recording to create a cloned voice; never retried, since each clone counts.

        `audio` may be a file open at its start: aiohttp then streams it (read in a thread, a block at a time),
        so a recording of 120 MB is never held in memory.
        """
        # Only the last path component: a local path says nothing Unmixr needs to know.
        upload_name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "audio"

        def form() -> aiohttp.FormData:
            if not isinstance(audio, bytes):
                audio.seek(0)  # a form built again for a redirect's hop sends the whole file again
            data = aiohttp.FormData()
            data.add_field("audio", audio, filename=upload_name, content_type=content_type)
            data.add_field("name", name)
            if description is not None:
                data.add_field("description", description)
            return data

        outgoing = self._api_request("POST", CLONE_ENDPOINT, CLONE_ENDPOINT, form=form, time_limit=self._tts_timeout)

        async def attempt(number: int) -> Any:
            try:
                reply = await self._transport.fetch(outgoing, number, follow=self._same_origin)
                return self._read(CLONE_ENDPOINT, reply)
            except UnmixrTimeoutError as error:
                # A timeout of ours or a gateway's: Unmixr may still be making the voice.
                timed_out = UnmixrTimeoutError(
                    _(
                        "Unmixr took too long to answer; the clone may still have been created, "
                        "so check the voice list before trying again."
                    ),
                    code=error.code,
                    endpoint=CLONE_ENDPOINT,
                    detail=error.detail,
                )
                timed_out.maybe_charged = True
                raise timed_out from None

        data = await self._transport.with_retries("POST", CLONE_ENDPOINT, attempt, retry=False)
        return parsing.parse(CloneResult, data, CLONE_ENDPOINT)

    async def download_sample(self, url: str) -> bytes:
        """Download a voice's sample audio from a host the download rule allows."""
        return await self._download(url, fairness_key=None)

    # Requests ---------------------------------------------------------------

    def _api_request(
        self,
        method: str,
        endpoint: str,
        path: str,
        *,
        time_limit: float,
        body_cap: int | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        too_large: type[UnmixrError] = MalformedResponseError,
        fairness_key: Hashable | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Request:
        """A request to an API path such as "/voice-list/", with the key in its headers."""
        return Request(
            method=method,
            endpoint=endpoint,
            url=URL(str(self._base_url) + path, encoded=True),
            time_limit=time_limit,
            body_cap=self._max_audio_bytes if body_cap is None else body_cap,
            headers=self._api_headers(),
            params=params,
            json_body=json_body,
            form=form,
            too_large=too_large,
            fairness_key=fairness_key,
            on_sent=on_sent,
        )

    def _api_headers(self) -> dict[str, str]:
        """Headers for API calls only; audio hosts never receive them."""
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        if self._openai_api_key is not None:
            headers["OpenAI-API-Key"] = self._openai_api_key.get_secret_value()
        return headers

    async def _same_origin(self, request: Request, reply: Reply, hop: int) -> Request:
        """Follow an API redirect only to the same scheme, host and port: the key is never sent elsewhere."""
        if hop > MAX_REDIRECTS:
            raise UnexpectedStatusError(code=reply.status, endpoint=request.endpoint, detail="too many redirects")
        try:
            target = reply.url.join(URL(reply.location))
            host = (target.host or "").lower().rstrip(".")
            port = target.port
        except (TypeError, ValueError):
            raise MalformedResponseError(
                endpoint=request.endpoint, code=reply.status, detail="redirect cannot be parsed"
            ) from None
        base = self._base_url
        if (target.scheme, host, port) != (base.scheme, (base.host or "").lower().rstrip("."), base.port):
            raise UnexpectedStatusError(
                code=reply.status, endpoint=request.endpoint, detail="redirect to another origin, not followed"
            )
        return request.moved(target, status=reply.status)

    def _scrub(self, text: str) -> str:
        """Remove any configured secret from upstream text before it reaches an error or a log."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text[:500]

    def _read(self, endpoint: str, reply: Reply, *, accept_audio: bool = False) -> Any:
        """The JSON body of a successful reply (None for raw audio), or its error raised."""
        try:
            data = parsing.read_answer(endpoint, reply, scrub=self._scrub, accept_audio=accept_audio)
        except InvalidApiKeyError as refused:
            self._key_refused(refused)
            raise
        except Retryable as signal:
            if isinstance(signal.error, InvalidApiKeyError):
                self._key_refused(signal.error)
            raise
        self.key_rejected = False
        return data

    def _key_refused(self, error: InvalidApiKeyError) -> None:
        self.key_rejected = True
        outages.report(
            "unmixr key",
            f"Unmixr at {self._base_url} rejected UNMIXR_API_KEY ({error.code}); copy the key again from "
            "https://app.unmixr.com/manage-api-keys/ and restart the bot",
        )

    async def _get_json(self, endpoint: str, path: str, params: Mapping[str, str]) -> Any:
        """GET an API path with retries and return its JSON body."""
        outgoing = self._api_request("GET", endpoint, path, params=params, time_limit=self._default_timeout)

        async def attempt(number: int) -> Any:
            reply = await self._transport.fetch(outgoing, number, follow=self._same_origin)
            return self._read(endpoint, reply)

        return await self._transport.with_retries("GET", endpoint, attempt, retry=True)

    # Audio ------------------------------------------------------------------

    async def _tts_result(
        self, reply: Reply, data: Any, request: TTSRequest, fairness_key: Hashable | None
    ) -> TTSResult:
        """Turn a successful `/short-tts/` reply of any shape into audio bytes."""
        if data is None:
            audio = reply.body
            output_type = parsing.audio_format(audio, content_type=reply.content_type, fallback=request.output_type)
            return self._result(audio, output_type, None, None)
        fields = parsing.tts_fields(data, TTS_ENDPOINT)
        usage = parsing.tts_usage(fields, TTS_ENDPOINT)
        try:
            return await self._tts_audio(fields, request, usage, fairness_key)
        except UnmixrError as error:
            if usage is not None:
                error.credit_usage = usage
            raise

    async def _tts_audio(
        self, fields: dict[str, Any], request: TTSRequest, usage: CreditUsage | None, fairness_key: Hashable | None
    ) -> TTSResult:
        """Fetch or decode the audio of a successful `/short-tts/` JSON answer."""
        duration = parsing.number(fields.get("duration"))
        declared_type = fields.get("output_type") or fields.get("format") or request.output_type
        fallback = declared_type if declared_type in ("mp3", "wav") else request.output_type
        audio_url = fields.get("audio_url") or fields.get("url")
        if isinstance(audio_url, str) and audio_url:
            audio = await self._download(audio_url, fairness_key=fairness_key)
            return self._result(audio, parsing.audio_format(audio, url=audio_url, fallback=fallback), duration, usage)
        audio_bytes = parsing.embedded_audio(fields, TTS_ENDPOINT)
        if audio_bytes is not None:
            return self._result(audio_bytes, parsing.audio_format(audio_bytes, fallback=fallback), duration, usage)
        raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail="no audio_url and no audio in body")

    def _result(self, audio: bytes, output_type: str, duration: float | None, usage: CreditUsage | None) -> TTSResult:
        """Build a TTSResult after checking the audio is neither empty nor over the cap."""
        if not audio:
            raise MalformedResponseError(endpoint=TTS_ENDPOINT, detail="empty audio")
        if len(audio) > self._max_audio_bytes:
            raise AudioTooLargeError(endpoint=TTS_ENDPOINT, detail=f"{len(audio)} bytes")
        return TTSResult(
            audio=audio,
            output_type=output_type,
            duration=duration,
            credit_usage=usage or CreditUsage(),
            usage_reported=usage is not None,
        )

    async def _download(self, raw_url: str, *, fairness_key: Hashable | None) -> bytes:
        """Download audio from a host the rule allows, with no credentials, a size cap and retries."""
        template = Request(
            method="GET",
            endpoint=DOWNLOAD_ENDPOINT,
            url=self._base_url,
            time_limit=self._default_timeout,
            body_cap=self._max_audio_bytes,
            too_large=AudioTooLargeError,
            fairness_key=fairness_key,
        )

        async def attempt(number: int) -> bytes:
            # Checked (and looked up) afresh for every attempt; the attempt connects to what was checked.
            outgoing = await self._origins.request(raw_url, template)
            reply = await self._transport.fetch(outgoing, number, follow=self._origins.next_hop)
            return _downloaded(reply)

        try:
            return await self._transport.with_retries("GET", DOWNLOAD_ENDPOINT, attempt, retry=True)
        except (UnmixrConnectionError, UnmixrTimeoutError) as error:
            raise AudioDownloadError(
                endpoint=DOWNLOAD_ENDPOINT, detail=error.detail, transient=True, code=error.code
            ) from None


def _downloaded(reply: Reply) -> bytes:
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
        raise Retryable(error)
    raise error


async def _pages(fetch: Callable[[int | None], Awaitable[VoicePage]]) -> AsyncIterator[VoicePage]:
    """Yield pages from the first, following `next_page`; stop at the last page, an empty page or a repeat.

    A page that repeats the previous one (an API that ignores `page`) is not yielded; nor is a page number
    seen before, and never more than MAX_PAGES.
    """
    page = await fetch(None)
    seen = {page.current_page or 1}
    previous: list[str] | None = None
    while True:
        uuids = [voice.uuid for voice in page.results]
        if not page.results or uuids == previous:
            return
        yield page
        following = page.next_page
        if following is None or following in seen or len(seen) >= MAX_PAGES:
            return
        seen.add(following)
        previous = uuids
        page = await fetch(following)


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
