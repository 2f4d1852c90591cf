"""Errors whose message is the one-sentence answer a Discord member sees."""

from __future__ import annotations

from discord import app_commands

from bot.markdown import as_typed
from bot.wording import number


class UserFacingError(Exception):
    """A problem with what the member asked for; `str(error)` is the answer to show, one sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NothingToSayError(UserFacingError):
    """The text is empty or has nothing speakable in it."""

    def __init__(self) -> None:
        super().__init__("There is nothing to say: give some text with at least one letter or number.")


class TextTooLongError(UserFacingError):
    """The text is longer than the server's `max-length`."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"That text is {number(length)} characters long but this server's limit is {number(limit)}; "
            "shorten it or ask an admin to raise `/settings max-length`."
        )
        self.length = length
        self.limit = limit


class UnknownVoiceError(UserFacingError):
    """No voice of the catalogue matches the given name or uuid."""

    def __init__(self, query: str, suggestions: list[str]) -> None:
        shown = as_typed(query if len(query) <= 80 else query[:77] + "...")
        if suggestions:
            names = ", ".join(f"**{as_typed(name)}**" for name in suggestions)
            message = f"There is no voice called “{shown}”; did you mean {names}? (`/voices` lists them all.)"
        else:
            message = f"There is no voice called “{shown}”; use `/voices` to find one."
        super().__init__(message)
        self.query = query
        self.suggestions = suggestions


class InvalidOptionError(UserFacingError):
    """An option's value is outside what the voice or the API accepts."""


class NotAdminError(app_commands.CheckFailure, UserFacingError):
    """A member without Manage Server used an admin command."""

    def __init__(self) -> None:
        UserFacingError.__init__(self, "This needs the Manage Server permission; ask a server admin to do it for you.")


class GuildOnlyError(app_commands.CheckFailure, UserFacingError):
    """A command was used outside a server."""

    def __init__(self) -> None:
        UserFacingError.__init__(self, "This bot works in servers only; use its commands in a server channel.")
