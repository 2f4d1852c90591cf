"""The client against answers that differ from the reference's one example of each (PRODUCT.md, Unmixr
responses): odd field types, extra fields, gateway errors, same-origin redirects, a `page` that is ignored."""

from __future__ import annotations

import pytest

from bot.unmixr import (
    InsufficientClonedCreditsError,
    RateLimitedError,
    ServiceUnavailableError,
    TTSRequest,
    UnexpectedStatusError,
    UnmixrClient,
    UnmixrTimeoutError,
)
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import API_KEY, BRIAN_ID, STEFFAN_ID, ClientFactory, header, requests_to, wav_tone

TTS = "/short-tts/"
CLONE = "/clone-voice/"


def _hello(text: str = "Hello there.") -> TTSRequest:
    return TTSRequest(text=text, voice_id=BRIAN_ID)


# Odd and extra fields --------------------------------------------------------------------------------


async def test_a_page_of_odd_voices_keeps_every_voice_and_what_can_be_read(
    client: UnmixrClient, fake: FakeUnmixr
) -> None:
    plain = await client.voice_list(page_size=100)
    fake.vary("odd-fields", "extra-fields")
    odd = await client.voice_list(page_size=100)
    listed = [voice for voice in odd.results if voice.listable]
    assert [voice.uuid for voice in listed] == [voice.uuid for voice in plain.results]
    # The page's numbers came as strings; the entries that are not voices are told apart.
    assert (odd.count, odd.current_page, odd.total_page) == (plain.count, 1, plain.total_page)
    assert odd.skipped == 1
    assert [(voice.uuid, voice.character) for voice in odd.results if not voice.listable] == [
        ("", "Nameless Uuid"),
        ("0badc0de-0000-4000-8000-000000000000", ""),
    ]
    brian = next(voice for voice in listed if voice.uuid == BRIAN_ID)
    before = next(voice for voice in plain.results if voice.uuid == BRIAN_ID)
    assert brian.languages == before.languages  # one locale's sample URL is null: the locale still counts
    assert None in brian.supported_locales.values()
    assert brian.capabilities == before.capabilities  # an object among them is skipped
    assert brian.emotions == [] and brian.roles == []  # lists of objects
    assert (brian.gender, brian.description, brian.avatar_url, brian.quality) == (None, None, None, None)
    assert (brian.age, brian.wpm, brian.is_new, brian.date_created) == ("30", before.wpm, True, None)
    assert brian.personality == before.personality[:1]


async def test_voice_details_and_every_other_answer_with_odd_and_extra_fields(
    client: UnmixrClient, fake: FakeUnmixr
) -> None:
    fake.vary("odd-fields", "extra-fields")
    steffan = await client.voice_details(STEFFAN_ID)
    assert steffan.has_capability("intensity")
    result = await client.short_tts(_hello())
    assert result.audio and result.duration is not None and result.duration > 0
    assert result.credit_usage.prebuilt == len("Hello there.") and result.usage_reported
    balance = await client.credit_balance()
    assert balance.prebuilt_chars == fake.prebuilt_chars
    clone = await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="Extra")
    assert clone.voice_id == fake.clones[0]["uuid"]


# Gateway errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
async def test_a_gateway_504_on_short_tts_is_a_timeout_after_sending(
    client: UnmixrClient, fake: FakeUnmixr, html: bool
) -> None:
    before = fake.prebuilt_chars
    fake.gateway_error_next(504, endpoint=TTS, html=html)
    with pytest.raises(UnmixrTimeoutError) as raised:
        await client.short_tts(_hello())
    # Not Unmixr's documented 504 ("out of cloned credits"): the gateway gave up while Unmixr worked on.
    assert raised.value.maybe_charged
    assert raised.value.code == 504
    assert len(requests_to(fake, TTS)) == 1, "never retried: it may have been charged"
    assert fake.prebuilt_chars == before - len("Hello there.")
    assert client.limiter.limit == 1, "a timeout lowers the limit: to 0.7 x the one request holding a slot, at least 1"


