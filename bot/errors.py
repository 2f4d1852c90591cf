"""Errors whose message is the one-sentence answer a Discord member sees, in their language."""

from __future__ import annotations

from discord import app_commands

from bot.i18n import Message, _, command, joined, listing, pgettext
from bot.markdown import as_typed


class UserFacingError(Exception):
    """A problem with what the member asked for; `text` is the answer to show, one sentence, in the member's
    language; `message` (and `str(error)`) is the same sentence in English, for logs and the command line."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.text = message
        self.message = str(message)


class NothingToSayError(UserFacingError):
    """The text is empty or has nothing speakable in it."""

    def __init__(self) -> None:
        super().__init__(_("There is nothing to say: give some text with at least one letter or number."))


class TextTooLongError(UserFacingError):
    """The text is longer than the server's `max-length`."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            _(
                "That text is {length} characters long but this server's limit is {limit}; "
                "shorten it or ask an admin to raise {command}.",
                length=length,
                limit=limit,
                command=command("settings max-length"),
            )
        )
        self.length = length
        self.limit = limit


class UnknownVoiceError(UserFacingError):
    """No voice of the catalogue matches the given name or uuid."""

    def __init__(self, query: str, suggestions: list[str]) -> None:
        shown = as_typed(query if len(query) <= 80 else query[:77] + "...")
        if suggestions:
            names = listing([f"**{as_typed(name)}**" for name in suggestions])
            message = _(
                "There is no voice called “{query}”; did you mean {names}? ({voices} lists them all.)",
                query=shown,
                names=names,
                voices=command("voices"),
            )
        else:
            message = _(
                "There is no voice called “{query}”; use {voices} to find one.", query=shown, voices=command("voices")
            )
        super().__init__(message)
        self.query = query
        self.suggestions = suggestions


class InvalidOptionError(UserFacingError):
    """An option's value is outside what the voice or the API accepts."""


class NotAdminError(app_commands.CheckFailure, UserFacingError):
    """A member without Manage Server used an admin command."""

    def __init__(self) -> None:
        UserFacingError.__init__(
            self, _("This needs the Manage Server permission; ask a server admin to do it for you.")
        )


class GuildOnlyError(app_commands.CheckFailure, UserFacingError):
    """A command was used outside a server."""

    def __init__(self) -> None:
        UserFacingError.__init__(self, _("This bot works in servers only; use its commands in a server channel."))


# Named as members see them: a group has no mention of its own (reference.mdx, "Message Formatting"), nor has a
# message command. Outside the sentence: Babel's extractor loses a marker nested in another's arguments.
_PREFERENCES = pgettext("command", "preferences")
_READ_ALOUD = pgettext("command", "Read aloud")


class ServerOnlyError(app_commands.CheckFailure, UserFacingError):
    """Something that needs a server with the bot was asked for through a user install (PRODUCT.md, Reach)."""

    def __init__(self, message: Message) -> None:
        UserFacingError.__init__(self, message)

    @classmethod
    def command(cls, name: str) -> ServerOnlyError:
        """A whole command that is not offered to user installs (`name` as typed, with its subcommand)."""
        return cls(
            _(
                "{command} works only in servers that have the bot; here you can use {say}, {voices}, {preferences} "
                "and {read_aloud}.",
                command=command(name),
                say=command("say"),
                voices=command("voices"),
                preferences=joined(["`/", _PREFERENCES, "`"]),
                read_aloud=joined(["**", _READ_ALOUD, "**"]),
            )
        )
