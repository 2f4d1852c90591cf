"""Tests for the accepted rate, pitch and volume forms."""

from __future__ import annotations

import pytest

from bot.text.prosody import (
    PITCH_RANGE,
    PITCH_WORDS,
    RATE_RANGE,
    RATE_WORDS,
    VOLUME_RANGE,
    VOLUME_WORDS,
    ProsodyError,
    normalize_pitch,
    normalize_prosody,
    normalize_rate,
    normalize_volume,
)


def test_words_and_ranges_follow_the_reference() -> None:
    assert RATE_WORDS == ("default", "x-slow", "slow", "medium", "fast", "x-fast")
    assert PITCH_WORDS == ("default", "x-low", "low", "medium", "high", "x-high")
    assert VOLUME_WORDS == ("default", "silent", "x-soft", "soft", "medium", "loud", "x-loud")
    assert RATE_RANGE == (-100, 100)
    assert PITCH_RANGE == (-50, 50)
    assert VOLUME_RANGE == (-100, 100)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+20%", "+20%"),
        ("-10%", "-10%"),
        ("0%", "0%"),
        ("+0%", "0%"),
        ("-0%", "0%"),
        ("+5%", "+5%"),
        ("5%", "+5%"),
        ("005%", "+5%"),
        ("100%", "+100%"),
        ("-100%", "-100%"),
        ("  +15%  ", "+15%"),
        ("fast", "fast"),
        ("X-FAST", "x-fast"),
        ("Default", "default"),
        ("medium", "medium"),
    ],
)
def test_rate_accepts(value: str, expected: str) -> None:
    assert normalize_rate(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "+300%",
        "101%",
        "-101%",
        "fast!!",
        "",
        "%",
        "+%",
        "1000%",
        "20",
        "+20 %",
        "+ 20%",
        "++20%",
        "20.5%",
        "loud",
        "high",
        "x_fast",
        "١٠%",
        "fastest",
    ],
)
def test_rate_refuses(value: str) -> None:
    with pytest.raises(ProsodyError) as caught:
        normalize_rate(value)
    assert str(caught.value) == (
        "Rate must be a percentage from -100% to +100% or one of: default, x-slow, slow, medium, fast, x-fast."
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+50%", "+50%"), ("-50%", "-50%"), ("050%", "+50%"), ("x-high", "x-high"), ("LOW", "low"), ("0%", "0%")],
)
def test_pitch_accepts(value: str, expected: str) -> None:
    assert normalize_pitch(value) == expected


@pytest.mark.parametrize("value", ["-51%", "+51%", "100%", "fast", "x-loud", "high!"])
def test_pitch_refuses(value: str) -> None:
    with pytest.raises(ProsodyError, match=r"^Pitch must be a percentage from -50% to \+50% or one of: "):
        normalize_pitch(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("X-LOUD", "x-loud"), ("silent", "silent"), ("+100%", "+100%"), ("-100%", "-100%"), ("7%", "+7%")],
)
def test_volume_accepts(value: str, expected: str) -> None:
    assert normalize_volume(value) == expected


@pytest.mark.parametrize("value", ["+101%", "200", "200%", "quiet", "x-fast", "loud!"])
def test_volume_refuses(value: str) -> None:
    with pytest.raises(ProsodyError) as caught:
        normalize_volume(value)
    assert str(caught.value) == (
        "Volume must be a percentage from -100% to +100% "
        "or one of: default, silent, x-soft, soft, medium, loud, x-loud."
    )


def test_prosody_error_is_a_value_error() -> None:
    assert issubclass(ProsodyError, ValueError)


def test_normalize_prosody_dispatches_by_kind() -> None:
    assert normalize_prosody("rate", "SLOW") == "slow"
    assert normalize_prosody("pitch", "-5%") == "-5%"
    assert normalize_prosody("volume", "soft") == "soft"
    with pytest.raises(ProsodyError, match=r"^Pitch"):
        normalize_prosody("pitch", "+60%")
