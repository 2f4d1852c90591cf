"""Tests of the Unmixr stand-in itself, talking to it over HTTP as a client would."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID, STEFFAN_ID

KEY = "test-unmixr-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUnmixr]:
    server = FakeUnmixr()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def voice_named(fake: FakeUnmixr, name: str) -> dict[str, Any]:
    return next(voice for voice in fake.voices if voice["character"] == name)


async def get_json(session: aiohttp.ClientSession, url: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.get(url, params=params, headers=AUTH) as response:
        return response.status, await response.json()


async def tts(
    session: aiohttp.ClientSession, fake: FakeUnmixr, headers: dict[str, str] | None = None, **fields: Any
) -> tuple[int, Any]:
    fields.setdefault("voice_id", BRIAN_ID)
    url = f"{fake.base_url}/short-tts/"
    async with session.post(url, json=fields, headers={**AUTH, **(headers or {})}) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.read()


async def probe(data: bytes, directory: Path) -> dict[str, Any]:
    """Measure audio with ffprobe, independently of the stand-in's own code."""
    path = directory / f"probe-{len(os.listdir(directory))}.bin"
    path.write_bytes(data)
    process = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        "format=duration,format_name:stream=codec_name,sample_rate,channels",
        "-of",
        "json",
        str(path),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, "ffprobe could not read the audio"
    report = json.loads(output)
    stream = report["streams"][0]
    return {
        "duration": float(report["format"]["duration"]),
        "codec": stream["codec_name"],
        "sample_rate": int(stream["sample_rate"]),
        "channels": stream["channels"],
    }


