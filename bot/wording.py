"""Numbers and counts as people read them, the same in Discord and on the command line: 1,234 and "1 voice".

Every message keeps its whole wording in one literal per form (singular and plural, as gettext's ngettext does),
so a translator can later take each as it is.
"""

from __future__ import annotations


def number(value: int) -> str:
    """A whole number with thousands separators: 993,907."""
    return f"{value:,}"


def counted(count: int, one: str, other: str) -> str:
    """`one` when count is 1, else `other`, with "{count}" in either filled in with separators.

    counted(1, "{count} voice", "{count} voices") is "1 voice"; with 1200, "1,200 voices".
    """
    return (one if count == 1 else other).format(count=number(count))


# Unmixr's own values, as a member reads them (the reference's capability names, its ages in CamelCase).
CAPABILITY_LABELS: dict[str, str] = {
    "pause": "pauses",
    "speech": "speech settings",
    "speech:volume": "volume",
    "speech:rate": "speed",
    "speech:pitch": "pitch",
    "emphasize": "emphasis",
    "abbr": "abbreviations",
    "custom_pause": "custom pauses",
    "intensity": "intensity",
}
AGE_LABELS: dict[str, str] = {
    "Child": "child",
    "Teen": "teenager",
    "YoungAdult": "young adult",
    "Adult": "adult",
    "MiddleAged": "middle-aged",
    "Senior": "senior",
}


def capability_label(value: str) -> str:
    """A capability as words: custom_pause is "custom pauses"; an unknown one loses its punctuation."""
    return CAPABILITY_LABELS.get(value) or value.replace("_", " ").replace(":", " ")


def age_label(value: str) -> str:
    """An age as words: MiddleAged is "middle-aged"; an unknown CamelCase value is split into words."""
    known = AGE_LABELS.get(value)
    if known is not None:
        return known
    words = "".join(f" {letter}" if letter.isupper() and index else letter for index, letter in enumerate(value))
    return words.strip().lower()
