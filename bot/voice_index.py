"""A name index of voices: ranked look-ups in well under a millisecond, typos included.

Ranking (PRODUCT.md, Decisions: the catalogue): exact name, prefix, word prefix, substring, then names with a
word within one Damerau-Levenshtein edit of a typed word of 4 or more letters; all case-folded. Within a tier,
indexes given first (this server's clones) come first, then names in alphabetical order.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.unmixr import Voice

EXACT, PREFIX, WORD_PREFIX, SUBSTRING, TYPO = range(5)
TIERS = (EXACT, PREFIX, WORD_PREFIX, SUBSTRING, TYPO)
# A typed word shorter than this is too short to guess at (PRODUCT.md: "a typed word of 4 or more letters").
MIN_TYPO_LETTERS = 4
# n-grams of up to this many characters index substrings; shorter queries use the shorter grams.
GRAM = 3
# Marks the start of each word, so "a word starts with the query" is one substring test.
_MARK = "\x00"
# Sorts after every character a name can hold: the end of a prefix range.
_LAST = "\U0010ffff"
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """The form names are compared in: case-folded, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


def words(folded: str) -> list[str]:
    """The words of a folded name: runs of letters and digits."""
    return _WORD.findall(folded)


def mark_words(folded: str) -> str:
    """`folded` with a mark before each word, so a word prefix is found with one `in`."""
    return _WORD.sub(lambda match: _MARK + match.group(), folded)


def grams(folded: str, size: int = GRAM) -> set[str]:
    """The distinct substrings of `size` characters (none when the text is shorter)."""
    return {folded[start : start + size] for start in range(len(folded) - size + 1)}


def deletions(word: str) -> set[str]:
    """The word and every string one deletion away from it."""
    return {word, *(word[:index] + word[index + 1 :] for index in range(len(word)))}


def within_one_edit(first: str, second: str) -> bool:
    """Whether two words are at most one insertion, deletion, substitution or adjacent transposition apart."""
    if first == second:
        return True
    length, other = len(first), len(second)
    if abs(length - other) > 1:
        return False
    start = 0
    shortest = min(length, other)
    while start < shortest and first[start] == second[start]:
        start += 1
    if length == other:
        if first[start + 1 :] == second[start + 1 :]:
            return True
        return (
            start + 1 < length
            and first[start] == second[start + 1]
            and first[start + 1] == second[start]
            and first[start + 2 :] == second[start + 2 :]
        )
    if length > other:
        return first[start + 1 :] == second[start:]
    return first[start:] == second[start + 1 :]


def sort_key(voice: Voice) -> tuple[str, str, str]:
    """Alphabetical order of voices: folded name, then the name as written, then uuid for a stable order."""
    return (fold(voice.character), voice.character, voice.uuid)


@dataclass(frozen=True, slots=True)
class Query:
    """What a member typed, prepared once for every index it is run against."""

    text: str
    # The query with its word starts marked, when it starts with a letter or digit (else no word prefix).
    marked: str | None
    grams: tuple[str, ...]
    # Each typed word of 4 or more letters with its one-deletion variants.
    typo_words: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def parse(cls, typed: str) -> Query | None:
        """The prepared query, or None when nothing but whitespace was typed."""
        text = fold(typed)
        if not text:
            return None
        marked = mark_words(text) if text[0].isalnum() else None
        typo_words = tuple(
            (word, frozenset(deletions(word))) for word in dict.fromkeys(words(text)) if len(word) >= MIN_TYPO_LETTERS
        )
        return cls(text, marked, tuple(grams(text, min(GRAM, len(text)))), typo_words)