async def test_unmixrs_own_504_is_still_out_of_cloned_credits(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(504, endpoint=TTS)
    with pytest.raises(InsufficientClonedCreditsError):
        await client.short_tts(_hello())


@pytest.mark.parametrize("status", [502, 503])
@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
async def test_a_gateway_502_or_503_is_transient_and_retried(
    client: UnmixrClient, fake: FakeUnmixr, status: int, html: bool
) -> None:
    fake.gateway_error_next(status, endpoint=TTS, html=html)
    result = await client.short_tts(_hello())
    assert result.audio
    assert [request.status for request in requests_to(fake, TTS)] == [status, 200]


async def test_gateway_errors_that_last_reach_the_caller_as_unavailable(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.gateway_error_next(502, n=3, endpoint=TTS)
    with pytest.raises(ServiceUnavailableError) as raised:
        await client.short_tts(_hello())
    assert raised.value.detail == "Internal server error"
    assert len(requests_to(fake, TTS)) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_gateway_error_on_a_read_is_retried(client: UnmixrClient, fake: FakeUnmixr, status: int) -> None:
    fake.gateway_error_next(status, endpoint="/voice-list/")
    page = await client.voice_list()
    assert page.results
    assert [request.status for request in requests_to(fake, "/voice-list/")] == [status, 200]


async def test_a_gateway_504_on_clone_voice_warns_that_the_clone_may_exist(
    client: UnmixrClient, fake: FakeUnmixr
) -> None:
    fake.gateway_error_next(504, endpoint=CLONE)
    with pytest.raises(UnmixrTimeoutError) as raised:
        await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="Behind the gateway")
    assert "may still have been created" in raised.value.message
    assert len(requests_to(fake, CLONE)) == 1
    assert [clone["character"] for clone in fake.clones] == ["Behind the gateway"]


async def test_a_429_from_a_gateway_is_still_a_429(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.fail_next(429, n=3, endpoint="/credit-balance/", body="<html>Too Many Requests</html>")
    with pytest.raises(RateLimitedError):
        await client.credit_balance()


# Redirects -------------------------------------------------------------------------------------------


async def test_every_endpoint_follows_a_same_origin_redirect(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.vary("moved")
    assert (await client.voice_list(category="prebuilt-voices", page_size=2)).results
    assert (await client.voice_details(BRIAN_ID)).character == "Brian"
    assert (await client.credit_balance()).prebuilt_chars == fake.prebuilt_chars
    clone = await client.clone_voice(audio=wav_tone(31), filename="a.wav", name="Moved", description="after a 308")
    assert [voice.uuid async for voice in client.iter_cloned_voices()] == [clone.voice_id]
    assert fake.clones[0]["description"] == "after a 308"
    assert (await client.short_tts(_hello())).audio
    moved = [request for request in fake.requests if request.path.startswith("/moved/")]
    first = [request for request in fake.requests if request.path.startswith("/api/")]
    assert len(moved) == len(first) == 6
    assert {request.status for request in first} == {301, 308}
    # The key goes to the same origin only, and the query and the body go along.
    assert all(header(request, "Authorization") == f"Bearer {API_KEY}" for request in moved)
    voice_list = next(request for request in moved if request.endpoint == "/voice-list/")
    assert voice_list.query == {"c": "prebuilt-voices", "page_size": "2"}
    tts = next(request for request in moved if request.endpoint == TTS)
    assert tts.method == "POST" and tts.json is not None and tts.json["text"] == "Hello there."


async def test_a_redirect_to_another_origin_is_not_followed(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    other = FakeUnmixr(api_key=API_KEY)
    await other.start()
    try:
        client = make_client()
        fake.fail_next(301, endpoint="/credit-balance/", headers={"Location": other.base_url + "/credit-balance/"})
        with pytest.raises(UnexpectedStatusError) as raised:
            await client.credit_balance()
        assert raised.value.code == 301
        assert other.requests == [], "the key never leaves UNMIXR_BASE_URL's origin"
    finally:
        await other.close()


async def test_at_most_three_redirects(client: UnmixrClient, fake: FakeUnmixr) -> None:
    again = {"Location": "/api/v1/credit-balance/"}
    fake.fail_next(302, n=3, endpoint="/credit-balance/", headers=again)
    assert await client.credit_balance()
    fake.fail_next(302, n=4, endpoint="/credit-balance/", headers=again)
    with pytest.raises(UnexpectedStatusError):
        await client.credit_balance()
    assert len(requests_to(fake, "/credit-balance/")) == 4 + 4


# Paging ----------------------------------------------------------------------------------------------


async def test_cloned_voice_pages_stop_at_a_page_that_repeats_the_previous(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    client = make_client()
    made = [
        (await client.clone_voice(audio=wav_tone(30), filename="a.wav", name=f"Clone {index}")).voice_id
        for index in range(3)
    ]
    assert [voice.uuid async for voice in client.iter_cloned_voices(page_size=1)] == made
    fake.requests.clear()
    fake.vary("ignored-page")
    assert [voice.uuid async for voice in client.iter_cloned_voices(page_size=1)] == made[:1]
    assert [request.query.get("page") for request in fake.requests] == [None, "2"]


async def test_cloned_voice_pages_stop_at_an_empty_page(client: UnmixrClient, fake: FakeUnmixr) -> None:
    assert [page async for page in client.cloned_voice_pages()] == []
    assert len(requests_to(fake, "/cloned-voice-list/")) == 1
