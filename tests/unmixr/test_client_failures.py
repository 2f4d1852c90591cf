"""Errors, retries, timeouts, secrets and limits of the Unmixr client, against the stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback

import pytest
from pydantic import SecretStr

from bot.unmixr import (
    AudioDownloadError,
    AudioGenerationFailedError,
    CloneAudioRequiredError,
    CloneFailedError,
    CloneLimitReachedError,
    CloneNameRequiredError,
    CloneServerError,
    GenerationServerError,
    InputTooLongError,
    InsufficientClonedCreditsError,
    InsufficientPrebuiltCreditsError,
    InvalidApiKeyError,
    InvalidRequestError,
    InvalidResponseTypeError,
    MalformedResponseError,
    MultipleVoicesNotSupportedError,
    NotFoundError,
    OpenAIKeyRequiredError,
    RateLimitedError,
    ServiceUnavailableError,
    TTSRequest,
    UnexpectedStatusError,
    UnmixrClient,
    UnmixrConnectionError,
    UnmixrError,
    UnmixrTimeoutError,
    UpstreamServerError,
)
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import API_KEY, BRIAN_ID, OPENAI_KEY, ClientFactory, requests_to, wav_tone

TTS = "/short-tts/"
CLONE = "/clone-voice/"
PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


def _hello() -> TTSRequest:
    return TTSRequest(text="Hello there.", voice_id=BRIAN_ID)


# Documented codes ----------------------------------------------------------

TTS_CODES = [
    (400, InvalidResponseTypeError, 1),
    (401, InputTooLongError, 1),
    (404, NotFoundError, 1),
    (500, UpstreamServerError, 3),
    (501, OpenAIKeyRequiredError, 1),
    (502, InputTooLongError, 1),
    (503, MultipleVoicesNotSupportedError, 1),
    (504, InsufficientClonedCreditsError, 1),
    (505, InsufficientPrebuiltCreditsError, 1),
    (508, GenerationServerError, 3),
    (509, AudioGenerationFailedError, 1),
]


@pytest.mark.parametrize("http_status", [None, 200], ids=["as-http-status", "in-body-at-200"])
@pytest.mark.parametrize(("code", "expected", "attempts"), TTS_CODES)
async def test_short_tts_documented_codes(
    client: UnmixrClient,
    fake: FakeUnmixr,
    code: int,
    expected: type[UnmixrError],
    attempts: int,
    http_status: int | None,
) -> None:
    fake.fail_next(code, n=3, endpoint=TTS, http_status=http_status)
    with pytest.raises(expected) as raised:
        await client.short_tts(_hello())
    error = raised.value
    assert type(error) is expected
    assert error.code == code
    assert error.endpoint == TTS
    assert str(code) not in error.message
    # Only the documented transient codes (500, 508) are retried, twice at most.
    assert len(requests_to(fake, TTS)) == attempts
    assert requests_to(fake, "/audio/") == []


CLONE_CODES = [
    (400, CloneAudioRequiredError),
    (401, CloneNameRequiredError),
    (402, CloneLimitReachedError),
    (404, NotFoundError),
    (500, CloneServerError),
    (501, CloneFailedError),
]


@pytest.mark.parametrize("http_status", [None, 200], ids=["as-http-status", "in-body-at-200"])
@pytest.mark.parametrize(("code", "expected"), CLONE_CODES)
async def test_clone_voice_documented_codes_are_never_retried(
    client: UnmixrClient, fake: FakeUnmixr, code: int, expected: type[UnmixrError], http_status: int | None
) -> None:
    fake.fail_next(code, n=3, endpoint=CLONE, http_status=http_status)
    with pytest.raises(expected) as raised:
        await client.clone_voice(audio=b"x" * 100, filename="a.wav", name="Name")
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.endpoint == CLONE
    assert len(requests_to(fake, CLONE)) == 1


@pytest.mark.parametrize("endpoint", ["/voice-list/", "/voice/", "/cloned-voice-list/", "/credit-balance/"])
async def test_not_found_on_every_read_endpoint(client: UnmixrClient, fake: FakeUnmixr, endpoint: str) -> None:
    fake.fail_next(404, endpoint=endpoint)
    calls = {
        "/voice-list/": client.voice_list,
        "/voice/": lambda: client.voice_details(BRIAN_ID),
        "/cloned-voice-list/": client.cloned_voice_list,
        "/credit-balance/": client.credit_balance,
    }
    with pytest.raises(NotFoundError) as raised:
        await calls[endpoint]()
    assert raised.value.endpoint == endpoint
    assert len(requests_to(fake, endpoint)) == 1


async def test_status_other_than_success_is_an_error_at_http_200(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(
        402,
        endpoint=CLONE,
        http_status=200,
        body={"status": "FAILED", "code": 402, "message": "You've reached the limit"},
    )
    with pytest.raises(CloneLimitReachedError):
        await client.clone_voice(audio=b"x", filename="a.wav", name="Name")
    fake.fail_next(200, endpoint="/credit-balance/", body={"success": False, "message": "Account suspended"})
    with pytest.raises(UnexpectedStatusError) as raised:
        await client.credit_balance()
    assert raised.value.detail == "Account suspended"


async def test_a_wrong_key_is_an_invalid_key_on_every_endpoint(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(api_key="not-the-key")
    calls = [
        client.voice_list(),
        client.voice_details(BRIAN_ID),
        client.cloned_voice_list(),
        client.credit_balance(),
        # 401 is "input too long" on /short-tts/ and "name is required" on /clone-voice/, but not here.
        client.short_tts(_hello()),
        client.clone_voice(audio=b"x", filename="a.wav", name="Name"),
    ]
    for call in calls:
        with pytest.raises(InvalidApiKeyError) as raised:
            await call
        assert raised.value.code == 401
        assert not raised.value.transient
    # Never retried.
    assert len(fake.requests) == len(calls)


async def test_reused_numbers_are_told_apart_by_message(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(401, endpoint=CLONE, body={"success": False, "code": 401, "message": "Invalid API key."})
    with pytest.raises(InvalidApiKeyError):
        await client.clone_voice(audio=b"x", filename="a.wav", name="Name")
    fake.fail_next(403, endpoint=TTS, body={"detail": "Forbidden."})
    with pytest.raises(InvalidApiKeyError):
        await client.short_tts(_hello())
    fake.fail_next(400, endpoint=TTS, body={"success": False, "code": 400, "message": "voice_id is required."})
    with pytest.raises(InvalidRequestError) as raised:
        await client.short_tts(_hello())
    assert type(raised.value) is InvalidRequestError


async def test_natural_failures_of_the_stand_in(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.prebuilt_chars = 3
    with pytest.raises(InsufficientPrebuiltCreditsError):
        await client.short_tts(_hello())
    fake.prebuilt_chars = 1_000_000
    jenny = next(voice for voice in fake.voices if voice["character"] == "Jenny")
    with pytest.raises(InvalidRequestError) as raised:
        await client.short_tts(TTSRequest(text="Hi.", voice_id=jenny["uuid"], intensity=10))
    assert type(raised.value) is InvalidRequestError
    with pytest.raises(MultipleVoicesNotSupportedError):
        await client.short_tts(TTSRequest(text="Hi.", voice_id=f"{BRIAN_ID},{jenny['uuid']}"))
    with pytest.raises(NotFoundError):
        await client.short_tts(TTSRequest(text="Hi.", voice_id="00000000-0000-0000-0000-000000000000"))

    with pytest.raises(CloneNameRequiredError):
        await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="  ")
    with pytest.raises(CloneFailedError):
        await client.clone_voice(audio=wav_tone(5), filename="short.wav", name="Too short")
    clone = await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="Mine")
    fake.cloned_chars = 0
    with pytest.raises(InsufficientClonedCreditsError):
        await client.short_tts(TTSRequest(text="Hi.", voice_id=clone.voice_id))
    fake.clone_limit = 1
    with pytest.raises(CloneLimitReachedError):
        await client.clone_voice(audio=wav_tone(31), filename="b.wav", name="One more")


# Retries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inject", "label"),
    [
        (lambda fake: fake.fail_next(500, endpoint=TTS), "documented 500"),
        (lambda fake: fake.fail_next(508, endpoint=TTS), "documented 508"),
        (lambda fake: fake.fail_next(429, endpoint=TTS), "429"),
        (lambda fake: fake.fail_next(502, endpoint=TTS, body=PROXY_PAGE), "proxy 502"),
        (lambda fake: fake.fail_next(503, endpoint=TTS, body="Service Unavailable"), "proxy 503"),
        (lambda fake: fake.reset_next(endpoint=TTS), "connection reset"),
    ],
)
async def test_transient_failure_then_success(client: UnmixrClient, fake: FakeUnmixr, inject, label: str) -> None:
    inject(fake)
    result = await client.short_tts(_hello())
    assert result.audio, label
    assert len(requests_to(fake, TTS)) == 2
    assert len(requests_to(fake, "/audio/")) == 1


async def test_get_endpoints_retry_a_proxy_error(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(502, n=2, endpoint="/voice-list/", body=PROXY_PAGE)
    page = await client.voice_list()
    assert page.results
    assert len(requests_to(fake, "/voice-list/")) == 3


async def test_retries_stop_after_two(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(429, n=10, endpoint="/credit-balance/")
    with pytest.raises(RateLimitedError):
        await client.credit_balance()
    assert len(requests_to(fake, "/credit-balance/")) == 3


async def test_max_retries_zero_means_one_attempt(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(max_retries=0)
    fake.fail_next(503, n=10, endpoint="/credit-balance/", body="down")
    with pytest.raises(ServiceUnavailableError):
        await client.credit_balance()
    assert len(requests_to(fake, "/credit-balance/")) == 1


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (lambda fake: fake.fail_next(502, endpoint=CLONE, body=PROXY_PAGE), ServiceUnavailableError),
        (lambda fake: fake.fail_next(429, endpoint=CLONE), RateLimitedError),
        (lambda fake: fake.reset_next(endpoint=CLONE), UnmixrConnectionError),
        (lambda fake: fake.fail_next(500, endpoint=CLONE), CloneServerError),
    ],
)
async def test_clone_is_never_retried_even_on_transient_failures(
    client: UnmixrClient,
    fake: FakeUnmixr,
    inject,
    expected: type[UnmixrError],
) -> None:
    inject(fake)
    with pytest.raises(expected) as raised:
        await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="Once")
    assert raised.value.transient
    assert len(requests_to(fake, CLONE)) == 1
    assert fake.clones == []


async def test_download_failure_retries_only_the_download(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(503, endpoint="/audio/", body=PROXY_PAGE)
    result = await client.short_tts(_hello())
    assert result.audio
    # Synthesis was paid for once; only the download was repeated.
    assert len(requests_to(fake, TTS)) == 1
    assert len(requests_to(fake, "/audio/")) == 2


async def test_download_not_found_is_permanent(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(404, endpoint="/audio/")
    with pytest.raises(AudioDownloadError) as raised:
        await client.short_tts(_hello())
    assert raised.value.code == 404
    assert not raised.value.transient
    assert len(requests_to(fake, "/audio/")) == 1


async def test_download_connection_reset_is_retried(
    client: UnmixrClient, fake: FakeUnmixr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.unmixr")
    fake.reset_next(n=10, endpoint="/audio/")
    with pytest.raises(AudioDownloadError) as raised:
        await client.short_tts(_hello())
    assert raised.value.transient
    # Three attempts by the client; aiohttp itself may re-send a GET once on a stale pooled connection.
    assert len([record for record in caplog.records if "retrying" in record.getMessage()]) == 2
    assert len(requests_to(fake, "/audio/")) >= 3
    assert len(requests_to(fake, TTS)) == 1


async def test_retry_after_is_honoured(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(429, endpoint="/credit-balance/", headers={"Retry-After": "1"})
    await client.credit_balance()
    first, second = requests_to(fake, "/credit-balance/")
    assert first.finished_at is not None
    # The back-off alone would wait at most 0.05 s here.
    assert second.started_at - first.finished_at >= 0.9


@pytest.mark.parametrize(
    "inject",
    [
        lambda fake: fake.fail_next(429, endpoint="/credit-balance/", headers={"Retry-After": "30"}),
        lambda fake: fake.fail_next(503, endpoint="/credit-balance/", body="busy", headers={"Retry-After": "60"}),
    ],
)
async def test_a_long_retry_after_gives_up_at_once(client: UnmixrClient, fake: FakeUnmixr, inject) -> None:
    inject(fake)
    with pytest.raises(RateLimitedError) as raised:
        await client.credit_balance()
    assert raised.value.retry_after is not None and raised.value.retry_after >= 30
    assert len(requests_to(fake, "/credit-balance/")) == 1


async def test_a_failure_is_one_warning_naming_the_address_and_each_retry_is_debug(
    client: UnmixrClient, fake: FakeUnmixr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(508, endpoint=TTS)
    await client.short_tts(_hello())
    fake.fail_next(508, endpoint=TTS)
    await client.short_tts(TTSRequest(text="Again.", voice_id=BRIAN_ID))
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [(record.name, record.getMessage()) for record in warnings] == [
        ("bot.outages", f"Unmixr at {fake.base_url} answered 508 (POST /short-tts/)")
    ], "the same failure again within the minute is not repeated at WARNING"
    debug_lines = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert any("GenerationServerError" in line and "retrying" in line for line in debug_lines)
    assert any(line.startswith("POST /short-tts/ -> 200 in ") and "(attempt 2)" in line for line in debug_lines)
    assert any("/short-tts/ -> 200" not in line and "(attempt 1)" in line for line in debug_lines)


# Timeouts, hangs, broken answers --------------------------------------------


async def test_hung_tts_times_out_and_is_not_retried(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(tts_timeout=0.5)
    fake.hang_next(endpoint=TTS)
    with pytest.raises(UnmixrTimeoutError) as raised:
        await client.short_tts(_hello())
    assert raised.value.endpoint == TTS
    # It may have been charged, so it is not sent again.
    assert len(requests_to(fake, TTS)) == 1


async def test_slow_read_endpoint_times_out_with_the_default_timeout(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    client = make_client(tts_timeout=3.0, default_timeout=0.3)
    fake.set_latency(0.6, endpoint="/credit-balance/")
    with pytest.raises(UnmixrTimeoutError):
        await client.credit_balance()
    assert len(requests_to(fake, "/credit-balance/")) == 1
    # The same delay is within the longer synthesis timeout.
    fake.set_latency(0.6, endpoint=TTS)
    result = await client.short_tts(_hello())
    assert result.audio


async def test_hung_clone_times_out_with_a_hint_not_to_repeat(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(tts_timeout=0.5)
    fake.hang_next(endpoint=CLONE)
    with pytest.raises(UnmixrTimeoutError) as raised:
        await client.clone_voice(audio=b"x", filename="a.wav", name="Slow")
    assert "may still have been created" in raised.value.message
    assert len(requests_to(fake, CLONE)) == 1


@pytest.mark.parametrize("endpoint", [TTS, "/voice-list/", "/credit-balance/"])
async def test_malformed_json_is_reported_and_not_retried(
    client: UnmixrClient, fake: FakeUnmixr, endpoint: str
) -> None:
    fake.malformed_next(endpoint=endpoint)
    calls = {TTS: lambda: client.short_tts(_hello()), "/voice-list/": client.voice_list}
    with pytest.raises(MalformedResponseError) as raised:
        await calls.get(endpoint, client.credit_balance)()
    assert raised.value.endpoint == endpoint
    assert len(requests_to(fake, endpoint)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "code": 200, "duration": 1.0},
        {"success": True, "code": 200, "audio": "!!! not base64 !!!"},
        {"success": True, "code": 200, "audio": ""},
    ],
)
async def test_tts_success_without_usable_audio_is_malformed(
    client: UnmixrClient, fake: FakeUnmixr, body: dict[str, object]
) -> None:
    fake.fail_next(200, endpoint=TTS, body=body)
    with pytest.raises(MalformedResponseError):
        await client.short_tts(_hello())


async def test_clone_success_without_voice_id_is_malformed(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(200, endpoint=CLONE, body={"status": "SUCCESS", "code": 200})
    with pytest.raises(MalformedResponseError):
        await client.clone_voice(audio=b"x", filename="a.wav", name="Name")


async def test_persistent_connection_resets_give_a_connection_error(
    client: UnmixrClient, fake: FakeUnmixr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.unmixr")
    await client.credit_balance()
    fake.reset_next(n=10, endpoint="/voice-list/")
    with pytest.raises(UnmixrConnectionError) as raised:
        await client.voice_list()
    assert raised.value.transient
    assert len([record for record in caplog.records if "retrying" in record.getMessage()]) == 2
    # aiohttp itself re-sends a GET once when a pooled keep-alive connection turns out to be dead.
    assert 3 <= len(requests_to(fake, "/voice-list/")) <= 6


async def test_unreachable_server_is_a_connection_error(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.WARNING)
    client = make_client(base_url=f"http://127.0.0.1:{port}/api/v1")
    with pytest.raises(UnmixrConnectionError) as raised:
        await client.credit_balance()
    assert raised.value.detail == "Connection refused"
    # Three attempts, one line: the address and the operating system's reason.
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING] == [
        f"Unmixr at http://127.0.0.1:{port}/api/v1 could not be reached (Connection refused; GET /credit-balance/)"
    ]


# Secrets -------------------------------------------------------------------


def _all_text(error: BaseException) -> str:
    """Everything a log or a developer could see of an exception, its chain included."""
    parts = ["".join(traceback.format_exception(error))]
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_keys_never_appear_in_logs_or_errors(
    make_client: ClientFactory, fake: FakeUnmixr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(openai_api_key=SecretStr(OPENAI_KEY), tts_timeout=0.5, default_timeout=0.5)
    wrong = make_client(api_key=f"{API_KEY}-wrong", openai_api_key=SecretStr(OPENAI_KEY))
    errors: list[BaseException] = []

    async def expect_failure(call) -> None:
        try:
            await call
        except UnmixrError as error:
            errors.append(error)
        else:
            raise AssertionError("the call should have failed")

    await client.short_tts(_hello())
    await client.voice_list()
    fake.fail_next(508, endpoint=TTS)
    await client.short_tts(_hello())
    # An upstream message that echoes the key back.
    fake.fail_next(400, endpoint=TTS, body={"success": False, "code": 400, "message": f"Bad key {API_KEY}"})
    await expect_failure(client.short_tts(_hello()))
    assert errors[-1].detail == "Bad key [redacted]"
    fake.hang_next(endpoint=TTS)
    await expect_failure(client.short_tts(_hello()))
    fake.reset_next(n=10, endpoint="/voice-list/")
    await expect_failure(client.voice_list())
    fake.malformed_next(endpoint="/credit-balance/")
    await expect_failure(client.credit_balance())
    await expect_failure(wrong.short_tts(_hello()))
    await expect_failure(wrong.clone_voice(audio=b"x", filename="a.wav", name="Name"))
    fake.audio_url_base_next("http://evil.example.com")
    await expect_failure(client.short_tts(_hello()))

    assert len(errors) == 7
    assert caplog.records
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    for secret in (API_KEY, OPENAI_KEY, "Bearer"):
        assert secret not in logged
        for error in errors:
            assert secret not in _all_text(error)
    assert API_KEY not in repr(client) and OPENAI_KEY not in repr(client)


# Concurrency ---------------------------------------------------------------


async def test_no_more_short_tts_in_flight_than_the_ceiling(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(max_concurrency=2)
    fake.set_latency(0.1, endpoint=TTS)
    texts = [f"Request {index}." for index in range(6)]
    await asyncio.gather(*(client.short_tts(TTSRequest(text=text, voice_id=BRIAN_ID)) for text in texts))
    assert fake.peak_tts_concurrency == 2
    assert client.limiter.limit == 2
    assert sorted(request.json["text"] for request in requests_to(fake, TTS)) == sorted(texts)


async def test_only_short_tts_holds_a_slot(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(max_concurrency=1)
    fake.hang_next(endpoint=TTS)
    stuck = asyncio.create_task(client.short_tts(_hello()))
    while fake.tts_in_flight < 1:
        await asyncio.sleep(0.01)
    assert client.limiter.in_use == 1
    # With the only slot taken, catalogue reads and the balance still go straight through.
    await asyncio.wait_for(asyncio.gather(client.voice_list(), client.credit_balance()), timeout=5)
    assert client.limiter.in_use == 1
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert client.limiter.in_use == 0


async def test_a_429_on_short_tts_lowers_the_limit_and_is_retried(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    changes: list[int] = []
    client = make_client()
    client.limiter.on_change = changes.append
    assert (client.limiter.limit, client.limiter.ceiling) == (8, 64)
    # Five requests held at Unmixr, then a sixth answered 429.
    fake.hang_next(5, endpoint=TTS)
    fake.fail_next(429, endpoint=TTS, headers={"Retry-After": "0"})
    held = [asyncio.create_task(client.short_tts(_hello())) for _ in range(5)]
    while fake.tts_in_flight < 5:
        await asyncio.sleep(0.01)
    refused = asyncio.create_task(client.short_tts(_hello()))
    while not changes:
        await asyncio.sleep(0.01)
    assert changes == [4], "0.7 x the 6 requests holding a slot, rounded down"
    assert "concurrency=4 of at most 64" in repr(client)
    # Its retry waits for a slot under the new limit, then gets its audio.
    for task in held:
        task.cancel()
    assert (await refused).audio
    assert [request.status for request in requests_to(fake, TTS)][-2:] == [429, 200]


async def test_429s_reach_the_caller_only_when_the_retries_run_out(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    client = make_client()
    fake.fail_next(429, n=3, endpoint=TTS, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitedError):
        await client.short_tts(_hello())
    assert len(requests_to(fake, TTS)) == 3
    # Each retry was sent after the previous decrease, so each one lowered the limit (to 1: it was alone).
    assert client.limiter.limit == 1


async def test_a_timeout_on_short_tts_lowers_the_limit(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(tts_timeout=0.3)
    fake.hang_next(3, endpoint=TTS)
    outcomes = await asyncio.gather(*(client.short_tts(_hello()) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, UnmixrTimeoutError) for outcome in outcomes)
    assert client.limiter.limit == 2, "0.7 x the 3 holding a slot at the first timeout; the others change nothing"
    assert client.limiter.in_use == 0


async def test_other_endpoints_do_not_move_the_limit(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client()
    fake.fail_next(429, endpoint="/credit-balance/", headers={"Retry-After": "0"})
    await client.credit_balance()
    fake.fail_next(429, endpoint="/audio/", headers={"Retry-After": "0"})
    await client.short_tts(_hello())
    assert len(requests_to(fake, "/audio/")) == 2
    assert client.limiter.limit == 8


async def test_retry_after_delays_only_the_request_that_received_it(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    client = make_client(max_concurrency=1)
    fake.fail_next(429, endpoint=TTS, headers={"Retry-After": "2"})
    told_to_wait = asyncio.create_task(client.short_tts(TTSRequest(text="Told to wait.", voice_id=BRIAN_ID)))
    while not requests_to(fake, TTS):
        await asyncio.sleep(0.01)
    others = [client.short_tts(TTSRequest(text=f"Other {index}.", voice_id=BRIAN_ID)) for index in range(3)]
    await asyncio.gather(told_to_wait, *others)
    order = [request.json["text"] for request in requests_to(fake, TTS)]
    # While the first request waited out its Retry-After, its slot served the others.
    assert order == ["Told to wait.", "Other 0.", "Other 1.", "Other 2.", "Told to wait."]
    first, *_, retry = requests_to(fake, TTS)
    assert first.finished_at is not None
    assert retry.started_at - first.finished_at >= 1.9


async def test_one_guild_cannot_starve_another(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(max_concurrency=1)
    calls = [
        client.short_tts(TTSRequest(text=f"A{index}", voice_id=BRIAN_ID), fairness_key="guild-a") for index in range(6)
    ]
    calls.append(client.short_tts(TTSRequest(text="B0", voice_id=BRIAN_ID), fairness_key="guild-b"))
    await asyncio.gather(*calls)
    order = [request.json["text"] for request in requests_to(fake, TTS)]
    assert sorted(order) == sorted([f"A{index}" for index in range(6)] + ["B0"])
    assert order.index("B0") <= 2
