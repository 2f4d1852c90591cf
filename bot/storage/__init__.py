"""Persistent state of the bot in SQLite or PostgreSQL, behind the typed methods of Storage."""

from bot.storage.backends import is_postgres_url, mask_url, url_secrets
from bot.storage.database import DEFAULT_CACHE_SIZE, MEMBER_WINDOW_SECONDS, Storage, word_key
from bot.storage.errors import (
    BudgetExceededError,
    ClonedVoiceExistsError,
    CloneNameTakenError,
    CloneQuotaError,
    DatabaseUnavailableError,
    MigrationError,
    PronunciationLimitError,
    SchemaVersionError,
    StorageClosedError,
    StorageError,
)
from bot.storage.migrations import LATEST_VERSION
from bot.storage.models import (
    GUILD_SETTING_NAMES,
    GUILD_SETTING_TYPES,
    MAX_PRONUNCIATIONS,
    MAX_SPOKEN_LENGTH,
    MAX_WORD_LENGTH,
    MEMBER_PREFERENCE_NAMES,
    MEMBER_PREFERENCE_TYPES,
    ClonedVoice,
    GuildSettings,
    MemberPreferences,
    Pronunciation,
    Usage,
)

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "GUILD_SETTING_NAMES",
    "GUILD_SETTING_TYPES",
    "LATEST_VERSION",
    "MAX_PRONUNCIATIONS",
    "MAX_SPOKEN_LENGTH",
    "MAX_WORD_LENGTH",
    "MEMBER_PREFERENCE_NAMES",
    "MEMBER_PREFERENCE_TYPES",
    "MEMBER_WINDOW_SECONDS",
    "BudgetExceededError",
    "CloneNameTakenError",
    "CloneQuotaError",
    "ClonedVoice",
    "ClonedVoiceExistsError",
    "DatabaseUnavailableError",
    "GuildSettings",
    "MemberPreferences",
    "MigrationError",
    "Pronunciation",
    "PronunciationLimitError",
    "SchemaVersionError",
    "Storage",
    "StorageClosedError",
    "StorageError",
    "Usage",
    "is_postgres_url",
    "mask_url",
    "url_secrets",
    "word_key",
]
