"""Typed models of what goes to and comes from the Unmixr API."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


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


def _text(value: Any) -> str | None:
    """A string field as shown, a number written out; an object, a list or a null reads as absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _name(value: Any) -> str:
    """A uuid or a name: a string or a number; anything else reads as missing (the voice is then dropped)."""
    return (_text(value) or "").strip()


def _texts(value: Any) -> list[str]:
    """A list of tags: its non-empty strings (objects in it are skipped); one string is a one-element list."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str) and item.strip()]
    return []


def _locales(value: Any) -> dict[str, str | None]:
    """Locales to sample URLs; a URL that is not a string reads as None, a list of locales as locales alone."""
    if isinstance(value, dict):
        return {
            code: url if isinstance(url, str) and url else None
            for code, url in value.items()
            if isinstance(code, str) and code.strip()
        }
    return dict.fromkeys(_texts(value))


_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def _flag(default: bool) -> Callable[[Any], bool]:
    """A yes/no field: a boolean, 0 or 1, or "true"/"false"; anything else reads as `default`."""

    def read(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
        return default

    return read


def _whole(value: Any) -> int | None:
    """A count or a page number: an integer, a whole float, or digits; anything else reads as absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return round(float(value))
        except ValueError:
            return None
    return None


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 date; anything unparsable reads as absent rather than rejecting the voice."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


# Every field of a voice but the uuid and the name is optional and read this tolerantly: the reference shows
# one example of each answer, so one voice with an unexpected value keeps what can be read and stays listed.
Name = Annotated[str, BeforeValidator(_name)]
Text = Annotated[str | None, BeforeValidator(_text)]
Texts = Annotated[list[str], BeforeValidator(_texts)]
Locales = Annotated[dict[str, str | None], BeforeValidator(_locales)]
Whole = Annotated[int | None, BeforeValidator(_whole)]
Moment = Annotated[datetime | None, BeforeValidator(_moment)]
# A voice listed without this field (filtered with `fields=`), or with a value that cannot be read, is usable.
Available = Annotated[bool, BeforeValidator(_flag(True))]
Flag = Annotated[bool, BeforeValidator(_flag(False))]


class Voice(_Tolerant):
    """One voice of the catalogue or one cloned voice; any subset of fields may be present, of any type.

    Frozen: what is worked out from its fields once (`languages`) stays true. A voice read without a uuid
    or a name parses (its uuid or name is then empty); whoever lists voices drops it.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    uuid: Name = ""
    character: Name = ""
    gender: Text = None
    language: Text = None
    quality: Text = None
    sample_voice_url: Text = None
    emotions: Texts = Field(default_factory=list)
    capabilities: Texts = Field(default_factory=list)
    roles: Texts = Field(default_factory=list)
    use_cases: Texts = Field(default_factory=list)
    other_languages: Texts = Field(default_factory=list)
    supported_locales: Locales = Field(default_factory=dict)
    is_available: Available = True
    date_created: Moment = None
    is_multilingual: Flag = False
    wpm: Whole = None
    is_new: Flag = False
    description: Text = None
    age: Text = None
    personality: Texts = Field(default_factory=list)
    avatar_url: Text = None

    @property
    def name(self) -> str:
        """The voice's display name."""
        return self.character

    @property
    def listable(self) -> bool:
        """Whether the voice can be offered at all: it has a uuid and a name."""
        return bool(self.uuid and self.character)

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


def _voice_entries(value: Any) -> list[Any]:
    """A page's results: the entries that are objects; anything else in the list cannot be a voice."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("results is not a list")
    return [entry for entry in value if isinstance(entry, dict)]


def _count(value: Any) -> int:
    """A count that cannot be read is 0."""
    return _whole(value) or 0


class VoicePage(_Tolerant):
    """One page of a voice list; an entry that is not an object is skipped (and counted), not the page."""

    count: Annotated[int, BeforeValidator(_count)] = 0
    results: Annotated[list[Voice], BeforeValidator(_voice_entries)] = Field(default_factory=list)
    current_page: Whole = None
    page_start: Whole = None
    page_end: Whole = None
    next_page: Whole = None
    prev_page: Whole = None
    total_page: Whole = None
    # Entries of `results` that were not objects, so could not be read as voices at all.
    skipped: int = 0

    @model_validator(mode="before")
    @classmethod
    def _count_skipped(cls, data: Any) -> Any:
        """Count the entries of `results` that are not objects before they are left out."""
        if not isinstance(data, dict):
            return data
        results = data.get("results")
        skipped = sum(1 for entry in results if not isinstance(entry, dict)) if isinstance(results, list) else 0
        return {**data, "skipped": skipped}


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
