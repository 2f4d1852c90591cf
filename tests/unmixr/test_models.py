"""The Unmixr models: tolerant parsing and the voice helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.unmixr.models import CloneResult, CreditBalance, TTSRequest, Voice, VoicePage

BRIAN = {
    "uuid": "1283979c-87a5-44d5-a8de-4082ba20cc5b",
    "character": "Brian",
    "gender": "Male",
    "language": "en-US",
    "quality": "Premium",
    "sample_voice_url": "https://resource.unmixr.com/sample_audio/19282e7a.mp3",
    "emotions": [],
    "capabilities": ["speech", "speech:volume", "speech:rate", "speech:pitch", "custom_pause", "intensity"],
    "roles": [],
    "use_cases": ["Podcast", "Chat"],
    "other_languages": ["fr-FR", "de-DE", "en-US"],
    "supported_locales": {
        "en-GB": "https://unmixr.s3.amazonaws.com/sample_audio/6a4b940c.mp3",
        "en-US": "https://unmixr.s3.amazonaws.com/sample_audio/19282e7a.mp3",
    },
    "is_available": True,
    "date_created": "2024-04-22T14:32:56.201895Z",
    "is_multilingual": True,
    "wpm": 188,
    "is_new": True,
    "description": "A youthful, cheerful, and versatile voice.",
    "age": "YoungAdult",
    "personality": ["Sincere", "Calm"],
    "avatar_url": "https://resource.unmixr.com/avatar/ec18fc06.png",
    "some_future_field": {"ignored": True},
}


def test_full_voice_parses_every_documented_field() -> None:
    voice = Voice.model_validate(BRIAN)
    assert voice.uuid == BRIAN["uuid"]
    assert voice.character == "Brian"
    assert voice.gender == "Male"
    assert voice.quality == "Premium"
    assert voice.capabilities[-1] == "intensity"
    assert voice.use_cases == ["Podcast", "Chat"]
    assert voice.supported_locales["en-GB"].endswith("6a4b940c.mp3")
    assert voice.date_created == datetime(2024, 4, 22, 14, 32, 56, 201895, tzinfo=UTC)
    assert voice.wpm == 188
    assert voice.is_multilingual and voice.is_new and voice.is_available
    assert voice.age == "YoungAdult"
    assert voice.personality == ["Sincere", "Calm"]
    assert voice.avatar_url is not None
    assert not hasattr(voice, "some_future_field")


def test_voice_filtered_with_fields_parses_with_defaults() -> None:
    voice = Voice.model_validate({"uuid": "x", "character": "Only Name"})
    assert voice.capabilities == []
    assert voice.supported_locales == {}
    assert voice.is_available is True
    assert voice.languages == []
    # Even a result without the uuid parses, as `fields=character` would give.
    assert Voice.model_validate({"character": "No uuid"}).uuid == ""


def test_cloned_voice_with_nulls_and_blanks_parses() -> None:
    voice = Voice.model_validate(
        {
            "uuid": "7dfd1b64",
            "character": "Test-Cloned",
            "gender": "",
            "language": "en",
            "quality": "",
            "capabilities": None,
            "supported_locales": None,
            "wpm": None,
            "age": None,
            "personality": [],
            "avatar_url": None,
            "date_created": "not a date",
            "is_new": None,
        }
    )
    assert voice.capabilities == []
    assert voice.supported_locales == {}
    assert voice.wpm is None
    assert voice.date_created is None
    assert voice.is_new is False


def test_languages_is_the_ordered_union_without_duplicates() -> None:
    voice = Voice.model_validate(BRIAN)
    assert voice.languages == ["en-US", "fr-FR", "de-DE", "en-GB"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en-US", True),
        ("en-us", True),
        ("en_US", True),
        ("EN", True),
        ("fr", True),
        ("de-DE", True),
        ("en-GB", True),
        ("en-AU", False),
        ("it", False),
        ("", False),
    ],
)
def test_speaks_matches_primary_subtags(code: str, expected: bool) -> None:
    assert Voice.model_validate(BRIAN).speaks(code) is expected


def test_bare_language_of_a_voice_matches_any_region() -> None:
    cloned = Voice.model_validate({"language": "en", "other_languages": ["fr"]})
    assert cloned.speaks("en-US")
    assert cloned.speaks("fr-CA")
    assert not cloned.speaks("de-DE")


def test_has_capability_is_case_insensitive() -> None:
    voice = Voice.model_validate(BRIAN)
    assert voice.has_capability("intensity")
    assert voice.has_capability("Speech:Rate")
    assert not voice.has_capability("abbr")


def test_voice_page_parses_paging_fields() -> None:
    page = VoicePage.model_validate(
        {
            "count": 3,
            "results": [BRIAN, {"uuid": "b"}],
            "current_page": 1,
            "page_start": 1,
            "page_end": 2,
            "next_page": 2,
            "prev_page": None,
            "total_page": 2,
        }
    )
    assert page.count == 3
    assert [voice.uuid for voice in page.results] == [BRIAN["uuid"], "b"]
    assert page.next_page == 2
    assert page.prev_page is None


def test_tts_request_serialises_without_none_fields() -> None:
    request = TTSRequest(text="Hello", voice_id="v", speaking_rate="+10%", intensity=0)
    assert request.payload() == {
        "text": "Hello",
        "voice_id": "v",
        "speaking_rate": "+10%",
        "intensity": 0,
        "response_type": "url",
    }


def test_tts_request_rejects_unknown_output_type() -> None:
    with pytest.raises(ValidationError):
        TTSRequest(text="Hello", voice_id="v", output_type="ogg")  # type: ignore[arg-type]


def test_clone_result_needs_a_voice_id() -> None:
    assert CloneResult.model_validate({"status": "SUCCESS", "voice_id": "abc", "code": 200}).voice_id == "abc"
    with pytest.raises(ValidationError):
        CloneResult.model_validate({"status": "SUCCESS", "code": 200})


def test_credit_balance_defaults_to_zero() -> None:
    assert CreditBalance.model_validate({"prebuilt_chars": 5}) == CreditBalance(prebuilt_chars=5, cloned_chars=0)
