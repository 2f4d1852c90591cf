"""Real English sentences of an exact length, for long-text tests and benchmarks."""

from __future__ import annotations

SENTENCES = (
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk.",
    "Did he ever wonder why the ships kept coming, year after year?",
    "Nobody in the village could remember a night when the lamp had failed.",
    "Storms rolled in from the west, grey and heavy, and the waves broke over the rocks!",
    "He kept a notebook, full of weather, tides, and the names of passing boats.",
    "Some pages held drawings of gulls; others held recipes for fish soup.",
    "When the children visited, he told them stories about sea serpents and sunken gold.",
    "Were any of those stories true?",
    "Perhaps a few were, but he never said which ones.",
    "In the spring, the keeper painted the door a brighter shade of blue.",
    "By summer the paint had faded again, bleached by salt and sun.",
    "Still, the light turned, patient and steady, over the dark water.",
)


def prose(length: int, salt: int = 0) -> str:
    """Real sentences, exactly `length` characters long; a different `salt` gives a different text."""
    parts: list[str] = []
    total = -1
    index = salt
    while total + 1 + len(SENTENCES[index % len(SENTENCES)]) <= length - 40:
        sentence = SENTENCES[index % len(SENTENCES)]
        parts.append(sentence)
        total += 1 + len(sentence)
        index += 1
    room = length - total - 1
    digits = room - len("At last he counted  sheep.")
    number = str(salt).rjust(digits, "7")[-digits:]
    parts.append(f"At last he counted {number} sheep.")
    text = " ".join(parts)
    if len(text) != length:
        raise ValueError(f"could not make {length} characters of prose (got {len(text)})")
    return text