class VoiceIndex:
    """Voices by uuid and by name, built once; every look-up reads it without changing it."""

    def __init__(self, voices: Iterable[Voice]) -> None:
        by_uuid: dict[str, Voice] = {}
        for voice in voices:
            if voice.uuid:
                by_uuid.setdefault(voice.uuid, voice)
        self._by_uuid = by_uuid
        # Insertion order: what an empty query offers.
        self._ordered: tuple[Voice, ...] = tuple(by_uuid.values())
        # Position in alphabetical order is a voice's id, so every id list below is already alphabetical.
        named = sorted((voice for voice in self._ordered if voice.character.strip()), key=sort_key)
        self._voices: tuple[Voice, ...] = tuple(named)
        self._folded: tuple[str, ...] = tuple(fold(voice.character) for voice in named)
        self._marked: tuple[str, ...] = tuple(mark_words(name) for name in self._folded)
        gram_ids: dict[str, list[int]] = defaultdict(list)
        word_ids: dict[str, list[int]] = defaultdict(list)
        variants: dict[str, list[str]] = defaultdict(list)
        for voice_id, name in enumerate(self._folded):
            for size in range(1, GRAM + 1):
                for gram in grams(name, size):
                    gram_ids[gram].append(voice_id)
            for word in dict.fromkeys(words(name)):
                ids = word_ids[word]
                # A typed word has 4 letters or more, so a word within one edit has at least 3.
                if not ids and len(word) >= MIN_TYPO_LETTERS - 1:
                    for variant in deletions(word):
                        variants[variant].append(word)
                ids.append(voice_id)
        # Tuples of numbers or strings drop out of the garbage collector's rounds: the index costs no GC pauses.
        self._grams: dict[str, tuple[int, ...]] = {gram: tuple(ids) for gram, ids in gram_ids.items()}
        self._word_ids: dict[str, tuple[int, ...]] = {word: tuple(ids) for word, ids in word_ids.items()}
        self._variants: dict[str, tuple[str, ...]] = {key: tuple(found) for key, found in variants.items()}

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Voice]:
        return iter(self._ordered)

    def get(self, uuid: str) -> Voice | None:
        """The voice with this uuid, if indexed."""
        return self._by_uuid.get(uuid)

    def voice(self, voice_id: int) -> Voice:
        """The voice at this position in alphabetical order."""
        return self._voices[voice_id]

    def search(self, query: Query, need: int, last_tier: int = TYPO) -> list[tuple[int, int]]:
        """(tier, id) of the best `need` matches, tier by tier, each tier in alphabetical order."""
        found: list[tuple[int, int]] = []
        if need <= 0:
            return found
        text = query.text
        folded = self._folded
        # Exact and prefix matches are one contiguous run of the sorted names, the exact ones first.
        low = bisect_left(folded, text)
        high = bisect_left(folded, text + _LAST, low)
        position = low
        while position < high and folded[position] == text and len(found) < need:
            found.append((EXACT, position))
            position += 1
        if len(found) >= need or last_tier == EXACT:
            return found
        found.extend((PREFIX, voice_id) for voice_id in range(position, min(high, position + need - len(found))))
        if len(found) >= need or last_tier == PREFIX:
            return found
        left = need - len(found)
        word_prefix, substring = self._substring_matches(query, low, high, left)
        found.extend((WORD_PREFIX, voice_id) for voice_id in word_prefix[:left])
        if last_tier >= SUBSTRING:
            found.extend((SUBSTRING, voice_id) for voice_id in substring[: need - len(found)])
        if len(found) >= need or last_tier < TYPO or not query.typo_words:
            return found[:need]
        seen = {voice_id for _, voice_id in found}
        found.extend((TYPO, voice_id) for voice_id in self._typo_matches(query, seen, need - len(found)))
        return found

    def _substring_matches(self, query: Query, low: int, high: int, left: int) -> tuple[list[int], list[int]]:
        """Word-prefix and substring matches outside the prefix run [low, high), each alphabetical."""
        postings = [self._grams.get(gram) for gram in query.grams]
        if not postings or any(posting is None for posting in postings):
            return [], []
        # Every match holds every gram of the query: the rarest gram's names are the only candidates.
        candidates = min((posting for posting in postings if posting is not None), key=len)
        text, marked = query.text, query.marked
        folded, marked_names = self._folded, self._marked
        word_prefix: list[int] = []
        substring: list[int] = []
        for voice_id in candidates:
            if low <= voice_id < high or text not in folded[voice_id]:
                continue
            if marked is not None and marked in marked_names[voice_id]:
                word_prefix.append(voice_id)
                if len(word_prefix) >= left:
                    break  # the word-prefix tier alone fills what is left
            elif len(substring) < left:
                substring.append(voice_id)
        return word_prefix, substring

    def _typo_matches(self, query: Query, seen: set[int], left: int) -> list[int]:
        """Names with a word within one edit of a typed word of 4 or more letters, alphabetical."""
        close: set[str] = set()
        for typed, variants in query.typo_words:
            for variant in variants:
                for word in self._variants.get(variant, ()):
                    if word not in close and within_one_edit(typed, word):
                        close.add(word)
        found: list[int] = []
        previous = -1
        for voice_id in heapq.merge(*(self._word_ids[word] for word in close)):
            if voice_id == previous or voice_id in seen:
                continue
            previous = voice_id
            found.append(voice_id)
            if len(found) >= left:
                break
        return found

    def similar(self, query: Query, count: int, minimum: float = 0.4) -> list[tuple[float, int]]:
        """(score, id) of the names sharing the most 3-grams with the query (Dice coefficient), best first."""
        wanted = grams(query.text)
        shared: Counter[int] = Counter()
        for gram in wanted:
            shared.update(self._grams.get(gram, ()))
        scored = []
        for voice_id, common in shared.items():
            score = 2 * common / max(1, len(wanted) + len(grams(self._folded[voice_id])))
            if score >= minimum:
                scored.append((score, voice_id))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return scored[:count]


EMPTY = VoiceIndex(())


def rank(typed: str, indexes: Sequence[VoiceIndex], limit: int, last_tier: int = TYPO) -> list[Voice]:
    """The best `limit` voices of several indexes for what was typed; earlier indexes win ties within a tier."""
    query = Query.parse(typed)
    if query is None or limit <= 0:
        return []
    # Each index is asked for enough that voices it shares with an earlier one cannot leave the result short.
    extra = 0
    results: list[list[tuple[int, int]]] = []
    for index in indexes:
        results.append(index.search(query, limit + extra, last_tier))
        extra += len(index)
    chosen: list[Voice] = []
    taken: set[str] = set()
    for tier in TIERS:
        for index, found in zip(indexes, results, strict=True):
            for match_tier, voice_id in found:
                if match_tier != tier:
                    continue
                voice = index.voice(voice_id)
                if voice.uuid in taken:
                    continue
                taken.add(voice.uuid)
                chosen.append(voice)
                if len(chosen) >= limit:
                    return chosen
    return chosen


def similar_names(typed: str, indexes: Sequence[VoiceIndex], count: int) -> list[str]:
    """Up to `count` distinct names that look like what was typed: ranked matches first, then shared 3-grams."""
    names = list(dict.fromkeys(voice.character for voice in rank(typed, indexes, count)))
    query = Query.parse(typed)
    if len(names) >= count or query is None:
        return names[:count]
    scored = [
        (score, index.voice(voice_id).character) for index in indexes for score, voice_id in index.similar(query, count)
    ]
    for _score, name in sorted(scored, key=lambda item: (-item[0], fold(item[1]))):
        if name not in names:
            names.append(name)
            if len(names) >= count:
                break
    return names
