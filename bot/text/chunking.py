"""Splitting long text into request-sized chunks at the most natural boundaries available."""

from __future__ import annotations

import re
from typing import Final

MAX_REQUEST_CHARS: Final = 2000
"""The most characters (code points) Unmixr accepts in one `/short-tts/` request."""

# Closing quotes and brackets that may follow a sentence terminator ('He said "hi." Then ...').
_CLOSERS: Final = "\"'”’)\\]»」』）"

# Each level lists where a cut may go, from the most natural to the least; a cut lands at a match's end.
# Western terminators count only when followed by whitespace, so "3.14" and "e.g.x" stay whole; the
# full-width CJK marks count anywhere because CJK text puts no spaces between sentences or words.
_SENTENCE_CUTS: Final = re.compile(
    rf"[.!?…]+[{_CLOSERS}]*(?=\s|$)"
    rf"|[。！？]+[{_CLOSERS}]*"
    r"|\n[^\S\n]*\n"
)
_CLAUSE_CUTS: Final = re.compile(r"[,;:—–]+(?=\s|$)|[，、；：]+|\n")
_WORD_CUTS: Final = re.compile(r"\s+")
_LEVELS: Final = (_SENTENCE_CUTS, _CLAUSE_CUTS, _WORD_CUTS)


def split_text(text: str, limit: int = MAX_REQUEST_CHARS) -> list[str]:
    """Split `text` into as few stripped chunks of at most `limit` code points as its boundaries allow."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    units: list[tuple[int, int]] = []
    _collect_units(text, 0, len(text), 0, limit, units)
    chunks: list[str] = []
    if not units:
        return chunks
    # Greedy packing is optimal here: units keep their order and any gap between two units may be a cut.
    start, end = units[0]
    for unit_start, unit_end in units[1:]:
        if unit_end - start <= limit:
            end = unit_end
        else:
            chunks.append(text[start:end])
            start, end = unit_start, unit_end
    chunks.append(text[start:end])
    return chunks


def _collect_units(text: str, start: int, end: int, level: int, limit: int, out: list[tuple[int, int]]) -> None:
    """Append to `out` the stripped spans of `text[start:end]` that fit `limit`, cut at `level` or finer."""
    if level == len(_LEVELS):
        # A single word longer than the limit: no natural boundary is left, so cut at code points.
        out.extend((position, min(position + limit, end)) for position in range(start, end, limit))
        return
    cuts = [match.end() for match in _LEVELS[level].finditer(text, start, end)]
    piece_start = start
    for piece_end in [*cuts, end]:
        content_start, content_end = _strip_span(text, piece_start, piece_end)
        piece_start = piece_end
        if content_start == content_end:
            continue
        if content_end - content_start <= limit:
            out.append((content_start, content_end))
        else:
            _collect_units(text, content_start, content_end, level + 1, limit, out)


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Return the span `text[start:end]` without its leading and trailing whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
