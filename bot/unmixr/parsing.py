"""Reads what Unmixr answered: its error bodies told apart from a gateway's, JSON into models, audio in any shape.

Tolerant where the reference shows one example only (PRODUCT.md, Unmixr responses): an error body counts as
Unmixr's only in Unmixr's shape, anything else is judged by its HTTP status alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from yarl import URL

from bot.unmixr.errors import (
    GenerationServerError,
    MalformedResponseError,
    RateLimitedError,
    ServiceUnavailableError,
    UnmixrError,
    UpstreamServerError,
    error_for,
    error_for_status,
)
from bot.unmixr.models import CreditUsage
from bot.unmixr.transport import Reply, Retryable

ModelT = TypeVar("ModelT", bound=BaseModel)

# Keys under which an answer may carry base64 audio instead of a URL.
BASE64_KEYS: Final = ("audio", "audio_base64", "audio_content", "data")
# Retried when the server says so; every other documented code is permanent.
_RETRYABLE_STATUS_ERRORS: Final = (
    RateLimitedError,
    ServiceUnavailableError,
    UpstreamServerError,
    GenerationServerError,
)
_WAV_TYPES: Final = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_MP3_TYPES: Final = frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg"})
_MESSAGE_KEYS: Final = ("message", "detail", "error", "msg")


def read_answer(endpoint: str, reply: Reply, *, scrub: Callable[[str], str], accept_audio: bool = False) -> Any:
    """Return the JSON body of a successful reply (None for raw audio), or raise its error.

    A transient error comes wrapped in `Retryable`; `scrub` removes secrets from upstream text kept for logs.
    """
    if accept_audio and 200 <= reply.status < 300 and _is_audio_type(reply.content_type):
        return None
    data, parsed = _json(reply.body)
    is_object = parsed and isinstance(data, dict)
    if reply.status >= 300 or (is_object and _is_failure(data)):
        message = scrub(_body_message(data)) if is_object else ""
        error: UnmixrError
        # A failure in a success answer is Unmixr's own; an error status is Unmixr's only in Unmixr's shape.
        if is_object and (reply.status < 300 or _is_unmixr_error(data)):
            code = _body_code(data) or reply.status
            error = error_for(endpoint, code, message, json_body=True, retry_after=reply.retry_after)
        else:
            # A gateway's or a proxy's answer (JSON or HTML): Unmixr's table of codes does not apply to it.
            error = error_for_status(endpoint, reply.status, message, retry_after=reply.retry_after)
        if isinstance(error, _RETRYABLE_STATUS_ERRORS):
            raise Retryable(error)
        raise error
    if not parsed:
        if accept_audio and _sniff_format(reply.body):
            # Audio with a missing or wrong Content-Type is still audio.
            return None
        malformed = MalformedResponseError(
            endpoint=endpoint, code=reply.status, detail=f"body is not JSON ({reply.content_type!r})"
        )
        malformed.maybe_charged = True  # a success status: the work may have been done
        raise malformed
    return data


def is_gateway_timeout(reply: Reply) -> bool:
    """Whether a reply is a gateway's 504 (not Unmixr's documented 504): a timeout, for the adaptive limit."""
    if reply.status != 504:
        return False
    data, parsed = _json(reply.body)
    return not (parsed and isinstance(data, dict) and _is_unmixr_error(data))


def parse(model: type[ModelT], data: Any, endpoint: str) -> ModelT:
    """Validate a JSON body into a model, reporting a mismatch as a malformed response."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedResponseError(
            endpoint=endpoint, detail=f"{model.__name__}: {exc.error_count()} invalid field(s)"
        ) from None


def tts_fields(data: Any, endpoint: str) -> dict[str, Any]:
    """The fields of a `/short-tts/` JSON answer, with those nested under `data` lifted up."""
    if not isinstance(data, dict):
        raise MalformedResponseError(endpoint=endpoint, detail="body is not a JSON object")
    nested = data.get("data")
    if isinstance(nested, dict):
        return {**nested, **{key: value for key, value in data.items() if key != "data"}}
    return dict(data)


def tts_usage(fields: Mapping[str, Any], endpoint: str) -> CreditUsage | None:
    """What the answer says the request cost, if it says."""
    usage = fields.get("credit_usage")
    return parse(CreditUsage, usage, endpoint) if usage else None


def embedded_audio(fields: Mapping[str, Any], endpoint: str) -> bytes | None:
    """Audio carried in the answer as base64 under one of the usual keys, if any."""
    for key in BASE64_KEYS:
        encoded = fields.get(key)
        if isinstance(encoded, str) and encoded:
            try:
                return _decode_base64(encoded)
            except (binascii.Error, ValueError):
                raise MalformedResponseError(endpoint=endpoint, detail=f"{key} is not valid base64") from None
    return None


def audio_format(audio: bytes, *, content_type: str = "", url: str = "", fallback: str | None) -> str:
    """Work out "mp3" or "wav" from the bytes, the Content-Type, the URL, then the request."""
    sniffed = _sniff_format(audio)
    if sniffed:
        return sniffed
    media = _media_type(content_type)
    if media in _WAV_TYPES:
        return "wav"
    if media in _MP3_TYPES:
        return "mp3"
    path = URL(url).path.lower() if url else ""
    if path.endswith(".wav"):
        return "wav"
    if path.endswith(".mp3"):
        return "mp3"
    return fallback or "mp3"


def number(value: object) -> float | None:
    """Read a duration-like number, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json(body: bytes) -> tuple[Any, bool]:
    """The body parsed as JSON, and whether it was JSON at all."""
    if not body:
        return None, False
    try:
        return json.loads(body), True
    except (ValueError, UnicodeDecodeError):
        return None, False


def _body_code(data: Mapping[str, Any]) -> int | None:
    """Read the `code` of a JSON body, if it is a number."""
    code = data.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


def _body_message(data: Mapping[str, Any]) -> str:
    """Read the human message of a JSON body under any of the usual keys."""
    for key in _MESSAGE_KEYS:
        value = data.get(key)
        if value:
            return value if isinstance(value, str) else json.dumps(value)[:300]
    return ""


def _is_unmixr_error(data: Mapping[str, Any]) -> bool:
    """Whether an error body has Unmixr's shape: `success: false`, a status but SUCCESS, or a code with a message."""
    if data.get("success") is False:
        return True
    status = data.get("status")
    if isinstance(status, str) and status.strip().upper() != "SUCCESS":
        return True
    return _body_code(data) is not None and isinstance(data.get("message"), str)


def _is_failure(data: Mapping[str, Any]) -> bool:
    """Tell whether a JSON body reports a failure whatever the HTTP status."""
    if data.get("success") is False:
        return True
    status = data.get("status")
    if isinstance(status, str) and status.strip().upper() != "SUCCESS":
        return True
    code = _body_code(data)
    return code is not None and code >= 400


def _media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def _is_audio_type(content_type: str) -> bool:
    """Tell whether a Content-Type announces raw audio."""
    media = _media_type(content_type)
    return media.startswith("audio/") or media == "application/octet-stream"


def _sniff_format(audio: bytes) -> str | None:
    """Recognise WAV and MP3 by their first bytes."""
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        return "wav"
    if audio[:3] == b"ID3" or (len(audio) > 1 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def _decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, tolerating a data: prefix and whitespace."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
