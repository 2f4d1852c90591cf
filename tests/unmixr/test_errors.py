"""The error tree: documented codes per endpoint, reused numbers, and readable messages."""

from __future__ import annotations

import pytest

from bot.unmixr import errors
from bot.unmixr.errors import error_for

TTS = "/short-tts/"
CLONE = "/clone-voice/"


@pytest.mark.parametrize(
    ("endpoint", "code", "message", "expected"),
    [
        (TTS, 400, "Invalid response_type. Supported values are: 'url', 'bytes', and 'base64'.",
         errors.InvalidResponseTypeError),
        (TTS, 400, "Something else was wrong.", errors.InvalidRequestError),
        (TTS, 401, "Input too long. Please limit your input to under 2000 characters.", errors.InputTooLongError),
        (TTS, 401, "Invalid API key.", errors.InvalidApiKeyError),
        (TTS, 401, "", errors.InvalidApiKeyError),
        (TTS, 403, "Forbidden", errors.InvalidApiKeyError),
        (TTS, 404, "Not Found", errors.NotFoundError),
        (TTS, 500, "Internal Server Error", errors.UpstreamServerError),
        (TTS, 501, "Specify OpenAI API key in the header with key `OpenAI-API-Key`",
         errors.OpenAIKeyRequiredError),
        (TTS, 502, "Input too long. Please limit your input to under 2000 characters.", errors.InputTooLongError),
        (TTS, 503, "Multiple voices are not supported on this endpoint.",
         errors.MultipleVoicesNotSupportedError),
        (TTS, 504, "Insufficient API balance (cloned characters) to full-fill the request.",
         errors.InsufficientClonedCreditsError),
        (TTS, 505, "Insufficient API balance (prebuilt characters) to full-fill the request",
         errors.InsufficientPrebuiltCreditsError),
        (TTS, 508, "Server Error - Something went wrong", errors.GenerationServerError),
        (TTS, 509, "Audio Generation Failed", errors.AudioGenerationFailedError),
        (TTS, 429, "", errors.RateLimitedError),
        (CLONE, 400, "Audio is required", errors.CloneAudioRequiredError),
        (CLONE, 401, "Name is required", errors.CloneNameRequiredError),
        (CLONE, 401, "Invalid API key.", errors.InvalidApiKeyError),
        (CLONE, 402, "You've reached the limit", errors.CloneLimitReachedError),
        (CLONE, 500, "Internal Server Error", errors.CloneServerError),
        (CLONE, 501, "Failed to create clone", errors.CloneFailedError),
        (CLONE, 404, "Not Found", errors.NotFoundError),
        ("/voice-list/", 401, "Invalid API key.", errors.InvalidApiKeyError),
        ("/voice/", 404, "Not found.", errors.NotFoundError),
        ("/credit-balance/", 403, "", errors.InvalidApiKeyError),
        ("/voice-list/", 400, "bad", errors.InvalidRequestError),
        ("/voice-list/", 409, "conflict", errors.UnexpectedStatusError),
        ("/voice-list/", 502, "Input too long", errors.UnexpectedStatusError),
    ],
)  # fmt: skip
def test_json_errors_map_by_endpoint_code_and_message(
    endpoint: str, code: int, message: str, expected: type[errors.UnmixrError]
) -> None:
    error = error_for(endpoint, code, message, json_body=True)
    assert type(error) is expected
    assert error.code == code
    assert error.endpoint == endpoint
    # A sentence for a person, not a bare status.
    assert error.message.endswith(".")
    assert str(code) not in error.message
    assert str(error) == error.message


@pytest.mark.parametrize("endpoint", [TTS, CLONE, "/voice-list/"])
@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_non_json_5xx_is_service_unavailable(endpoint: str, code: int) -> None:
    error = error_for(endpoint, code, "", json_body=False)
    assert type(error) is errors.ServiceUnavailableError
    assert error.transient


def test_transient_flags() -> None:
    assert error_for(TTS, 500, "", json_body=True).transient
    assert error_for(TTS, 508, "", json_body=True).transient
    assert error_for(TTS, 429, "", json_body=True).transient
    for code in (400, 401, 501, 502, 503, 504, 505, 509):
        assert not error_for(TTS, code, "Input too long", json_body=True).transient


def test_out_of_credit_errors_share_a_base() -> None:
    assert isinstance(error_for(TTS, 504, "", json_body=True), errors.OutOfCreditsError)
    assert isinstance(error_for(TTS, 505, "", json_body=True), errors.OutOfCreditsError)


def test_every_error_class_has_its_own_readable_message() -> None:
    classes = [
        value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, errors.UnmixrError)
    ]
    messages = [str(cls.default_message) for cls in classes]
    assert len(classes) >= 28
    assert len(set(messages)) == len(messages)
    for message in messages:
        assert message[0].isupper() and message.endswith(".")


def test_repr_and_str_show_code_and_endpoint_but_only_the_message_in_str() -> None:
    error = errors.InsufficientPrebuiltCreditsError(code=505, endpoint=TTS, detail="Insufficient API balance")
    assert str(error) == str(errors.InsufficientPrebuiltCreditsError.default_message)
    assert "505" in repr(error) and TTS in repr(error)
