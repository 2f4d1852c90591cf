"""The bot's configuration: environment variables, also read from `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.masking import MIN_SECRET_LENGTH

DEFAULT_BASE_URL = "https://unmixr.com/api/v1"

# Where an operator gets each required value; shown when it is missing.
WHERE_TO_GET = {
    "DISCORD_TOKEN": "the Bot page of your application at https://discord.com/developers/applications",
    "UNMIXR_API_KEY": "https://app.unmixr.com/manage-api-keys/",
}
# The values `.env.example` ships with: a required value still equal to one of them was never filled in.
PLACEHOLDERS = {
    "DISCORD_TOKEN": "paste-your-bot-token-here",
    "UNMIXR_API_KEY": "paste-your-unmixr-api-key-here",
}


class Settings(BaseSettings):
    """Every setting of the bot, read from the environment and `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    discord_token: SecretStr = Field(validation_alias="DISCORD_TOKEN")
    unmixr_api_key: SecretStr = Field(validation_alias="UNMIXR_API_KEY")
    unmixr_base_url: str = Field(DEFAULT_BASE_URL, validation_alias="UNMIXR_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    database_path: Path = Field(Path("data/bot.sqlite3"), validation_alias="DATABASE_PATH")
    audio_cache_dir: Path = Field(Path("data/audio-cache"), validation_alias="AUDIO_CACHE_DIR")
    audio_cache_max_mb: int = Field(512, ge=0, validation_alias="AUDIO_CACHE_MAX_MB")
    default_voice_id: str | None = Field(None, validation_alias="DEFAULT_VOICE_ID")
    dev_guild_id: int | None = Field(None, validation_alias="DEV_GUILD_ID")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    voice_alone_seconds: float = Field(60, ge=0, validation_alias="VOICE_ALONE_SECONDS")
    voice_idle_seconds: float = Field(600, ge=0, validation_alias="VOICE_IDLE_SECONDS")
    readout_skip_prefix: str = Field("!", validation_alias="READOUT_SKIP_PREFIX")
    unmixr_max_concurrency: int = Field(64, ge=1, validation_alias="UNMIXR_MAX_CONCURRENCY")
    # Credit guards (PRODUCT.md): the operator's budgets in credits, unset = unlimited; servers may go lower.
    server_daily_budget: int | None = Field(None, ge=1, validation_alias="SERVER_DAILY_BUDGET")
    member_hourly_budget: int | None = Field(None, ge=1, validation_alias="MEMBER_HOURLY_BUDGET")
    # What every process of the operator may spend per UTC day, all servers and `python -m bot say` together.
    account_daily_budget: int | None = Field(None, ge=1, validation_alias="ACCOUNT_DAILY_BUDGET")
    low_balance_characters: int = Field(10_000, ge=0, validation_alias="LOW_BALANCE_CHARACTERS")
    alert_channel_id: int | None = Field(None, validation_alias="ALERT_CHANNEL_ID")
    max_clones_per_server: int = Field(10, ge=0, validation_alias="MAX_CLONES_PER_SERVER")
    # Monitoring: /healthz and /metrics on this address when a port is set (0 picks a free one, for tests).
    metrics_port: int | None = Field(None, ge=0, le=65535, validation_alias="METRICS_PORT")
    metrics_host: str = Field("127.0.0.1", min_length=1, validation_alias="METRICS_HOST")
    # Several processes (PRODUCT.md, Operating it): PostgreSQL instead of the SQLite file, and a range of shards.
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    # With DATABASE_URL: the size of the audio cache's tier shared in PostgreSQL (0: no shared tier).
    audio_cache_db_max_mb: int = Field(2048, ge=0, validation_alias="AUDIO_CACHE_DB_MAX_MB")
    shard_count: int | None = Field(None, ge=1, validation_alias="SHARD_COUNT")
    # Comma-separated in the environment (NoDecode: not JSON); declared after the two it is checked against.
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(None, validation_alias="SHARD_IDS")
    # Development only: point discord.py at a local Discord stand-in (see README).
    discord_api_base: str | None = Field(None, validation_alias="DISCORD_API_BASE")
    discord_gateway_url: str | None = Field(None, validation_alias="DISCORD_GATEWAY_URL")

    @field_validator(
        "openai_api_key",
        "default_voice_id",
        "dev_guild_id",
        "server_daily_budget",
        "member_hourly_budget",
        "account_daily_budget",
        "alert_channel_id",
        "metrics_port",
        "database_url",
        "shard_count",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `.env.example` leaves optional values empty; an empty string means "not set".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("discord_token", "unmixr_api_key", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        # `DISCORD_TOKEN=` in a .env file, or .env.example's placeholder left in, is as good as not set: report it
        # as missing, not as a bad login later.
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("missing", "Field required")
        if isinstance(value, str) and value.strip() in PLACEHOLDERS.values():
            raise PydanticCustomError("missing", "still the placeholder from .env.example")
        return value

    @field_validator("discord_token", "unmixr_api_key", "openai_api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"is shorter than {MIN_SECRET_LENGTH} characters, so it cannot be a real one; copy it again"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql://user:password@host:port/database URL")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return tuple(int(part) for part in value.split(","))
        except ValueError:
            raise ValueError("must be shard numbers separated by commas, e.g. 0,1") from None

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, value: tuple[int, ...] | None, info: ValidationInfo) -> tuple[int, ...] | None:
        if value is None:
            return None
        if "shard_count" not in info.data or "database_url" not in info.data:
            return value  # the other setting is invalid itself, and says so
        count = info.data["shard_count"]
        if count is None:
            raise ValueError("needs SHARD_COUNT, the total number of shards across every process")
        if info.data["database_url"] is None:
            raise ValueError(
                "needs DATABASE_URL: processes running some of the shards must share one PostgreSQL database"
            )
        if not value or any(not 0 <= shard < count for shard in value):
            raise ValueError(f"each shard must be from 0 to {count - 1} (SHARD_COUNT is {count})")
        if len(set(value)) != len(value):
            raise ValueError("names a shard twice")
        return tuple(sorted(value))

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("unmixr_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def database_location(self) -> str | Path:
        """Where storage lives: the PostgreSQL URL (a secret: never log it) when set, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url is not None else self.database_path

    @property
    def audio_cache_max_bytes(self) -> int:
        """The audio cache's size limit in bytes."""
        return self.audio_cache_max_mb * 1024 * 1024

    @property
    def audio_cache_db_max_bytes(self) -> int:
        """The size limit in bytes of the audio cache's shared tier in PostgreSQL."""
        return self.audio_cache_db_max_mb * 1024 * 1024


class SettingsError(Exception):
    """The configuration is incomplete or invalid; the message says what to fix."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_errors(error)) from None


def describe_errors(error: ValidationError) -> str:
    """One readable message naming every missing or invalid variable (never its value)."""
    missing: list[str] = []
    invalid: list[str] = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "?"
        if item["type"] == "missing":
            where = WHERE_TO_GET.get(name)
            notes = [item["msg"]] if item["msg"] != "Field required" else []
            if where:
                notes.append(f"get it from {where}")
            missing.append(f"{name} ({', '.join(notes)})" if notes else name)
        else:
            # pydantic prefixes a validator's own message with "Value error, ": keep only the message.
            invalid.append(f"{name}: {item['msg'].removeprefix('Value error, ')}")
    parts: list[str] = []
    if missing:
        parts.append("Missing required settings: " + "; ".join(missing) + ".")
    if invalid:
        parts.append("Invalid settings: " + "; ".join(invalid) + ".")
    parts.append("Set them in the environment or in a .env file (see .env.example).")
    return " ".join(parts)
