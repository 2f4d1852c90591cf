"""One exception tree for everything that can go wrong when talking to Unmixr."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from bot.i18n.text import Text, _

if TYPE_CHECKING:
    from bot.unmixr.models import CreditUsage

TTS_ENDPOINT = "/short-tts/"
CLONE_ENDPOINT = "/clone-voice/"


class UnmixrError(Exception):
    """Base of every Unmixr failure; `message` is one sentence a Discord user can read (in their language)."""

    default_message: ClassVar[Text] = _("Unmixr could not complete the request.")
    default_transient: ClassVar[bool] = False

    def __init__(
        self,
        message: Text | str | None = None,
        *,
        code: int | None = None,
        endpoint: str = "",
        detail: str | None = None,
        retry_after: float | None = None,
        transient: bool | None = None,
    ) -> None:
        # What the member reads, in their language; `message` is the same sentence in English (logs, the CLI).
        self.text: Text | str = message or self.default_message
        self.message: str = str(self.text)
        self.code: int | None = code
        self.endpoint: str = endpoint
        # The upstream's own wording, for logs only; the client scrubs secrets from it.
        self.detail: str | None = detail
        self.retry_after: float | None = retry_after
        self.transient: bool = self.default_transient if transient is None else transient
        # Whether Unmixr may have acted on (and charged for) the request although it failed: a timeout, or a
        # success answer the bot could not use. What it reported it charged, when it said so.
        self.maybe_charged: bool = False
        self.credit_usage: CreditUsage | None = None
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    @property
    def logged_by_client(self) -> bool:
        """Whether the client has logged this failure already (an outage or a refused key, once a minute)."""
        return self.transient or isinstance(self, InvalidApiKeyError)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, endpoint={self.endpoint!r}, "
            f"transient={self.transient!r}, message={self.message!r}, detail={self.detail!r})"
        )


class NotFoundError(UnmixrError):
    """The voice or resource asked for does not exist (404)."""

    default_message = _("Unmixr could not find that voice or resource.")


class InvalidRequestError(UnmixrError):
    """Unmixr refused the request as invalid (a 400, documented on `/short-tts/`)."""

    default_message = _("Unmixr refused the request as invalid; check the text and options.")


class InvalidResponseTypeError(InvalidRequestError):
    """Unmixr refused the requested response_type (`/short-tts/` 400)."""

    default_message = _("Unmixr refused the requested response type; this is a bug in the bot.")


class InputTooLongError(UnmixrError):
    """The text is over Unmixr's 2,000-character limit (`/short-tts/` 401 and 502)."""

    default_message = _("The text is too long for Unmixr; keep each request under 2,000 characters.")


class UpstreamServerError(UnmixrError):
    """Unmixr had an internal error while synthesising (`/short-tts/` 500)."""

    default_message = _("Unmixr had an internal error; please try again in a moment.")
    default_transient = True


class OpenAIKeyRequiredError(UnmixrError):
    """The voice needs an OpenAI API key that is not configured (`/short-tts/` 501)."""

    default_message = _("This voice needs an OpenAI API key, which the bot's operator has not configured.")


class MultipleVoicesNotSupportedError(UnmixrError):
    """Unmixr refused a request that mixes several voices (`/short-tts/` 503)."""

    default_message = _("Unmixr cannot use several voices in one request; pick a single voice.")


class OutOfCreditsError(UnmixrError):
    """The Unmixr account has run out of characters."""

    default_message = _("The Unmixr account has run out of characters; an admin needs to add credits.")


class InsufficientClonedCreditsError(OutOfCreditsError):
    """Not enough cloned-voice characters left (`/short-tts/` 504)."""

    default_message = _("The Unmixr account has run out of cloned-voice characters; an admin needs to add credits.")


class InsufficientPrebuiltCreditsError(OutOfCreditsError):
    """Not enough prebuilt-voice characters left (`/short-tts/` 505)."""

    default_message = _("The Unmixr account has run out of prebuilt-voice characters; an admin needs to add credits.")


class GenerationServerError(UnmixrError):
    """Unmixr's generation server failed (`/short-tts/` 508)."""

    default_message = _("Unmixr's speech server had a problem; please try again in a moment.")
    default_transient = True


class AudioGenerationFailedError(UnmixrError):
    """Unmixr could not generate audio for this text (`/short-tts/` 509)."""

    default_message = _("Unmixr could not generate audio for this text; try different wording or another voice.")


class CloneError(UnmixrError):
    """Base of the documented `/clone-voice/` failures."""

    default_message = _("Unmixr could not create the cloned voice.")


class CloneAudioRequiredError(CloneError):
    """The clone request had no audio (`/clone-voice/` 400)."""

    default_message = _("Unmixr received no audio for the clone; attach an audio file.")


class CloneNameRequiredError(CloneError):
    """The clone request had no name (`/clone-voice/` 401)."""

    default_message = _("Unmixr needs a name for the cloned voice.")


class CloneLimitReachedError(CloneError):
    """The account reached its clone limit (`/clone-voice/` 402)."""

    default_message = _("The Unmixr account has reached its limit of cloned voices.")


class CloneServerError(CloneError):
    """Unmixr had an internal error while cloning (`/clone-voice/` 500)."""

    default_message = _("Unmixr had an internal error while cloning; an admin may try again later.")
    default_transient = True


class CloneFailedError(CloneError):
    """Unmixr failed to create the clone (`/clone-voice/` 501)."""

    default_message = _("Unmixr failed to create the cloned voice; try a clearer recording.")


