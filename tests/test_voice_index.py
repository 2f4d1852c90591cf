"""The voice name index: PRODUCT.md's ranking, tier by tier, and agreement with a slow reference."""

from __future__ import annotations

import re
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.unmixr import Voice
from bot.voice_index import (
    EXACT,
    PREFIX,
    SUBSTRING,
    TYPO,
    WORD_PREFIX,
    VoiceIndex,
    fold,
    rank,
    similar_names,
    sort_key,
    within_one_edit,
)

_ids = count()


def voices(*names: str) -> list[Voice]:
    """Voices with these names and fresh uuids."""
    return [Voice(uuid=f"uuid-{next(_ids):06d}", character=name) for name in names]


def names_of(found: list[Voice]) -> list[str]:
    return [voice.character for voice in found]


def ranked(typed: str, catalogue: list[Voice], clones: list[Voice] | None = None, limit: int = 25) -> list[str]:
    indexes = [VoiceIndex(clones or []), VoiceIndex(catalogue)]
    return names_of(rank(typed, indexes, limit))


# ----------------------------------------------------------------------------- a slow reference

_WORD = re.compile(r"[^\W_]+")


def edit_distance(first: str, second: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), the textbook dynamic programme."""
    rows = len(first) + 1
    columns = len(second) + 1
    table = [[0] * columns for _ in range(rows)]
    for row in range(rows):
        table[row][0] = row
    for column in range(columns):
        table[0][column] = column
    for row in range(1, rows):
        for column in range(1, columns):
            cost = 0 if first[row - 1] == second[column - 1] else 1
            table[row][column] = min(
                table[row - 1][column] + 1, table[row][column - 1] + 1, table[row - 1][column - 1] + cost
            )
            if row > 1 and column > 1 and first[row - 1] == second[column - 2] and first[row - 2] == second[column - 1]:
                table[row][column] = min(table[row][column], table[row - 2][column - 2] + 1)
    return table[-1][-1]


def reference_tier(name: str, typed: str) -> int | None:
    """The tier of one name for what was typed, straight from PRODUCT.md's words."""
    folded, wanted = fold(name), fold(typed)
    if not wanted or not folded:
        return None
    if folded == wanted:
        return EXACT
    if folded.startswith(wanted):
        return PREFIX
    if wanted[0].isalnum() and any(folded.startswith(wanted, word.start()) for word in _WORD.finditer(folded)):
        return WORD_PREFIX
    if wanted in folded:
        return SUBSTRING
    typed_words = [word for word in _WORD.findall(wanted) if len(word) >= 4]
    if any(edit_distance(word, own) <= 1 for word in typed_words for own in _WORD.findall(folded)):
        return TYPO
    return None


def reference_rank(typed: str, groups: list[list[Voice]], limit: int, last_tier: int = TYPO) -> list[Voice]:
    """Every voice scored one by one: tier, then earlier group (clones), then alphabetical."""
    scored = []
    for group, listed in enumerate(groups):
        for voice in listed:
            tier = reference_tier(voice.character, typed)
            if tier is not None and tier <= last_tier:
                scored.append((tier, group, sort_key(voice), voice))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored[:limit]]


# ----------------------------------------------------------------------------- each tier


def test_tiers_in_order_each_alphabetical() -> None:
    catalogue = voices("Benjen", "Jenny Neural", "Ava Jenkins", "Jenny", "Jennifer", "Zed Jenkins", "Alice")
    # exact, prefix (alphabetical), word prefix (alphabetical), substring
    assert ranked("jenny", catalogue) == ["Jenny", "Jenny Neural"]
    assert ranked("jen", catalogue) == ["Jennifer", "Jenny", "Jenny Neural", "Ava Jenkins", "Zed Jenkins", "Benjen"]
    assert ranked("JENKINS", catalogue) == ["Ava Jenkins", "Zed Jenkins"]
    assert ranked("enj", catalogue) == ["Benjen"]


def test_word_prefix_spans_words_and_punctuation() -> None:
    catalogue = voices("Steffan (Express)", "Ava Multilingual", "Java Multi")
    assert ranked("express", catalogue) == ["Steffan (Express)"]
    assert ranked("(exp", catalogue) == ["Steffan (Express)"]  # a substring: punctuation starts no word
    assert ranked("ava mul", catalogue) == ["Ava Multilingual", "Java Multi"]  # prefix, then substring
    assert ranked("va mul", catalogue) == ["Ava Multilingual", "Java Multi"]  # both substrings: alphabetical


def test_typos_need_four_letters_and_at_most_one_edit() -> None:
    catalogue = voices("Jenny", "Brian", "Bran", "Aria")
    assert ranked("jeny", catalogue) == ["Jenny"]  # a deletion
    assert ranked("jennny", catalogue) == ["Jenny"]  # an insertion
    assert ranked("jemny", catalogue) == ["Jenny"]  # a substitution
    assert ranked("jneny", catalogue) == ["Jenny"]  # a transposition
    assert ranked("brain", catalogue) == ["Bran", "Brian"]  # a deletion from one, a transposition of the other
    assert ranked("jnyne", catalogue) == []  # two edits
    assert ranked("bram", catalogue) == ["Bran"]  # 4 letters: one edit from bran, two from brian
    assert ranked("brn", catalogue) == []  # 3 letters: too short to guess at
    assert ranked("ari", catalogue) == ["Aria"]  # a prefix needs no typo
    # Any typed word of 4 or more letters counts.
    assert ranked("hello jeny", catalogue) == ["Jenny"]


def test_typo_tier_comes_last() -> None:
    catalogue = voices("Jeny Long", "Jenny", "Ajeny")
    # "jeny" is a prefix of one name, a substring of another, and one edit from a word of the third.
    assert ranked("jeny", catalogue) == ["Jeny Long", "Ajeny", "Jenny"]


