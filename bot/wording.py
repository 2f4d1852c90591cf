"""Numbers and counts as people read them, the same in Discord and on the command line: 1,234 and "1 voice".

Every message keeps its whole wording in one literal per form (singular and plural, as gettext's ngettext does):
`counted` is a marker of the catalogue (bot.i18n), so each language gets its own plural forms and separators.
"""

from __future__ import annotations

from bot.i18n import Language, Text, counted, pgettext, source_language

__all__ = ["AGE_LABELS", "CAPABILITY_LABELS", "age_label", "capability_label", "counted", "number"]


def number(value: int, language: Language | None = None) -> str:
    """A whole number with the language's thousands separators (English unless given): 993,907 or 993.907."""
    return (language or source_language()).number(value)


# Unmixr's own values, as a member reads them (the reference's capability names, its ages in CamelCase).
CAPABILITY_LABELS: dict[str, Text] = {
    "pause": pgettext("capability", "pauses"),
    "speech": pgettext("capability", "speech settings"),
    "speech:volume": pgettext("capability", "volume"),
    "speech:rate": pgettext("capability", "speed"),
    "speech:pitch": pgettext("capability", "pitch"),
    "emphasize": pgettext("capability", "emphasis"),
    "abbr": pgettext("capability", "abbreviations"),
    "custom_pause": pgettext("capability", "custom pauses"),
    "intensity": pgettext("capability", "intensity"),
}
AGE_LABELS: dict[str, Text] = {
    "Child": pgettext("age", "child"),
    "Teen": pgettext("age", "teenager"),
    "YoungAdult": pgettext("age", "young adult"),
    "Adult": pgettext("age", "adult"),
    "MiddleAged": pgettext("age", "middle-aged"),
    "Senior": pgettext("age", "senior"),
}


def capability_label(value: str) -> Text | str:
    """A capability as words: custom_pause is "custom pauses"; an unknown one loses its punctuation."""
    return CAPABILITY_LABELS.get(value) or value.replace("_", " ").replace(":", " ")


def age_label(value: str) -> Text | str:
    """An age as words: MiddleAged is "middle-aged"; an unknown CamelCase value is split into words."""
    known = AGE_LABELS.get(value)
    if known is not None:
        return known
    words = "".join(f" {letter}" if letter.isupper() and index else letter for index, letter in enumerate(value))
    return words.strip().lower()
