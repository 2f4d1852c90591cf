"""Choosing the pronunciation-dictionary entries that apply to a text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping


def matching_entries(text: str, entries: Mapping[str, str]) -> dict[str, str]:
    """Return the entries whose word occurs in `text` as a whole word, case-insensitively, in entry order."""
    return {word: spoken for word, spoken in entries.items() if occurs_as_word(word, text)}


def occurs_as_word(word: str, text: str) -> bool:
    """Tell whether `word` occurs in `text`, case-insensitively, with no word character next to it."""
    parts = word.split()
    if not parts:
        return False
    # Any run of whitespace in the text matches the spaces of a multi-word entry ("New  York").
    body = r"\s+".join(re.escape(part) for part in parts)
    # The lookahead finds overlapping candidates, so one rejected at a boundary cannot hide the next one.
    for match in re.finditer(f"(?=({body}))", text, re.IGNORECASE):
        start, end = match.span(1)
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        if not _is_word_character(before) and not _is_word_character(after):
            return True
    return False


def _is_word_character(character: str) -> bool:
    """Tell whether `character` belongs inside a word: a letter, digit, underscore or combining mark."""
    if not character:
        return False
    return character.isalnum() or character == "_" or unicodedata.category(character).startswith("M")