async def tone_file(seconds: float) -> bytes:
    """Make an mp3 of the given length with ffmpeg, as a user's upload."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=300:sample_rate=16000:duration={seconds}",
        "-b:a",
        "24k",
        "-f",
        "mp3",
        "pipe:1",
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    return output


async def clone(
    session: aiohttp.ClientSession,
    fake: FakeUnmixr,
    audio: bytes | None,
    name: str | None = "Jack Sparrow",
    description: str | None = "The clone of Jack Sparrow voice",
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    if audio is not None:
        form.add_field("audio", audio, filename="speech.mp3", content_type="audio/mpeg")
    if name is not None:
        form.add_field("name", name)
    if description is not None:
        form.add_field("description", description)
    async with session.post(f"{fake.base_url}/clone-voice/", data=form, headers=AUTH) as response:
        return response.status, await response.json()


# Authentication and routing

API_CALLS = [
    ("GET", "/voice-list/"),
    ("GET", f"/voice/{BRIAN_ID}/"),
    ("POST", "/short-tts/"),
    ("POST", "/clone-voice/"),
    ("GET", "/cloned-voice-list/"),
    ("GET", "/credit-balance/"),
]


@pytest.mark.parametrize(("method", "path"), API_CALLS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Token {KEY}", KEY])
async def test_every_endpoint_refuses_a_missing_or_wrong_key(
    fake: FakeUnmixr, session: aiohttp.ClientSession, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = {"text": "hello", "voice_id": BRIAN_ID} if method == "POST" else None
    async with session.request(method, fake.base_url + path, json=body, headers=headers) as response:
        assert response.status == 401
        assert await response.json() == {"detail": "Invalid API key."}
    assert fake.prebuilt_chars == 1_000_000


async def test_credit_balance_with_the_right_key(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.prebuilt_chars = 1234
    status, body = await get_json(session, f"{fake.base_url}/credit-balance/")
    assert status == 200
    assert body == {
        "status": "SUCCESS",
        "code": 200,
        "credits": {"prebuilt_chars": 1234, "cloned_chars": 100_000},
    }


async def test_unknown_paths_and_methods(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{fake.base_url}/no-such-endpoint/")
    assert (status, body) == (404, {"detail": "Not found."})
    status, _ = await get_json(session, f"{fake.origin}/elsewhere")
    assert status == 404
    async with session.get(f"{fake.base_url}/short-tts/", headers=AUTH) as response:
        assert response.status == 405


async def test_base_url_and_origin(fake: FakeUnmixr) -> None:
    assert fake.origin.startswith("http://127.0.0.1:")
    assert fake.base_url == fake.origin + "/api/v1"
    assert not fake.base_url.endswith("/")


# Voice lists


async def test_paging_math_over_the_prebuilt_voices(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    url = f"{fake.base_url}/voice-list/"
    prebuilt = [voice for voice in fake.voices if voice["category"] == "prebuilt-voices"]
    assert len(prebuilt) >= 30
    status, first = await get_json(session, url)
    assert status == 200
    assert first["count"] == len(prebuilt)
    assert len(first["results"]) == 12
    assert first["results"][0]["uuid"] == BRIAN_ID
    assert first["results"][1]["uuid"] == STEFFAN_ID
    total = -(-len(prebuilt) // 12)
    assert first["total_page"] == total >= 3
    expected = {"current_page": 1, "page_start": 1, "page_end": 12, "next_page": 2, "prev_page": None}
    assert {key: first[key] for key in expected} == expected

    status, last = await get_json(session, url, {"page": str(total)})
    assert status == 200
    assert last["current_page"] == total
    assert last["page_start"] == (total - 1) * 12 + 1
    assert last["page_end"] == len(prebuilt)
    assert last["next_page"] is None
    assert last["prev_page"] == total - 1
    assert len(last["results"]) == len(prebuilt) - (total - 1) * 12
    listed = [voice["uuid"] for page in (first, last) for voice in page["results"]]
    assert len(set(listed)) == len(listed)

    status, body = await get_json(session, url, {"page": str(total + 1)})
    assert (status, body) == (404, {"detail": "Invalid page."})
    status, body = await get_json(session, url, {"page": "0"})
    assert (status, body) == (404, {"detail": "Invalid page."})


async def test_page_size_is_capped_at_the_maximum(session: aiohttp.ClientSession) -> None:
    server = FakeUnmixr(max_page_size=10)
    await server.start()
    try:
        status, body = await get_json(session, f"{server.base_url}/voice-list/", {"page_size": "1000"})
    finally:
        await server.close()
    assert status == 200
    assert len(body["results"]) == 10
    assert body["total_page"] == -(-body["count"] // 10)


@pytest.mark.parametrize(
    "params",
    [{"page": "two"}, {"page_size": "many"}, {"page_size": "0"}, {"c": "robot-voices"}, {"gender": "robot"}],
)
async def test_invalid_list_parameters_are_400(
    fake: FakeUnmixr, session: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    status, body = await get_json(session, f"{fake.base_url}/voice-list/", params)
    assert status == 400
    assert isinstance(body["detail"], str)
    assert body["detail"]


async def test_empty_result_is_one_empty_page(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{fake.base_url}/voice-list/", {"q": "nobody-has-this-name"})
    assert status == 200
    assert body == {
        "count": 0,
        "results": [],
        "current_page": 1,
        "page_start": 0,
        "page_end": 0,
        "next_page": None,
        "prev_page": None,
        "total_page": 1,
    }


async def names(session: aiohttp.ClientSession, fake: FakeUnmixr, **params: str) -> set[str]:
    params.setdefault("page_size", "100")
    status, body = await get_json(session, f"{fake.base_url}/voice-list/", params)
    assert status == 200, body
    return {voice["character"] for voice in body["results"]}


async def test_filters(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    assert await names(session, fake, q="BRI") == {"Brian"}
    french = await names(session, fake, lang="fr")
    assert {"Amelie", "Henri", "Brian"} <= french
    assert "Hans" not in french
    assert "Jenny" not in french
    english = await names(session, fake, lang="en")
    assert {"Brian", "Jenny", "Sonia"} <= english
    assert "Amelie" not in english
    assert "Jenny" in await names(session, fake, lang="en-US")
    assert "Sonia" not in await names(session, fake, lang="en-US")
    females = await names(session, fake, gender="female")
    assert "Jenny" in females
    assert all(voice_named(fake, name)["gender"] == "Female" for name in females)
    assert await names(session, fake, gender="child") == set()
    assert await names(session, fake, c="child-voices", gender="child") == {"Ana", "Leo"}
    with_intensity = await names(session, fake, capabilities="intensity")
    assert {"Brian", "Steffan (Express)"} <= with_intensity
    assert "Jenny" not in with_intensity
    assert "Steffan (Express)" not in await names(session, fake, capabilities="speech:rate")
    assert "Jenny" in await names(session, fake, styles="cheerful")
    assert "Brian" not in await names(session, fake, styles="cheerful")
    podcast = await names(session, fake, uc="podcast-voices")
    assert "Brian" in podcast
    assert "Steffan (Express)" not in podcast
    assert await names(session, fake, c="openai-voices") == {"Alloy", "Echo"}
    assert "Alloy" not in await names(session, fake)


async def test_results_are_shaped_like_the_reference(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{fake.base_url}/voice-list/", {"page_size": "1"})
    assert status == 200
    assert list(body) == [
        "count",
        "results",
        "current_page",
        "page_start",
        "page_end",
        "next_page",
        "prev_page",
        "total_page",
    ]
    brian = body["results"][0]
    assert "category" not in brian
    for key in (
        "uuid",
        "character",
        "gender",
        "language",
        "capabilities",
        "supported_locales",
        "is_available",
    ):
        assert key in brian
    assert brian["sample_voice_url"].startswith(fake.origin + "/samples/")


async def test_fields_limit_the_keys(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{fake.base_url}/voice-list/", {"fields": "uuid,character,language"})
    assert status == 200
    assert all(set(voice) == {"uuid", "character", "language"} for voice in body["results"])
    status, voice = await get_json(session, f"{fake.base_url}/voice/{BRIAN_ID}/", {"fields": "uuid,capabilities"})
    assert status == 200
    assert voice == {"uuid": BRIAN_ID, "capabilities": voice_named(fake, "Brian")["capabilities"]}


async def test_voice_details(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, voice = await get_json(session, f"{fake.base_url}/voice/{STEFFAN_ID}/")
    assert status == 200
    assert voice["character"] == "Steffan (Express)"
    assert voice["capabilities"] == ["abbr", "intensity"]
    status, body = await get_json(session, f"{fake.base_url}/voice/00000000-0000-0000-0000-000000000000/")
    assert (status, body) == (404, {"detail": "Not found."})


async def test_samples_are_served_without_a_key(
    fake: FakeUnmixr, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with session.get(voice_named(fake, "Jenny")["sample_voice_url"]) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        sample = await response.read()
    assert (await probe(sample, tmp_path))["duration"] > 1


# Text to speech


async def test_tts_url_gives_a_real_mp3_of_the_reported_duration(
    fake: FakeUnmixr, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    text = "Recent political developments have intensified global scrutiny."
    status, body = await tts(session, fake, text=text, language="en-US")
    assert status == 200
    assert set(body) == {"success", "code", "duration", "credit_usage", "audio_url"}
    assert body["success"] is True
    assert body["code"] == 200
    assert body["credit_usage"] == {"prebuilt": len(text), "voice_cloning": 0}
    assert body["duration"] == pytest.approx(len(text) / 15, abs=0.05)
    assert body["audio_url"].startswith(fake.origin + "/audio/")
    assert body["audio_url"].endswith(".mp3")
    async with session.get(body["audio_url"]) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        audio = await response.read()
    measured = await probe(audio, tmp_path)
    assert measured["codec"] == "mp3"
    assert measured["sample_rate"] == 24_000
    assert measured["channels"] == 1
    assert measured["duration"] == pytest.approx(body["duration"], abs=0.05)
    assert fake.prebuilt_chars == 1_000_000 - len(text)
    status, balance = await get_json(session, f"{fake.base_url}/credit-balance/")
    assert balance["credits"]["prebuilt_chars"] == 1_000_000 - len(text)


async def test_tts_base64_wav(fake: FakeUnmixr, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    status, body = await tts(session, fake, text="Hi", output_type="wav", response_type="base64")
    assert status == 200
    assert "audio_url" not in body
    audio = base64.b64decode(body["audio"])
    assert audio[:4] == b"RIFF"
    measured = await probe(audio, tmp_path)
    assert measured["codec"] == "pcm_s16le"
    assert measured["sample_rate"] == 24_000
    assert measured["duration"] == pytest.approx(0.5, abs=0.01)
    assert body["duration"] == pytest.approx(measured["duration"], abs=0.05)


async def test_tts_bytes(fake: FakeUnmixr, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    text = "x" * 300
    status, audio = await tts(session, fake, text=text, response_type="bytes")
    assert status == 200
    assert isinstance(audio, bytes)
    assert (await probe(audio, tmp_path))["duration"] == pytest.approx(20.0, abs=0.05)
    assert fake.prebuilt_chars == 1_000_000 - 300
    async with session.post(
        f"{fake.base_url}/short-tts/",
        json={"text": "hello", "voice_id": BRIAN_ID, "response_type": "bytes", "output_type": "wav"},
        headers=AUTH,
    ) as response:
        assert response.content_type == "audio/wav"


async def test_longest_text_is_generated(fake: FakeUnmixr, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    # 2,000 code points (4,000 bytes in UTF-8) is still within the limit.
    status, audio = await tts(session, fake, text="é" * 2000, response_type="bytes")
    assert status == 200
    assert (await probe(audio, tmp_path))["duration"] == pytest.approx(2000 / 15, abs=0.05)


async def test_different_voices_sound_different(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    jenny = voice_named(fake, "Jenny")["uuid"]
    _, brian_audio = await tts(session, fake, text="same text", response_type="bytes", output_type="wav")
    _, jenny_audio = await tts(
        session, fake, text="same text", response_type="bytes", output_type="wav", voice_id=jenny
    )
    assert len(brian_audio) == len(jenny_audio)
    assert brian_audio != jenny_audio


async def test_pronunciations_lengthen_the_audio_but_not_the_charge(
    fake: FakeUnmixr, session: aiohttp.ClientSession
) -> None:
    text = "We help every SME grow. " * 4
    _, plain = await tts(session, fake, text=text)
    _, spoken = await tts(session, fake, text=text, pronunciation_dict={"sme": "Small and Medium Enterprise"})
    expanded = text.replace("SME", "Small and Medium Enterprise")
    assert spoken["duration"] == pytest.approx(len(expanded) / 15, abs=0.05)
    assert spoken["duration"] > plain["duration"] + 5
    assert spoken["credit_usage"]["prebuilt"] == len(text)
    _, partial = await tts(session, fake, text="SMEs are not an SME", pronunciation_dict={"SME": "x" * 30})
    assert partial["duration"] == pytest.approx(len("SMEs are not an " + "x" * 30) / 15, abs=0.05)


async def test_accepted_prosody_and_options(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    status, body = await tts(
        session,
        fake,
        text="hello",
        speaking_rate="-100%",
        speaking_pitch="+50%",
        speaking_volume="X-LOUD",
        intensity=-100,
        language="en",
        output_type="mp3",
        response_type="url",
        pronunciation_dict={},
    )
    assert status == 200, body
    status, body = await tts(session, fake, text="hello", speaking_rate="fast", speaking_pitch="0%")
    assert status == 200, body


TOO_LONG = "Input too long. Please limit your input to under 2000 characters."


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        (
            {"response_type": "json"},
            400,
            "Invalid response_type. Supported values are: 'url', 'bytes', and 'base64'.",
        ),
        ({"text": "a" * 2001}, 401, TOO_LONG),
        ({"text": "é" * 2001}, 401, TOO_LONG),
        (
            {"voice_id": f"{BRIAN_ID},{STEFFAN_ID}"},
            503,
            "Multiple voices are not supported on this endpoint.",
        ),
        ({"voice_id": "00000000-0000-0000-0000-000000000000"}, 404, "Not Found"),
        ({"text": None}, 400, "text"),
        ({"voice_id": None}, 400, "voice_id"),
        ({"speaking_rate": "+101%"}, 400, "speaking_rate"),
        ({"speaking_rate": "fast!!"}, 400, "speaking_rate"),
        ({"speaking_rate": 20}, 400, "speaking_rate"),
        ({"speaking_pitch": "-51%"}, 400, "speaking_pitch"),
        ({"speaking_pitch": "x-fast"}, 400, "speaking_pitch"),
        ({"speaking_volume": "+300%"}, 400, "speaking_volume"),
        ({"speaking_volume": "whisper"}, 400, "speaking_volume"),
        ({"intensity": 101}, 400, "intensity"),
        ({"intensity": "50"}, 400, "intensity"),
        ({"output_type": "ogg"}, 400, "output_type"),
        ({"language": "ja-JP", "voice_id": "Amelie"}, 400, "language"),
        ({"pronunciation_dict": {"SME": 1}}, 400, "pronunciation_dict"),
        ({"pronunciation_dict": ["SME"]}, 400, "pronunciation_dict"),
        ({"intensity": 10, "voice_id": "Jenny"}, 400, "intensity"),
        ({"voice_id": "Alloy"}, 501, "Specify OpenAI API key in the header with key `OpenAI-API-Key`"),
        ({"voice_id": "Retired Voice"}, 404, "Not Found"),
    ],
)
async def test_tts_validation_errors(
    fake: FakeUnmixr, session: aiohttp.ClientSession, fields: dict[str, Any], code: int, message: str
) -> None:
    payload: dict[str, Any] = {"text": "Hello there", "voice_id": BRIAN_ID, **fields}
    if payload["voice_id"] in ("Amelie", "Jenny", "Alloy", "Retired Voice"):
        payload["voice_id"] = voice_named(fake, payload["voice_id"])["uuid"]
    payload = {key: value for key, value in payload.items() if value is not None}
    async with session.post(f"{fake.base_url}/short-tts/", json=payload, headers=AUTH) as response:
        status, body = response.status, await response.json()
    assert status == code
    assert body["success"] is False
    assert body["code"] == code
    assert message in body["message"]
    assert fake.prebuilt_chars == 1_000_000


async def test_tts_body_must_be_a_json_object(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{fake.base_url}/short-tts/", data=b"text=hi", headers=AUTH) as response:
        assert response.status == 400
        assert (await response.json())["success"] is False


async def test_openai_voice_with_its_key(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    alloy = voice_named(fake, "Alloy")["uuid"]
    status, body = await tts(session, fake, headers={"OpenAI-API-Key": "sk-test"}, text="hi there", voice_id=alloy)
    assert status == 200
    assert body["credit_usage"] == {"prebuilt": 8, "voice_cloning": 0}
    assert fake.requests[-1].headers["OpenAI-API-Key"] == "sk-test"


async def test_insufficient_prebuilt_balance_charges_nothing(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.prebuilt_chars = 5
    status, body = await tts(session, fake, text="six ch")
    assert status == 505
    assert body == {
        "success": False,
        "code": 505,
        "message": "Insufficient API balance (prebuilt characters) to full-fill the request",
    }
    assert fake.prebuilt_chars == 5
    status, _ = await tts(session, fake, text="five!")
    assert status == 200
    assert fake.prebuilt_chars == 0


# Cloning


async def test_clone_then_speak_with_it(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    audio = await tone_file(40)
    status, body = await clone(session, fake, audio)
    assert status == 200
    assert body["status"] == "SUCCESS"
    assert body["code"] == 200
    voice_id = body["voice_id"]
    record = fake.requests[-1]
    assert record.form == {"name": "Jack Sparrow", "description": "The clone of Jack Sparrow voice"}
    assert record.file_size == len(audio)

    status, listed = await get_json(session, f"{fake.base_url}/cloned-voice-list/", {"q": "sparrow"})
    assert status == 200
    assert listed["count"] == 1
    made = listed["results"][0]
    assert made["uuid"] == voice_id
    assert made["character"] == "Jack Sparrow"
    assert made["description"] == "The clone of Jack Sparrow voice"
    assert made["language"] == "en"
    assert made["capabilities"] == []
    assert made["is_available"] is True
    assert "fr" in made["other_languages"]
    status, detail = await get_json(session, f"{fake.base_url}/voice/{voice_id}/", {"fields": "uuid,character"})
    assert detail == {"uuid": voice_id, "character": "Jack Sparrow"}
    assert await names(session, fake, c="clones") == {"Jack Sparrow"}
    status, listed = await get_json(session, f"{fake.base_url}/cloned-voice-list/", {"q": "nobody"})
    assert listed["count"] == 0

    status, spoken = await tts(session, fake, text="Ahoy there", voice_id=voice_id, language="en-US")
    assert status == 200
    assert spoken["credit_usage"] == {"prebuilt": 0, "voice_cloning": 10}
    assert fake.cloned_chars == 100_000 - 10
    assert fake.prebuilt_chars == 1_000_000

    fake.cloned_chars = 3
    status, body = await tts(session, fake, text="Ahoy there", voice_id=voice_id)
    assert status == 504
    assert body["message"] == "Insufficient API balance (cloned characters) to full-fill the request."
    assert fake.cloned_chars == 3


async def test_clone_paging_over_several_clones(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    audio = await tone_file(31)
    for index in range(3):
        status, _ = await clone(session, fake, audio, name=f"Clone {index}")
        assert status == 200
    status, page = await get_json(session, f"{fake.base_url}/cloned-voice-list/", {"page_size": "2", "page": "2"})
    assert status == 200
    assert page["count"] == 3
    assert page["total_page"] == 2
    assert [voice["character"] for voice in page["results"]] == ["Clone 2"]
    assert page["prev_page"] == 1


@pytest.mark.parametrize("seconds", [10, 85])
async def test_clone_duration_out_of_range_is_501(
    fake: FakeUnmixr, session: aiohttp.ClientSession, seconds: int
) -> None:
    status, body = await clone(session, fake, await tone_file(seconds))
    assert (status, body) == (501, {"success": False, "code": 501, "message": "Failed to create clone"})
    assert fake.clones == []


async def test_clone_refusals(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    audio = await tone_file(40)
    status, body = await clone(session, fake, None)
    assert (status, body["message"]) == (400, "Audio is required")
    status, body = await clone(session, fake, audio, name=None)
    assert (status, body["message"]) == (401, "Name is required")
    status, body = await clone(session, fake, audio, name="   ")
    assert (status, body["message"]) == (401, "Name is required")
    status, body = await clone(session, fake, b"this is not audio at all " * 2000)
    assert (status, body["message"]) == (501, "Failed to create clone")
    fake.max_clone_bytes = len(audio) - 1
    status, body = await clone(session, fake, audio)
    assert (status, body["message"]) == (501, "Failed to create clone")
    fake.max_clone_bytes = len(audio)
    fake.clone_limit = 1
    status, _ = await clone(session, fake, audio)
    assert status == 200
    status, body = await clone(session, fake, audio)
    assert (status, body) == (402, {"success": False, "code": 402, "message": "You've reached the limit"})
    assert len(fake.clones) == 1


# Fault injection


async def test_fail_next_with_the_code_only_in_the_body(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.fail_next(500, endpoint="/short-tts/", http_status=200)
    status, body = await tts(session, fake, text="hello")
    assert status == 200
    assert body == {"success": False, "code": 500, "message": "Internal Server Error"}
    assert fake.prebuilt_chars == 1_000_000
    status, body = await tts(session, fake, text="hello")
    assert (status, body["success"]) == (200, True)


async def test_fail_next_counts_endpoints_bodies_and_headers(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.fail_next(429, n=2, endpoint="credit-balance", headers={"Retry-After": "3"})
    status, _ = await get_json(session, f"{fake.base_url}/voice-list/")
    assert status == 200
    for _ in range(2):
        async with session.get(f"{fake.base_url}/credit-balance/", headers=AUTH) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "3"
            assert (await response.json())["code"] == 429
    status, _ = await get_json(session, f"{fake.base_url}/credit-balance/")
    assert status == 200

    fake.fail_next(402, endpoint="/clone-voice/")
    status, body = await clone(session, fake, await tone_file(40))
    assert (status, body["message"]) == (402, "You've reached the limit")

    fake.fail_next(502, body="<html><body>Bad gateway</body></html>")
    async with session.get(f"{fake.base_url}/credit-balance/", headers=AUTH) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert "Bad gateway" in await response.text()
    fake.fail_next(509, body={"success": False, "code": 509, "message": "custom"})
    status, body = await tts(session, fake, text="hello")
    assert (status, body["message"]) == (509, "custom")


async def test_malformed_next(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.malformed_next(endpoint="/credit-balance/")
    async with session.get(f"{fake.base_url}/credit-balance/", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        with pytest.raises(ValueError):
            json.loads(await response.read())


async def test_reset_next_drops_the_connection(fake: FakeUnmixr) -> None:
    fake.reset_next(endpoint="/short-tts/")
    # A fresh connection, so aiohttp's silent retry of a reused keep-alive connection cannot hide the reset.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await tts(session, fake, text="hello")
        status, _ = await tts(session, fake, text="hello")
    assert status == 200
    assert [record.status for record in fake.requests] == [None, 200]
    assert fake.prebuilt_chars == 1_000_000 - 5


async def test_hang_next_is_released_by_close(session: aiohttp.ClientSession) -> None:
    server = FakeUnmixr()
    await server.start()
    server.hang_next(endpoint="/short-tts/")
    request = asyncio.create_task(tts(session, server, text="hello"))
    while not server.requests:
        await asyncio.sleep(0.01)
    done, _ = await asyncio.wait({request}, timeout=0.3)
    assert not done
    assert server.requests[0].json == {"text": "hello", "voice_id": BRIAN_ID}
    assert server.requests[0].status is None
    await asyncio.wait_for(server.close(), timeout=5)
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(request, timeout=5)
    assert server.prebuilt_chars == 1_000_000


async def test_latency_is_added(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.set_latency(0.3, endpoint="/credit-balance/")
    await get_json(session, f"{fake.base_url}/credit-balance/")
    record = fake.requests[-1]
    assert record.finished_at is not None
    assert record.finished_at - record.started_at >= 0.3
    fake.set_latency(0, endpoint="/credit-balance/")
    fake.tts_latency_per_char = 0.01
    await tts(session, fake, text="x" * 30)
    record = fake.requests[-1]
    assert record.finished_at is not None
    assert record.finished_at - record.started_at >= 0.3


async def test_shape_and_audio_url_overrides(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.shape_next("bytes")
    async with session.post(
        f"{fake.base_url}/short-tts/", json={"text": "hello", "voice_id": BRIAN_ID}, headers=AUTH
    ) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
    fake.shape_next("base64")
    _, body = await tts(session, fake, text="hello", response_type="url")
    assert "audio" in body
    assert "audio_url" not in body
    fake.audio_url_base_next("http://evil.example.com")
    _, body = await tts(session, fake, text="hello")
    assert body["audio_url"].startswith("http://evil.example.com/audio/")
    _, body = await tts(session, fake, text="hello")
    assert body["audio_url"].startswith(fake.origin + "/audio/")


async def test_requests_are_recorded(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    await get_json(session, f"{fake.base_url}/voice-list/", {"q": "bri"})
    await tts(session, fake, text="hello")
    listing, speech = fake.requests
    assert (listing.method, listing.path, listing.endpoint) == ("GET", "/api/v1/voice-list/", "/voice-list/")
    assert listing.query == {"q": "bri"}
    assert listing.status == 200
    assert listing.headers["Authorization"] == f"Bearer {KEY}"
    assert speech.endpoint == "/short-tts/"
    assert speech.json == {"text": "hello", "voice_id": BRIAN_ID}
    assert speech.form is None
    assert speech.finished_at is not None
    assert speech.finished_at >= speech.started_at


# Capacity mode


async def wait_in_flight(server: FakeUnmixr, count: int) -> None:
    """Wait until the stand-in is serving `count` /short-tts/ requests."""
    for _ in range(500):
        if server.tts_in_flight == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.tts_in_flight} /short-tts/ in flight, not {count}")


async def test_capacity_refuses_short_tts_above_it_with_429_and_retry_after(session: aiohttp.ClientSession) -> None:
    server = FakeUnmixr(tts_capacity=2, capacity_retry_after=3)
    await server.start()
    try:
        server.hang_next(2, endpoint="/short-tts/")
        held = [asyncio.create_task(tts(session, server, text=f"held {index}")) for index in range(2)]
        await wait_in_flight(server, 2)
        url = f"{server.base_url}/short-tts/"
        for index in range(3):
            async with session.post(url, json={"text": f"over {index}", "voice_id": BRIAN_ID}, headers=AUTH) as reply:
                assert reply.status == 429
                assert reply.headers["Retry-After"] == "3"
                body = await reply.json()
        assert body == {"success": False, "code": 429, "message": body["message"]}
        assert "retry" in body["message"].lower()
        # Refused before any work: nothing charged; other endpoints are not limited.
        assert server.prebuilt_chars == 1_000_000
        status, _ = await get_json(session, f"{server.base_url}/credit-balance/")
        assert status == 200
        assert (server.too_many_requests, server.peak_tts_concurrency) == (3, 2)
        assert [r.status for r in server.requests if r.endpoint == "/short-tts/"] == [None, None, 429, 429, 429]

        # Changed at run time: one more fits, then none is the limit.
        server.set_capacity(3, retry_after=0.5)
        status, _ = await tts(session, server, text="fits now")
        assert status == 200
        server.hang_next(1, endpoint="/short-tts/")
        third = asyncio.create_task(tts(session, server, text="held 2"))
        await wait_in_flight(server, 3)
        async with session.post(url, json={"text": "over", "voice_id": BRIAN_ID}, headers=AUTH) as reply:
            assert (reply.status, reply.headers["Retry-After"]) == (429, "0.5")
        server.set_capacity(None)
        status, _ = await tts(session, server, text="no limit")
        assert status == 200
        assert (server.too_many_requests, server.peak_tts_concurrency) == (4, 4)
        server.reset_load_counters()
        assert (server.too_many_requests, server.peak_tts_concurrency) == (0, 3)
    finally:
        await asyncio.wait_for(server.close(), timeout=5)
    results = await asyncio.gather(*held, third, return_exceptions=True)
    assert all(isinstance(result, aiohttp.ClientError) for result in results)
    assert server.tts_in_flight == 0


async def test_a_burst_is_never_served_above_capacity(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.set_capacity(3)
    # Long enough that the burst overlaps even on a busy machine.
    fake.set_latency(0.5, endpoint="/short-tts/")
    results = await asyncio.gather(*(tts(session, fake, text=f"burst {index}") for index in range(12)))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}
    assert statuses.count(429) == fake.too_many_requests > 0
    assert fake.peak_tts_concurrency <= 3
    assert fake.prebuilt_chars == 1_000_000 - sum(len(f"burst {i}") for i, s in enumerate(statuses) if s == 200)
    assert fake.tts_in_flight == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FakeUnmixr().set_capacity(0)


# Running by hand


async def test_command_line_serves_until_interrupted(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.unmixr",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        second = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        base_url = first.strip().rpartition("UNMIXR_BASE_URL=")[2]
        assert base_url.startswith("http://127.0.0.1:")
        assert second.strip() == "UNMIXR_API_KEY=cli-key"
        headers = {"Authorization": "Bearer cli-key"}
        async with session.get(f"{base_url}/credit-balance/", headers=headers) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# Variations of the reference's answers ----------------------------------------------------------------


async def test_a_gateway_504_charges_but_answers_in_the_gateways_shape(
    fake: FakeUnmixr, session: aiohttp.ClientSession
) -> None:
    before = fake.prebuilt_chars
    fake.gateway_error_next(504, endpoint="/short-tts/")
    status, body = await tts(session, fake, text="Behind a gateway.")
    assert (status, body) == (504, {"message": "Endpoint request timed out"})
    assert fake.prebuilt_chars == before - len("Behind a gateway."), "the API did the work the gateway gave up on"
    fake.gateway_error_next(502, endpoint="/short-tts/", html=True)
    status, page = await tts(session, fake, text="Never reached.")
    assert status == 502 and b"<h1>502 Bad Gateway</h1>" in page
    assert fake.prebuilt_chars == before - len("Behind a gateway.")
    with pytest.raises(ValueError, match="a gateway answers"):
        fake.gateway_error_next(500)


async def test_moved_redirects_every_api_path_on_the_same_origin(
    fake: FakeUnmixr, session: aiohttp.ClientSession
) -> None:
    fake.vary("moved")
    async with session.get(f"{fake.base_url}/voice-list/?page_size=2", headers=AUTH, allow_redirects=False) as moved:
        assert moved.status == 301
        assert moved.headers["Location"] == "/moved/api/v1/voice-list/?page_size=2"
    async with session.post(
        f"{fake.base_url}/short-tts/", json={"text": "x", "voice_id": BRIAN_ID}, headers=AUTH, allow_redirects=False
    ) as moved:
        assert moved.status == 308, "a POST keeps its method and body"
    status, page = await get_json(session, f"{fake.origin}/moved/api/v1/voice-list/", {"page_size": "2"})
    assert status == 200 and len(page["results"]) == 2
    async with session.get(f"{fake.origin}/audio/none.mp3") as audio:
        assert audio.status == 404, "files are not API paths: not moved"


async def test_odd_and_extra_fields_and_an_ignored_page(fake: FakeUnmixr, session: aiohttp.ClientSession) -> None:
    fake.vary("odd-fields", "extra-fields", "ignored-page")
    _, page = await get_json(session, f"{fake.base_url}/voice-list/", {"page_size": "100"})
    brian = next(voice for voice in page["results"] if isinstance(voice, dict) and voice.get("uuid") == BRIAN_ID)
    assert brian["emotions"] == [{"name": "neutral"}] and isinstance(brian["gender"], dict)
    assert next(iter(brian["supported_locales"].values())) is None
    assert brian["accent"]["region"] == "US" and page["links"] == {"next": None, "previous": None}
    assert page["current_page"] == "1" and "voice-removed" in page["results"]
    brian_voice = voice_named(fake, "Brian")
    fake.clones += [{**brian_voice, "uuid": f"clone-{index}", "category": "clones"} for index in range(2)]
    fake.max_page_size = 1
    _, first = await get_json(session, f"{fake.base_url}/cloned-voice-list/", {"page_size": "1"})
    _, second = await get_json(session, f"{fake.base_url}/cloned-voice-list/", {"page_size": "1", "page": "2"})
    assert first["results"][0]["uuid"] == second["results"][0]["uuid"] == "clone-0"
    with pytest.raises(ValueError, match="unknown variations"):
        fake.vary("sideways")
    fake.vary()
    assert fake.variations == set()