def test_this_servers_clones_come_first_within_a_tier() -> None:
    catalogue = voices("Brian", "Briana", "Abrial")
    clones = voices("Brian", "Zbrian", "Bright")
    assert ranked("bri", catalogue, clones) == ["Brian", "Bright", "Brian", "Briana", "Zbrian", "Abrial"]
    found = rank("brian", [VoiceIndex(clones), VoiceIndex(catalogue)], 2)
    assert [voice.uuid for voice in found] == [clones[0].uuid, catalogue[0].uuid]
    # An exact catalogue name still beats a clone that only has the name as a prefix.
    assert ranked("bright", voices("Bright"), voices("Brighton")) == ["Bright", "Brighton"]


def test_same_names_are_all_kept_in_a_stable_order() -> None:
    catalogue = voices("Jenny", "jenny", "JENNY")
    assert sorted(ranked("jenny", catalogue)) == ["JENNY", "Jenny", "jenny"]
    assert ranked("jenny", catalogue) == ranked("jenny", list(reversed(catalogue)))


def test_at_most_the_limit_and_the_first_ones_alphabetically() -> None:
    catalogue = voices(*(f"Voice {number:02d}" for number in range(40, 0, -1)))
    found = ranked("voice", catalogue)
    assert found == [f"Voice {number:02d}" for number in range(1, 26)]
    assert ranked("voice", catalogue, limit=3) == ["Voice 01", "Voice 02", "Voice 03"]
    assert ranked("", catalogue) == [] and ranked("   ", catalogue) == []


def test_unicode_case_folding() -> None:
    catalogue = voices("Straße", "ΣΊΣΥΦΟΣ", "Émile")
    assert ranked("STRASSE", catalogue) == ["Straße"]
    assert ranked("σίσυφος", catalogue) == ["ΣΊΣΥΦΟΣ"]  # final sigma folds like any sigma
    assert ranked("émi", catalogue) == ["Émile"]
    assert ranked("émilr", catalogue) == ["Émile"]  # typo tolerance on folded text


def test_a_uuid_voice_without_a_name_is_kept_but_never_matched() -> None:
    nameless = Voice(uuid="bare", character="")
    index = VoiceIndex([nameless, *voices("Jenny")])
    assert index.get("bare") is nameless
    assert len(index) == 2
    assert names_of(rank("j", [index], 25)) == ["Jenny"]


def test_close_names_from_typos_then_shared_letters() -> None:
    catalogue = VoiceIndex(voices("Jenny", "Jennifer", "Brian", "Amelie"))
    assert similar_names("Jeny", [catalogue], 3)[0] == "Jenny"
    assert "Amelie" in similar_names("Ameli Voice", [catalogue], 3)
    assert similar_names("Nobody Atall", [catalogue], 3) == []


def test_within_one_edit_matches_the_textbook_distance() -> None:
    pairs = [("abcd", "abdc"), ("abcd", "acbd"), ("abcd", "abc"), ("abc", "xabc"), ("abcd", "bacd"), ("ab", "ba")]
    pairs += [("abcd", "badc"), ("abcd", "abcdef"), ("abcd", "dcba"), ("", "a"), ("abc", "abc")]
    for first, second in pairs:
        assert within_one_edit(first, second) == (edit_distance(first, second) <= 1), (first, second)


# ----------------------------------------------------------------------------- against the reference

# Few words, so names share words, prefixes and near misses; separators make word boundaries.
_WORDS = ["jenny", "jen", "jeny", "brian", "bran", "ava", "Multi", "Straße", "strasse", "ΣΊΣΥΦΟΣ", "émile", "x1"]
_SEPARATORS = ["", " ", "-", " (", ") ", "_"]
_names = st.lists(st.tuples(st.sampled_from(_SEPARATORS), st.sampled_from(_WORDS)), min_size=1, max_size=3).map(
    lambda parts: "".join(separator + word for separator, word in parts)
)


def _mutate(text: str, data: st.DataObject) -> str:
    if not text:
        return text
    position = data.draw(st.integers(0, len(text) - 1))
    kind = data.draw(st.sampled_from(["keep", "delete", "insert", "substitute", "transpose", "upper"]))
    letter = data.draw(st.sampled_from("abejnßσ "))
    if kind == "delete":
        return text[:position] + text[position + 1 :]
    if kind == "insert":
        return text[:position] + letter + text[position:]
    if kind == "substitute":
        return text[:position] + letter + text[position + 1 :]
    if kind == "transpose" and position + 1 < len(text):
        return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if kind == "upper":
        return text.upper()
    return text


@settings(max_examples=300, deadline=None)
@given(
    catalogue_names=st.lists(_names, min_size=0, max_size=30),
    clone_names=st.lists(_names, max_size=4),
    limit=st.integers(1, 30),
    data=st.data(),
)
def test_the_index_agrees_with_the_reference(
    catalogue_names: list[str], clone_names: list[str], limit: int, data: st.DataObject
) -> None:
    catalogue, clones = voices(*catalogue_names), voices(*clone_names)
    pool = catalogue_names + clone_names
    if pool and data.draw(st.booleans()):
        name = data.draw(st.sampled_from(pool))
        start = data.draw(st.integers(0, len(name)))
        typed = _mutate(_mutate(name[start : data.draw(st.integers(start, len(name)))], data), data)
    else:
        typed = data.draw(_names)
    indexes = [VoiceIndex(clones), VoiceIndex(catalogue)]
    for last_tier in (SUBSTRING, TYPO):
        expected = reference_rank(typed, [clones, catalogue], limit, last_tier)
        assert rank(typed, indexes, limit, last_tier) == expected, (typed, last_tier)
