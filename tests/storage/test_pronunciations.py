"""The pronunciation dictionary: case-insensitive words, replacing, removing, the 200-entry limit."""

import asyncio

import pytest

from bot.storage import (
    MAX_PRONUNCIATIONS,
    MAX_SPOKEN_LENGTH,
    MAX_WORD_LENGTH,
    Pronunciation,
    PronunciationLimitError,
    Storage,
    word_key,
)
from tests.storage.conftest import Database

GUILD = 10
OTHER_GUILD = 20
ADMIN = 30


async def test_add_list_and_survive_a_reopen(database: Database) -> None:
    storage = await Storage.open(database.location)
    assert await storage.add_pronunciation(GUILD, "nginx", "engine x", ADMIN) is None
    assert await storage.add_pronunciation(GUILD, "Beta", "bay-ta", ADMIN) is None
    assert await storage.add_pronunciation(GUILD, "apple", "ap-pel", ADMIN) is None
    await storage.add_pronunciation(OTHER_GUILD, "SQL", "sequel", ADMIN)
    expected = [
        Pronunciation("apple", "ap-pel"),
        Pronunciation("Beta", "bay-ta"),
        Pronunciation("nginx", "engine x"),
    ]
    # Ordered by word regardless of case.
    assert await storage.list_pronunciations(GUILD) == expected
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        assert await reopened.list_pronunciations(GUILD) == expected
        assert await reopened.list_pronunciations(OTHER_GUILD) == [Pronunciation("SQL", "sequel")]
        assert await reopened.list_pronunciations(12345) == []
    finally:
        await reopened.close()


async def test_the_same_word_in_another_case_replaces_the_entry(storage: Storage) -> None:
    await storage.add_pronunciation(GUILD, "GIF", "jif", ADMIN)
    replaced = await storage.add_pronunciation(GUILD, "gif", "gif with a hard g", ADMIN)
    assert replaced == Pronunciation("GIF", "jif")
    # The word is kept as last typed.
    assert await storage.list_pronunciations(GUILD) == [Pronunciation("gif", "gif with a hard g")]


async def test_words_are_matched_case_insensitively_beyond_ascii(storage: Storage) -> None:
    await storage.add_pronunciation(GUILD, "ÉCOLE", "ay-coal", ADMIN)
    assert word_key("École") == word_key("ÉCOLE") == "école"
    assert await storage.remove_pronunciation(GUILD, "école") == Pronunciation("ÉCOLE", "ay-coal")
    assert await storage.list_pronunciations(GUILD) == []


async def test_remove_is_case_insensitive_and_reports_a_missing_word(database: Database) -> None:
    storage = await Storage.open(database.location)
    await storage.add_pronunciation(GUILD, "Kubernetes", "koo-ber-net-eez", ADMIN)
    await storage.add_pronunciation(OTHER_GUILD, "Kubernetes", "k8s", ADMIN)
    assert await storage.remove_pronunciation(GUILD, "nothing") is None
    assert await storage.remove_pronunciation(GUILD, "KUBERNETES") == Pronunciation("Kubernetes", "koo-ber-net-eez")
    assert await storage.remove_pronunciation(GUILD, "kubernetes") is None
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        assert await reopened.list_pronunciations(GUILD) == []
        assert await reopened.list_pronunciations(OTHER_GUILD) == [Pronunciation("Kubernetes", "k8s")]
    finally:
        await reopened.close()


async def test_surrounding_blanks_are_trimmed(storage: Storage) -> None:
    await storage.add_pronunciation(GUILD, "  SQL ", " sequel  ", ADMIN)
    assert await storage.list_pronunciations(GUILD) == [Pronunciation("SQL", "sequel")]
    assert await storage.remove_pronunciation(GUILD, " sql") == Pronunciation("SQL", "sequel")


async def test_the_limit_refuses_a_new_entry_but_allows_replacing(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:
        for number in range(MAX_PRONUNCIATIONS):
            assert await storage.add_pronunciation(GUILD, f"word{number}", f"spoken {number}", ADMIN) is None
        assert len(await storage.list_pronunciations(GUILD)) == MAX_PRONUNCIATIONS == 200

        with pytest.raises(PronunciationLimitError) as caught:
            await storage.add_pronunciation(GUILD, "one-too-many", "nope", ADMIN)
        assert caught.value.limit == MAX_PRONUNCIATIONS
        entries = await storage.list_pronunciations(GUILD)
        assert len(entries) == MAX_PRONUNCIATIONS
        assert "one-too-many" not in {entry.word for entry in entries}

        # Replacing an existing word at the limit is fine.
        assert await storage.add_pronunciation(GUILD, "WORD7", "seven", ADMIN) == Pronunciation("word7", "spoken 7")
        # Another server has its own allowance.
        assert await storage.add_pronunciation(OTHER_GUILD, "one-too-many", "fine here", ADMIN) is None

        await storage.remove_pronunciation(GUILD, "word0")
        assert await storage.add_pronunciation(GUILD, "one-too-many", "now it fits", ADMIN) is None
    finally:
        await storage.close()

    reopened = await Storage.open(database.location)
    try:
        entries = {entry.word: entry.spoken for entry in await reopened.list_pronunciations(GUILD)}
        assert len(entries) == MAX_PRONUNCIATIONS
        assert entries["WORD7"] == "seven"
        assert entries["one-too-many"] == "now it fits"
        assert "word0" not in entries
    finally:
        await reopened.close()


async def test_concurrent_adds_never_exceed_the_limit(storage: Storage) -> None:
    for number in range(MAX_PRONUNCIATIONS - 3):
        await storage.add_pronunciation(GUILD, f"w{number}", "x", ADMIN)
    results = await asyncio.gather(
        *(storage.add_pronunciation(GUILD, f"new{number}", "x", ADMIN) for number in range(10)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, PronunciationLimitError) for result in results) == 7
    assert len(await storage.list_pronunciations(GUILD)) == MAX_PRONUNCIATIONS


@pytest.mark.parametrize(
    ("word", "spoken"),
    [
        ("", "x"),
        ("   ", "x"),
        ("w" * (MAX_WORD_LENGTH + 1), "x"),
        ("word", ""),
        ("word", "s" * (MAX_SPOKEN_LENGTH + 1)),
    ],
)
async def test_words_and_spoken_forms_out_of_bounds_are_refused(storage: Storage, word: str, spoken: str) -> None:
    with pytest.raises(ValueError, match="characters"):
        await storage.add_pronunciation(GUILD, word, spoken, ADMIN)
    assert await storage.list_pronunciations(GUILD) == []


async def test_the_longest_allowed_word_and_spoken_form_are_accepted(storage: Storage) -> None:
    word, spoken = "w" * MAX_WORD_LENGTH, "s" * MAX_SPOKEN_LENGTH
    await storage.add_pronunciation(GUILD, word, spoken, ADMIN)
    assert await storage.list_pronunciations(GUILD) == [Pronunciation(word, spoken)]


async def test_the_returned_list_is_a_copy(storage: Storage) -> None:
    await storage.add_pronunciation(GUILD, "a", "ay", ADMIN)
    listed = await storage.list_pronunciations(GUILD)
    listed.clear()
    assert await storage.list_pronunciations(GUILD) == [Pronunciation("a", "ay")]
