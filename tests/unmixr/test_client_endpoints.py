"""Every endpoint and parameter of the Unmixr client, against the stand-in over real HTTP."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.unmixr import (
    AudioDownloadError,
    AudioTooLargeError,
    InputTooLongError,
    NotFoundError,
    OpenAIKeyRequiredError,
    TTSRequest,
    UnmixrClient,
)
from tests.fakes.unmixr import FakeUnmixr
from tests.unmixr.conftest import (
    API_KEY,
    BRIAN_ID,
    OPENAI_KEY,
    STEFFAN_ID,
    ClientFactory,
    header,
    requests_to,
    wav_tone,
)


def _is_mp3(audio: bytes) -> bool:
    return audio[:3] == b"ID3" or (audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0)


# Voice lists ---------------------------------------------------------------


async def test_voice_list_without_filters_sends_no_parameters(client: UnmixrClient, fake: FakeUnmixr) -> None:
    page = await client.voice_list()
    request = requests_to(fake, "/voice-list/")[-1]
    assert request.query == {}
    assert header(request, "Authorization") == f"Bearer {API_KEY}"
    assert header(request, "OpenAI-API-Key") is None
    # The stand-in's default page size and category: the first prebuilt voice is Brian.
    assert page.results[0].uuid == BRIAN_ID
    assert len(page.results) == 12
    assert page.current_page == 1
    assert page.next_page == 2
    assert page.prev_page is None
    assert page.count >= 30


async def test_voice_list_sends_every_filter_under_its_query_name(client: UnmixrClient, fake: FakeUnmixr) -> None:
    await client.voice_list(
        category="prebuilt-voices",
        query="bri",
        language="en-US",
        gender="male",
        capabilities="intensity",
        styles="cheerful",
        use_case="podcast-voices",
        page=1,
        page_size=5,
        fields=["uuid", "character", "capabilities"],
    )
    assert requests_to(fake, "/voice-list/")[-1].query == {
        "c": "prebuilt-voices",
        "q": "bri",
        "lang": "en-US",
        "gender": "male",
        "capabilities": "intensity",
        "styles": "cheerful",
        "uc": "podcast-voices",
        "page": "1",
        "page_size": "5",
        "fields": "uuid,character,capabilities",
    }


async def test_voice_list_filters_reach_the_results(client: UnmixrClient) -> None:
    page = await client.voice_list(language="fr-FR", gender="female", page_size=100)
    names = {voice.character for voice in page.results}
    assert "Amelie" in names
    assert "Hans" not in names
    assert all(voice.speaks("fr-FR") for voice in page.results)
    intense = await client.voice_list(capabilities=["intensity"], page_size=100)
    assert intense.results and all(voice.has_capability("intensity") for voice in intense.results)
    assert "Jenny" not in {voice.character for voice in intense.results}


async def test_voice_list_fields_limit_the_parsed_voices(client: UnmixrClient) -> None:
    page = await client.voice_list(fields=["uuid", "character", "language"], page_size=3)
    first = page.results[0]
    assert (first.uuid, first.character, first.language) == (BRIAN_ID, "Brian", "en-US")
    assert first.capabilities == []
    assert first.sample_voice_url is None


async def test_iter_voices_follows_next_page_to_the_end(client: UnmixrClient, fake: FakeUnmixr) -> None:
    everything = await client.voice_list(page_size=100)
    paged = [voice.uuid async for voice in client.iter_voices(page_size=12)]
    assert paged == [voice.uuid for voice in everything.results]
    assert len(paged) >= 30
    pages = [request.query.get("page") for request in requests_to(fake, "/voice-list/")[1:]]
    assert pages == [None, "2", "3"]


async def test_iter_voices_works_when_the_server_caps_the_page_size(make_client: ClientFactory) -> None:
    capped = FakeUnmixr(api_key=API_KEY, max_page_size=7)
    await capped.start()
    try:
        client = make_client(base_url=capped.base_url)
        voices = [voice async for voice in client.iter_voices(category="prebuilt-voices")]
        assert len({voice.uuid for voice in voices}) == len(voices)
        assert len(voices) == len([voice for voice in capped.voices if voice["category"] == "prebuilt-voices"])
        assert all(request.query["page_size"] == "100" for request in capped.requests)
        assert len(capped.requests) == -(-len(voices) // 7)
    finally:
        await capped.close()


async def test_iter_voices_passes_filters_on_every_page(client: UnmixrClient, fake: FakeUnmixr) -> None:
    voices = [voice async for voice in client.iter_voices(language="en", page_size=5, fields=["uuid", "language"])]
    assert voices
    for request in requests_to(fake, "/voice-list/"):
        assert request.query["lang"] == "en"
        assert request.query["fields"] == "uuid,language"
        assert request.query["page_size"] == "5"


async def test_voice_details_full_and_with_fields(client: UnmixrClient, fake: FakeUnmixr) -> None:
    brian = await client.voice_details(BRIAN_ID)
    request = fake.requests[-1]
    assert request.path == f"/api/v1/voice/{BRIAN_ID}/"
    assert request.query == {}
    assert brian.character == "Brian"
    assert brian.has_capability("intensity")
    assert brian.speaks("fr-FR") and brian.speaks("en-GB") and brian.speaks("en")

    steffan = await client.voice_details(STEFFAN_ID, fields=["uuid", "capabilities"])
    assert fake.requests[-1].query == {"fields": "uuid,capabilities"}
    assert steffan.capabilities == ["abbr", "intensity"]
    assert steffan.character == ""


async def test_voice_details_unknown_voice_is_not_found(client: UnmixrClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.voice_details("00000000-0000-0000-0000-000000000000")
    assert raised.value.code == 404
    assert raised.value.endpoint == "/voice/"


async def test_voice_details_quotes_the_uuid_into_one_path_segment(client: UnmixrClient, fake: FakeUnmixr) -> None:
    with pytest.raises(NotFoundError):
        await client.voice_details("../credit-balance")
    assert fake.requests[-1].endpoint == "/voice/"


async def test_cloned_voice_list_and_iteration(client: UnmixrClient, fake: FakeUnmixr) -> None:
    sample = wav_tone(31)
    created = [
        await client.clone_voice(audio=sample, filename=f"take{index}.wav", name=f"Clone {index}") for index in range(3)
    ]
    page = await client.cloned_voice_list(query="clone", page=2, page_size=2, fields=["uuid", "character"])
    assert requests_to(fake, "/cloned-voice-list/")[-1].query == {
        "q": "clone",
        "page": "2",
        "page_size": "2",
        "fields": "uuid,character",
    }
    assert page.count == 3
    assert [voice.uuid for voice in page.results] == [created[2].voice_id]
    every = [voice.uuid async for voice in client.iter_cloned_voices(page_size=2)]
    assert every == [result.voice_id for result in created]


# Credits and cloning -------------------------------------------------------


async def test_credit_balance_reads_the_live_balances(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.prebuilt_chars = 1234
    fake.cloned_chars = 56
    balance = await client.credit_balance()
    assert (balance.prebuilt_chars, balance.cloned_chars) == (1234, 56)


async def test_clone_voice_sends_multipart_and_the_clone_is_usable(client: UnmixrClient, fake: FakeUnmixr) -> None:
    audio = wav_tone(32)
    result = await client.clone_voice(
        audio=audio,
        filename="C:\\Users\\me\\speech3.wav",
        name="Jack Sparrow",
        description="The clone of Jack Sparrow voice",
        content_type="audio/wav",
    )
    request = requests_to(fake, "/clone-voice/")[-1]
    assert request.form == {"name": "Jack Sparrow", "description": "The clone of Jack Sparrow voice"}
    assert request.file_size == len(audio)
    assert header(request, "Authorization") == f"Bearer {API_KEY}"
    assert result.status == "SUCCESS"
    assert result.code == 200
    assert fake.clones[-1]["uuid"] == result.voice_id
    spoken = await client.short_tts(TTSRequest(text="Arr", voice_id=result.voice_id))
    assert spoken.credit_usage.voice_cloning == 3
    assert spoken.credit_usage.prebuilt == 0


async def test_clone_voice_without_description_omits_the_field(client: UnmixrClient, fake: FakeUnmixr) -> None:
    await client.clone_voice(audio=wav_tone(30), filename="a.wav", name="Plain")
    assert requests_to(fake, "/clone-voice/")[-1].form == {"name": "Plain"}


# Text to speech ------------------------------------------------------------


async def test_short_tts_url_response_is_downloaded_without_credentials(
    make_client: ClientFactory, fake: FakeUnmixr
) -> None:
    client = make_client(openai_api_key=SecretStr(OPENAI_KEY))
    text = "Hello from the stand-in, thirty chars."
    result = await client.short_tts(TTSRequest(text=text, voice_id=BRIAN_ID))
    tts = requests_to(fake, "/short-tts/")[-1]
    assert tts.json == {"text": text, "voice_id": BRIAN_ID, "response_type": "url"}
    assert header(tts, "Authorization") == f"Bearer {API_KEY}"
    assert header(tts, "OpenAI-API-Key") == OPENAI_KEY
    download = requests_to(fake, "/audio/")[-1]
    assert header(download, "Authorization") is None
    assert header(download, "OpenAI-API-Key") is None
    assert _is_mp3(result.audio)
    assert result.output_type == "mp3"
    assert result.duration == pytest.approx(len(text) / fake.chars_per_second, abs=0.06)
    assert result.credit_usage.prebuilt == len(text)
    assert result.credit_usage.voice_cloning == 0


async def test_short_tts_sends_every_field(client: UnmixrClient, fake: FakeUnmixr) -> None:
    request = TTSRequest(
        text="SME pricing, said slowly.",
        voice_id=BRIAN_ID,
        speaking_rate="-20%",
        speaking_pitch="high",
        speaking_volume="+10%",
        intensity=30,
        output_type="wav",
        language="en-GB",
        pronunciation_dict={"SME": "Small and Medium Enterprise"},
    )
    result = await client.short_tts(request)
    assert requests_to(fake, "/short-tts/")[-1].json == {
        "text": "SME pricing, said slowly.",
        "voice_id": BRIAN_ID,
        "speaking_rate": "-20%",
        "speaking_pitch": "high",
        "speaking_volume": "+10%",
        "intensity": 30,
        "output_type": "wav",
        "language": "en-GB",
        "pronunciation_dict": {"SME": "Small and Medium Enterprise"},
        "response_type": "url",
    }
    assert result.output_type == "wav"
    assert result.audio[:4] == b"RIFF"


@pytest.mark.parametrize("shape", ["base64", "bytes"])
async def test_short_tts_understands_every_response_shape(client: UnmixrClient, fake: FakeUnmixr, shape: str) -> None:
    reference = await client.short_tts(TTSRequest(text="Same words each time.", voice_id=BRIAN_ID))
    fake.shape_next(shape)
    result = await client.short_tts(TTSRequest(text="Same words each time.", voice_id=BRIAN_ID))
    assert result.audio == reference.audio
    assert result.output_type == "mp3"
    # Only the url shape needs a download.
    assert len(requests_to(fake, "/audio/")) == 1
    if shape == "base64":
        assert result.duration == reference.duration
        assert result.credit_usage == reference.credit_usage


async def test_short_tts_raw_wav_body_is_recognised(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.shape_next("bytes")
    result = await client.short_tts(TTSRequest(text="Wave.", voice_id=BRIAN_ID, output_type="wav"))
    assert result.output_type == "wav"
    assert result.audio[:4] == b"RIFF"
    assert result.duration is None


@pytest.mark.parametrize("response_type", ["base64", "bytes"])
async def test_short_tts_other_response_types_on_request(
    client: UnmixrClient, fake: FakeUnmixr, response_type: str
) -> None:
    result = await client.short_tts(TTSRequest(text="Asked shape.", voice_id=BRIAN_ID, response_type=response_type))
    assert requests_to(fake, "/short-tts/")[-1].json["response_type"] == response_type
    assert _is_mp3(result.audio)
    assert requests_to(fake, "/audio/") == []


async def test_text_over_2000_characters_is_refused_before_any_request(client: UnmixrClient, fake: FakeUnmixr) -> None:
    with pytest.raises(InputTooLongError):
        await client.short_tts(TTSRequest(text="a" * 2001, voice_id=BRIAN_ID))
    assert fake.requests == []
    result = await client.short_tts(TTSRequest(text="b" * 2000, voice_id=BRIAN_ID))
    assert result.credit_usage.prebuilt == 2000


async def test_openai_voice_needs_the_openai_header(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    alloy = next(voice for voice in fake.voices if voice["character"] == "Alloy")
    without = make_client()
    with pytest.raises(OpenAIKeyRequiredError):
        await without.short_tts(TTSRequest(text="Hi.", voice_id=alloy["uuid"]))
    assert header(requests_to(fake, "/short-tts/")[-1], "OpenAI-API-Key") is None

    with_key = make_client(openai_api_key=SecretStr(OPENAI_KEY))
    result = await with_key.short_tts(TTSRequest(text="Hi.", voice_id=alloy["uuid"]))
    assert result.audio
    assert header(requests_to(fake, "/short-tts/")[-1], "OpenAI-API-Key") == OPENAI_KEY
    assert header(requests_to(fake, "/audio/")[-1], "OpenAI-API-Key") is None
    # The OpenAI header rides on every API call when configured, never on downloads.
    await with_key.credit_balance()
    assert header(requests_to(fake, "/credit-balance/")[-1], "OpenAI-API-Key") == OPENAI_KEY


# Downloads -----------------------------------------------------------------


async def test_audio_on_a_foreign_host_is_refused_and_never_fetched(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.audio_url_base_next("http://evil.example.com")
    with pytest.raises(AudioDownloadError) as raised:
        await client.short_tts(TTSRequest(text="Somewhere else.", voice_id=BRIAN_ID))
    assert not raised.value.transient
    fake.audio_url_base_next("http://127.0.0.2")  # same address family, another host
    with pytest.raises(AudioDownloadError):
        await client.short_tts(TTSRequest(text="Somewhere else.", voice_id=BRIAN_ID))
    assert len(requests_to(fake, "/short-tts/")) == 2
    assert requests_to(fake, "/audio/") == []


async def test_audio_on_another_port_of_the_api_host_is_refused_unasked(client: UnmixrClient, fake: FakeUnmixr) -> None:
    # The rule is by origin: another port of UNMIXR_BASE_URL's host may be another service entirely.
    other = FakeUnmixr(api_key=API_KEY)
    await other.start()
    try:
        fake.audio_url_base_next(other.origin)
        with pytest.raises(AudioDownloadError) as raised:
            await client.short_tts(TTSRequest(text="Somewhere else.", voice_id=BRIAN_ID))
        assert not raised.value.transient
        assert other.requests == []
    finally:
        await other.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://unmixr.com/a.mp3",
        "https://user:pass@unmixr.com/a.mp3",
        "ftp://unmixr.com/a.mp3",
        "https://unmixr.com:8443/a.mp3",
        "https://127.0.0.1/a.mp3",
        "https://10.0.0.1/a.mp3",
    ],
)
async def test_download_sample_refuses_what_the_download_rule_refuses(client: UnmixrClient, url: str) -> None:
    with pytest.raises(AudioDownloadError) as raised:
        await client.download_sample(url)
    assert type(raised.value) is AudioDownloadError


async def test_download_sample_fetches_an_allowed_sample(client: UnmixrClient, fake: FakeUnmixr) -> None:
    brian = await client.voice_details(BRIAN_ID)
    assert brian.sample_voice_url is not None
    audio = await client.download_sample(brian.sample_voice_url)
    assert _is_mp3(audio)
    sample_request = fake.requests[-1]
    assert sample_request.path.startswith("/samples/")
    assert header(sample_request, "Authorization") is None


async def test_audio_size_cap_applies_to_every_shape(make_client: ClientFactory, fake: FakeUnmixr) -> None:
    client = make_client(max_audio_bytes=2000)
    text = "A sentence long enough to make more than two kilobytes of audio."
    for shape in ("url", "base64", "bytes"):
        fake.shape_next(shape)
        with pytest.raises(AudioTooLargeError):
            await client.short_tts(TTSRequest(text=text, voice_id=BRIAN_ID))
    brian = await client.voice_details(BRIAN_ID)
    with pytest.raises(AudioTooLargeError):
        await client.download_sample(brian.sample_voice_url or "")
    # A size failure is permanent: each download was tried once.
    assert len(requests_to(fake, "/audio/")) == 1
    assert len(requests_to(fake, "/samples/")) == 1


async def test_client_repr_shows_no_key(make_client: ClientFactory) -> None:
    client = make_client(openai_api_key=SecretStr(OPENAI_KEY))
    text = repr(client) + str(client)
    assert API_KEY not in text
    assert OPENAI_KEY not in text
    assert "openai_key_configured=True" in text


async def test_a_local_api_may_name_itself_localhost_in_audio_urls(client: UnmixrClient, fake: FakeUnmixr) -> None:
    fake.audio_url_base_next(fake.origin.replace("127.0.0.1", "localhost"))
    result = await client.short_tts(TTSRequest(text="Local audio.", voice_id=BRIAN_ID))
    assert result.audio
    assert requests_to(fake, "/audio/")