class InvalidApiKeyError(UnmixrError):
    """Unmixr rejected the bot's API key (a 401 or 403 without a documented meaning)."""

    default_message = _("Unmixr rejected the bot's API key; the bot's operator needs to check it.")


class RateLimitedError(UnmixrError):
    """Unmixr asked the bot to slow down (429, or a long Retry-After)."""

    default_message = _("Unmixr is busy right now; please try again in a minute.")
    default_transient = True


class ServiceUnavailableError(UnmixrError):
    """Unmixr (or a proxy in front of it) answered a 5xx without a JSON body."""

    default_message = _("Unmixr is unavailable right now; please try again in a moment.")
    default_transient = True


class UnmixrTimeoutError(UnmixrError):
    """Unmixr did not answer in time."""

    default_message = _("Unmixr took too long to answer; please try again.")
    default_transient = True


class UnmixrConnectionError(UnmixrError):
    """The bot could not reach Unmixr, or the connection broke."""

    default_message = _("The bot could not reach Unmixr; please try again in a moment.")
    default_transient = True


class MalformedResponseError(UnmixrError):
    """Unmixr answered something the bot cannot understand."""

    default_message = _("Unmixr sent an answer the bot could not understand; please try again later.")


class AudioDownloadError(UnmixrError):
    """The synthesised audio or a voice sample could not be downloaded."""

    default_message = _("The bot could not download the audio from Unmixr; please try again.")


class AudioTooLargeError(AudioDownloadError):
    """The audio to download is larger than the bot accepts."""

    default_message = _("The audio from Unmixr is larger than the bot accepts.")


class UnexpectedStatusError(UnmixrError):
    """Unmixr answered with a status the reference does not document for this endpoint."""

    default_message = _("Unmixr answered in an unexpected way; please try again later.")


def _mentions(message: str, *words: str) -> bool:
    """Tell whether the lower-cased message contains every word."""
    lowered = message.lower()
    return all(word in lowered for word in words)


def error_for(
    endpoint: str,
    code: int,
    upstream_message: str,
    *,
    json_body: bool,
    retry_after: float | None = None,
) -> UnmixrError:
    """Build the error for a failed response: `code` is the body's code, else the HTTP status."""
    error_class: type[UnmixrError] = UnexpectedStatusError
    if code >= 500 and not json_body:
        # A proxy's or load balancer's page, not Unmixr's own documented answer.
        error_class = ServiceUnavailableError
    elif code == 429:
        error_class = RateLimitedError
    elif code == 404:
        error_class = NotFoundError
    elif endpoint == TTS_ENDPOINT and code in _TTS_CODES:
        error_class = _TTS_CODES[code]
        if code == 400 and _mentions(upstream_message, "response_type"):
            error_class = InvalidResponseTypeError
        elif code == 401 and not _mentions(upstream_message, "too long"):
            error_class = InvalidApiKeyError
    elif endpoint == CLONE_ENDPOINT and code in _CLONE_CODES:
        error_class = _CLONE_CODES[code]
        if code == 401 and not _mentions(upstream_message, "name", "required"):
            error_class = InvalidApiKeyError
    elif code in (401, 403):
        error_class = InvalidApiKeyError
    elif code == 400:
        error_class = InvalidRequestError
    return error_class(
        code=code,
        endpoint=endpoint,
        detail=upstream_message or None,
        retry_after=retry_after,
    )


def error_for_status(
    endpoint: str,
    status: int,
    upstream_message: str = "",
    *,
    retry_after: float | None = None,
) -> UnmixrError:
    """Build the error for a failed response whose body is not Unmixr's (a gateway's or a proxy's).

    Judged by the HTTP status alone: Unmixr's table of codes does not apply. A gateway's 504 on `/short-tts/`
    or `/clone-voice/` is a timeout after sending (the work may go on and be charged: never retried); a 5xx
    otherwise is transient.
    """
    detail = upstream_message or None
    error: UnmixrError
    if status == 504 and endpoint in (TTS_ENDPOINT, CLONE_ENDPOINT):
        error = UnmixrTimeoutError(code=status, endpoint=endpoint, detail=detail or "gateway timeout")
        error.maybe_charged = True
        return error
    error_class: type[UnmixrError] = UnexpectedStatusError
    if status == 429:
        error_class = RateLimitedError
    elif status >= 500:
        error_class = ServiceUnavailableError
    elif status == 404:
        error_class = NotFoundError
    elif status in (401, 403):
        error_class = InvalidApiKeyError
    elif status == 400:
        error_class = InvalidRequestError
    return error_class(code=status, endpoint=endpoint, detail=detail, retry_after=retry_after)


_TTS_CODES: dict[int, type[UnmixrError]] = {
    400: InvalidRequestError,
    401: InputTooLongError,
    500: UpstreamServerError,
    501: OpenAIKeyRequiredError,
    502: InputTooLongError,
    503: MultipleVoicesNotSupportedError,
    504: InsufficientClonedCreditsError,
    505: InsufficientPrebuiltCreditsError,
    508: GenerationServerError,
    509: AudioGenerationFailedError,
}

_CLONE_CODES: dict[int, type[UnmixrError]] = {
    400: CloneAudioRequiredError,
    401: CloneNameRequiredError,
    402: CloneLimitReachedError,
    500: CloneServerError,
    501: CloneFailedError,
}
