"""Typed models of what goes to and comes from the Unmixr API."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _language_key(code: str) -> str:
    """Normalise a language tag for comparison: lower case, hyphens."""
    return code.strip().replace("_", "-").lower()


class _Tolerant(BaseModel):
    """Base for response models: unknown keys are ignored and nulls fall back to defaults."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_with_defaults(cls, data: Any) -> Any:
        """Replace null values of fields that are not nullable by their default."""
        if not isinstance(data, dict):
            return data
        cleaned = dict(data)
        for name, field in cls.model_fields.items():
            if name in cleaned and cleaned[name] is None and not field.is_required():
                default = field.get_default(call_default_factory=True)
                if default is not None:
                    del cleaned[name]
        return cleaned


class Voice(_Tolerant):
    """One voice of the catalogue or one cloned voice; any subset of fields may be present.

    Frozen: what is worked out from its fields once (`languages`) stays true.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    uuid: str = ""
    character: str = ""
    gender: str | None = None
    language: str | None = None
    quality: str | None = None
    sample_voice_url: str | None = None
    emotions: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    use_cases: list[str] = Field(default_factory=list)
    other_languages: list[str] = Field(default_factory=list)
    supported_locales: dict[str, str] = Field(default_factory=dict)
    # A voice listed without this field (filtered with `fields=`) is assumed usable.
    is_available: bool = True
    date_created: datetime | None = None
    is_multilingual: bool = False
    wpm: int | None = None
    is_new: bool = False
    description: str | None = None
    age: str | None = None
    personality: list[str] = Field(default_factory=list)
    avatar_url: str | None = None

    @field_validator("date_created", mode="before")
    @classmethod
    def _lenient_date(cls, value: Any) -> Any:
        """Turn an unparsable date into None rather than rejecting the whole voice."""
        if value in ("", None):
            return None
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
        return value

    @field_validator("wpm", mode="before")
    @classmethod
    def _lenient_wpm(cls, value: Any) -> Any:
        """Accept a fractional or textual words-per-minute figure."""
        if isinstance(value, float):
            return round(value)
        if isinstance(value, str):
            try:
                return round(float(value))
            except ValueError:
                return None
        return value

    @field_validator("emotions", "capabilities", "roles", "use_cases", "other_languages", "personality")
    @classmethod
    def _drop_blank_entries(cls, value: list[str]) -> list[str]:
        """Drop empty strings from tag lists."""
        return [entry for entry in value if entry]

    @property
    def name(self) -> str:
        """The voice's display name."""
        return self.character

    @functools.cached_property
    def languages(self) -> list[str]:
        """Every language the voice speaks: `language`, then `other_languages`, then locales, deduplicated."""
        # Worked out once per voice: every request checks that its voice speaks the language asked for.
        seen: set[str] = set()
        ordered: list[str] = []
        candidates = [self.language or "", *self.other_languages, *self.supported_locales]
        for code in candidates:
            key = _language_key(code)
            if key and key not in seen:
                seen.add(key)
                ordered.append(code.strip())
        return ordered

    def speaks(self, code: str, *, natively: bool = False) -> bool:
        """Tell whether the voice speaks `code` (only its own `language` when `natively`).

        A bare language such as `en` matches any of its regions.
        """
        wanted = _language_key(code)
        if not wanted:
            return False
        wanted_primary, _, wanted_region = wanted.partition("-")
        if natively:
            candidates = [self.language] if self.language else []
        else:
            candidates = self.languages
        for spoken in candidates:
            key = _language_key(spoken)
            if key == wanted:
                return True
            primary, _, region = key.partition("-")
            if primary == wanted_primary and (not region or not wanted_region):
                return True
        return False

    def has_capability(self, name: str) -> bool:
        """Tell whether the voice lists the capability, case-insensitively."""
        wanted = name.strip().lower()
        return any(capability.lower() == wanted for capability in self.capabilities)


class VoicePage(_Tolerant):
    """One page of a voice list."""

    count: int = 0
    results: list[Voice] = Field(default_factory=list)
    current_page: int | None = None
    page_start: int | None = None
    page_end: int | None = None
    next_page: int | None = None
    prev_page: int | None = None
    total_page: int | None = None


class TTSRequest(BaseModel):
    """A `/short-tts/` request; fields left as None are not sent."""

    model_config = ConfigDict(extra="forbid")

    text: str
    voice_id: str
    speaking_rate: str | None = None
    speaking_pitch: str | None = None
    speaking_volume: str | None = None
    intensity: int | None = None
    output_type: Literal["mp3", "wav"] | None = None
    language: str | None = None
    pronunciation_dict: dict[str, str] | None = None
    response_type: Literal["url", "base64", "bytes"] = "url"

    def payload(self) -> dict[str, Any]:
        """The JSON body to send, without None fields."""
        return self.model_dump(exclude_none=True)


class CreditUsage(_Tolerant):
    """Characters a request consumed."""

    prebuilt: int = 0
    voice_cloning: int = 0

    @property
    def total(self) -> int:
        """Characters consumed of both kinds."""
        return self.prebuilt + self.voice_cloning


class TTSResult(BaseModel):
    """Synthesised audio with what it cost."""

    audio: bytes
    output_type: str = "mp3"
    duration: float | None = None
    credit_usage: CreditUsage = Field(default_factory=CreditUsage)
    # False when the answer did not say what it cost (raw audio): the caller must assume its estimate.
    usage_reported: bool = False


class CloneResult(_Tolerant):
    """The outcome of a successful `/clone-voice/` call."""

    voice_id: str
    status: str = "SUCCESS"
    code: int = 200


class CreditBalance(_Tolerant):
    """Characters left on the Unmixr account."""

    prebuilt_chars: int = 0
    cloned_chars: int = 0
