"""Tests for choosing the pronunciation entries that apply to a text."""

from __future__ import annotations

import pytest

from bot.text.pronunciation import matching_entries, occurs_as_word


@pytest.mark.parametrize(
    ("word", "text", "occurs"),
    [
        ("SME", "Help for SME owners", True),
        ("SME", "Help for SMEs", False),
        ("SME", "ASME rules", False),
        ("SME", "sme", True),
        ("sme", "An SME.", True),
        ("SME", "the SME's plan", True),
        ("SME", "SME_x", False),
        ("C++", "I write C++ daily", True),
        ("C++", "I write C++, daily", True),
        ("C++", "c++", True),
        ("C++", "I write C daily", False),
        ("C++", "ObjC++ is odd", False),
        ("U.S.", "the U.S. economy", True),
        ("U.S.", "in the U.S.", True),
        ("U.S.", "the US economy", False),
        (".NET", "I use .NET here", True),
        (".NET", "I use ASP.NET here", False),
        ("New York", "to new   york we go", True),
        ("New York", "New Yorker", False),
        ("Über", "über alles", True),
        ("café", "cafés", False),
        ("नम", "नमस्ते", False),
        ("a+b", "x a+b y", True),
        ("aa", "aaa aa", True),
        ("", "anything", False),
        ("   ", "anything", False),
        ("word", "", False),
    ],
)
def test_occurs_as_word(word: str, text: str, occurs: bool) -> None:
    assert occurs_as_word(word, text) is occurs


def test_matching_entries_keeps_only_matching_words_with_their_original_keys() -> None:
    entries = {"SME": "Small and Medium Enterprise", "GIF": "jiff", "C++": "C plus plus", "Nginx": "engine x"}
    text = "our sme ships c++ code; gifs are fun"
    assert matching_entries(text, entries) == {"SME": "Small and Medium Enterprise", "C++": "C plus plus"}


def test_matching_entries_of_no_entries_is_empty() -> None:
    assert matching_entries("some text", {}) == {}


def test_regex_characters_in_words_are_literal() -> None:
    entries = {"a.c": "dot", "(x)": "parens", "[y]": "brackets"}
    assert matching_entries("abc (x) [y]", entries) == {"(x)": "parens", "[y]": "brackets"}
