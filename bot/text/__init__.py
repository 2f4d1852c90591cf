"""Pure text functions: readout cleaning, chunking for the request limit, prosody forms, pronunciations."""

from bot.text.chunking import MAX_REQUEST_CHARS, split_text
from bot.text.cleaning import (
    NO_NAMES,
    TRUNCATION_SUFFIX,
    CallbackResolver,
    MentionResolver,
    clean_message,
    format_timestamp,
    is_speakable,
    speakable_author,
    truncate,
    with_said_prefix,
)
from bot.text.pronunciation import matching_entries, occurs_as_word
from bot.text.prosody import (
    PITCH_RANGE,
    PITCH_WORDS,
    RATE_RANGE,
    RATE_WORDS,
    VOLUME_RANGE,
    VOLUME_WORDS,
    ProsodyError,
    ProsodyKind,
    catch_up_rate,
    normalize_pitch,
    normalize_prosody,
    normalize_rate,
    normalize_volume,
)
from bot.text.readout import attachment_kind, readout_text

__all__ = [
    "MAX_REQUEST_CHARS",
    "NO_NAMES",
    "PITCH_RANGE",
    "PITCH_WORDS",
    "RATE_RANGE",
    "RATE_WORDS",
    "TRUNCATION_SUFFIX",
    "VOLUME_RANGE",
    "VOLUME_WORDS",
    "CallbackResolver",
    "MentionResolver",
    "ProsodyError",
    "ProsodyKind",
    "attachment_kind",
    "catch_up_rate",
    "clean_message",
    "format_timestamp",
    "is_speakable",
    "matching_entries",
    "normalize_pitch",
    "normalize_prosody",
    "normalize_rate",
    "normalize_volume",
    "occurs_as_word",
    "readout_text",
    "speakable_author",
    "split_text",
    "truncate",
    "with_said_prefix",
]
