"""The operator's command line: run the bot, check the set-up, sync commands, try the API.

Results go to stdout. Every failure is one line on stderr, never a traceback: exit status 1, or 2 for bad usage
and missing settings.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn

import aiohttp
import discord
import yarl

from bot.connect import (
    MESSAGE_CONTENT_HELP,
    DiscordSilentError,
    apply_discord_endpoints,
    connect_within,
    login_within,
    unmixr_client,
)
from bot.settings import DEFAULT_BASE_URL, Settings, SettingsError, load_settings
from bot.wording import counted, number

if TYPE_CHECKING:
    from bot.unmixr import UnmixrError

log = logging.getLogger("bot")

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

LOGIN_REFUSED = "Discord refused DISCORD_TOKEN; copy it again from the Bot page of your application."


class CommandLineError(Exception):
    """A failure the command line reports as its one line, with its exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def run_bot(settings: Settings, *, on_bot: Callable[[Any], None] | None = None) -> None:
    """Run the bot until it is closed; without the Message Content intent it runs on without readouts."""
    from bot.bot import UnmixrBot

    apply_discord_endpoints(settings)
    message_content = True
    while True:
        bot = UnmixrBot(settings, message_content=message_content)
        if on_bot is not None:
            on_bot(bot)
        try:
            async with bot:
                await login_within(bot, settings.discord_token.get_secret_value())
                # With PostgreSQL, no shard is identified before this process holds its lease.
                if await bot.claim_shards():
                    await connect_within(bot, bot.gateway_answered)
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.error(MESSAGE_CONTENT_HELP)
            message_content = False


# ----- failures as one line


def _reason(error: object) -> str:
    """An error's own words on one line (its type when it has none)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def unmixr_line(error: UnmixrError, settings: Settings | None = None) -> str:
    """An Unmixr failure told to the operator, who can act on it (a member gets the error's own sentence)."""
    from bot.unmixr import (
        InsufficientClonedCreditsError,
        InsufficientPrebuiltCreditsError,
        InvalidApiKeyError,
        OpenAIKeyRequiredError,
        ServiceUnavailableError,
        UnmixrConnectionError,
        UnmixrTimeoutError,
    )

    where = settings.unmixr_base_url if settings is not None else DEFAULT_BASE_URL
    if isinstance(error, InvalidApiKeyError):
        return (
            f"Unmixr at {where} rejected UNMIXR_API_KEY; copy the key again from "
            "https://app.unmixr.com/manage-api-keys/ (the API needs an eligible Unmixr plan)."
        )
    if isinstance(error, OpenAIKeyRequiredError):
        return "That voice needs an OpenAI API key: set OPENAI_API_KEY, or pick another voice."
    if isinstance(error, InsufficientPrebuiltCreditsError):
        return "The Unmixr account has run out of prebuilt-voice characters; add credits to it, then try again."
    if isinstance(error, InsufficientClonedCreditsError):
        return "The Unmixr account has run out of cloned-voice characters; add credits to it, then try again."
    if isinstance(error, UnmixrConnectionError):
        return f"Unmixr could not be reached at {where} ({error.detail}); check the network and UNMIXR_BASE_URL."
    if isinstance(error, UnmixrTimeoutError):
        return f"Unmixr at {where} did not answer in time; try again in a moment."
    if isinstance(error, ServiceUnavailableError):
        return f"Unmixr at {where} is unavailable (HTTP {error.code}); try again in a moment."
    return f"Unmixr: {error.message}"


def explain(error: BaseException, settings: Settings | None = None) -> tuple[str, int] | None:
    """The one line and exit status for a known kind of failure, or None for an unexpected one."""
    from bot.cli_say import OutputError
    from bot.errors import UserFacingError
    from bot.gateway_closes import close_code_line
    from bot.markdown import plain
    from bot.monitoring import StartupError
    from bot.storage import StorageError
    from bot.unmixr import UnmixrError

    if isinstance(error, CommandLineError):
        return error.message, error.status
    if isinstance(error, OutputError):
        return error.message, EXIT_USAGE if error.usage else EXIT_FAILURE
    if isinstance(error, UserFacingError):
        # The same sentence a member gets, without Discord's markdown.
        return plain(error.message).replace("`/voices`", "`python -m bot voices`"), EXIT_FAILURE
    if isinstance(error, UnmixrError):
        return unmixr_line(error, settings), EXIT_FAILURE
    if isinstance(error, DiscordSilentError):
        return error.message, EXIT_FAILURE
    if isinstance(error, StartupError):
        return str(error), EXIT_FAILURE
    if isinstance(error, discord.LoginFailure):
        return LOGIN_REFUSED, EXIT_FAILURE
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return "Discord refused the bot's intents; check the Bot page of your application.", EXIT_FAILURE
    if (line := close_code_line(error)) is not None:
        return line, EXIT_FAILURE
    if isinstance(error, discord.HTTPException):
        return f"Discord refused the request: {error.status} {_reason(error.text or error)}.", EXIT_FAILURE
    if isinstance(error, discord.GatewayNotFound | discord.ConnectionClosed | aiohttp.ClientError):
        # discord.py's own requests are the only ones that fail with a bare aiohttp error: Unmixr's are wrapped.
        origin = yarl.URL(discord.http.Route.BASE).origin()
        return f"Discord could not be reached at {origin} ({_reason(error)}); check the network.", EXIT_FAILURE
    if isinstance(error, StorageError | sqlite3.Error):
        return f"Database: {_reason(error)}.", EXIT_FAILURE
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or _reason(error)}{where}.", EXIT_FAILURE
    return None


def _fail(message: str, status: int, secrets: Sequence[str] = ()) -> int:
    from bot.masking import mask_secrets

    print(mask_secrets(message, secrets), file=sys.stderr)
    return status


# ----- run


def _install_signal_handlers(holder: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        bot = holder.get("bot")
        if bot is not None and not bot.is_closed():
            log.info("stopping: finishing in-flight replies")
            holder["stopping"] = loop.create_task(bot.close())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


async def _serve(settings: Settings) -> int:
    holder: dict[str, Any] = {}
    _install_signal_handlers(holder)
    try:
        await run_bot(settings, on_bot=lambda bot: holder.__setitem__("bot", bot))
    except Exception as error:
        known = explain(error, settings)
        if known is None:
            log.exception("the bot stopped on an unexpected error")
            return EXIT_FAILURE
        log.error("%s", known[0])
        return known[1]
    stopping = holder.get("stopping")
    if stopping is not None:
        await stopping
    return 0


# ----- operator tools


async def _check(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_check import check

    return await check(settings, explain=functools.partial(explain, settings=settings))


async def _voices(settings: Settings, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        page = await unmixr_client(settings, session).voice_list(
            category=args.category,
            query=args.query,
            language=args.language,
            gender=args.gender,
            capabilities=args.capability,
            styles=args.style,
            use_case=args.use_case,
            page=args.page,
            page_size=args.page_size,
        )
    rows = [("uuid", "name", "gender", "language", "quality")]
    rows += [
        (voice.uuid, voice.character or "-", voice.gender or "-", voice.language or "-", voice.quality or "-")
        for voice in page.results
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    if page.results:
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    total = counted(page.count or 0, "{count} voice", "{count} voices")
    print(f"page {page.current_page or 1} of {page.total_page or 1}, {total}")
    return 0


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_say import say

    print(await say(settings, args))
    return 0


async def _balance(settings: Settings, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        balance = await unmixr_client(settings, session).credit_balance()
    print(f"prebuilt characters: {number(balance.prebuilt_chars)}")
    print(f"cloned characters:   {number(balance.cloned_chars)}")
    return 0


async def _sync(settings: Settings, args: argparse.Namespace) -> int:
    from bot.bot import UnmixrBot

    guild_id: int | None = args.guild
    apply_discord_endpoints(settings)
    # Only the command tree is needed: no monitoring port (a running bot holds it), no development sync.
    bot = UnmixrBot(settings.model_copy(update={"metrics_port": None, "dev_guild_id": None}), message_content=False)
    async with bot:
        await login_within(bot, settings.discord_token.get_secret_value())
        try:
            if guild_id is not None:
                guild = discord.Object(guild_id)
                bot.tree.copy_global_to(guild=guild)
                synced = await bot.tree.sync(guild=guild)
                done = counted(len(synced), "Synced {count} command", "Synced {count} commands")
                print(f"{done} to server {guild_id} (visible at once).")
            else:
                synced = await bot.tree.sync()
                done = counted(len(synced), "Synced {count} global command", "Synced {count} global commands")
                print(f"{done} (Discord may take up to an hour to show changes).")
                if settings.user_installs:
                    print("/say, /voices, /preferences and Read aloud also work from users' own accounts.")
        except discord.Forbidden as error:
            where = f"server {guild_id}" if guild_id is not None else "the application"
            raise CommandLineError(
                f"Discord refused to sync the commands to {where} ({error.status} {_reason(error.text or error)}): "
                "invite the bot there with the applications.commands scope (see the README's invite link)."
            ) from None
        except discord.HTTPException as error:
            if guild_id is None and settings.user_installs and "integration_types" in str(error.text):
                # application-commands.mdx: a command may name an installation context only once the application
                # supports it.
                raise CommandLineError(
                    "Discord refused the commands for user installs: tick User Install under Installation > "
                    "Installation Contexts of your application in the Discord developer portal, then sync again "
                    "(or unset USER_INSTALL_DAILY_BUDGET)."
                ) from None
            raise
    return 0


# ----- the command line

_COMMANDS: Final[dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]]] = {
    "check": _check,
    "sync": _sync,
    "voices": _voices,
    "say": _say,
    "balance": _balance,
}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the message and where to read the usage."""

    def error(self, message: str) -> NoReturn:
        """Print one line on stderr and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _choices_help(what: str, values: Sequence[str]) -> str:
    return f"{what}: one of {', '.join(values)}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    from bot.choices import CAPABILITY_CHOICES, CATEGORY_CHOICES, GENDER_CHOICES, STYLE_CHOICES, USE_CASE_CHOICES

    categories = [choice.value for choice in CATEGORY_CHOICES]
    genders = [choice.value for choice in GENDER_CHOICES]
    capabilities = [choice.value for choice in CAPABILITY_CHOICES]
    styles = [choice.value for choice in STYLE_CHOICES]
    use_cases = [choice.value for choice in USE_CASE_CHOICES]

    parser = _Parser(
        prog="python -m bot",
        description="The Unmixr text-to-speech Discord bot; without a command, runs the bot.",
        epilog="Settings come from the environment and .env (see .env.example). Every failure is one line on "
        "stderr: exit status 1, or 2 for bad usage or missing settings.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    commands.add_parser("run", help="run the bot (the default)", description="Run the bot until SIGTERM or Ctrl-C.")
    commands.add_parser(
        "check",
        help="check the configuration, Unmixr, Discord and voice support",
        description="Check the configuration, the Unmixr key and credits, the Discord login and intents, and "
        "what voice playback needs (ffmpeg, libopus, PyNaCl, davey). Problems go to stderr; exit status 1 if any.",
    )
    sync = commands.add_parser(
        "sync",
        help="register the slash commands with Discord",
        description="Register the slash commands globally (Discord may take up to an hour) or on one server.",
    )
    sync.add_argument(
        "--guild", type=_positive, metavar="SERVER_ID", help="sync to this server only (instant) instead of globally"
    )
    voices = commands.add_parser(
        "voices", help="list voices from Unmixr's catalogue", description="List one page of Unmixr's voices."
    )
    voices.add_argument(
        "--category",
        choices=categories,
        metavar="CATEGORY",
        help=_choices_help("the voice category (default prebuilt-voices)", categories),
    )
    voices.add_argument("--query", metavar="NAME", help="voices whose name contains this")
    voices.add_argument("--language", metavar="CODE", help="a language or locale, such as en or en-US")
    voices.add_argument("--gender", choices=genders, metavar="GENDER", help=_choices_help("gender", genders))
    voices.add_argument(
        "--capability", choices=capabilities, metavar="CAPABILITY", help=_choices_help("capability", capabilities)
    )
    voices.add_argument("--style", choices=styles, metavar="STYLE", help=_choices_help("speaking style", styles))
    voices.add_argument("--use-case", choices=use_cases, metavar="USE_CASE", help=_choices_help("use case", use_cases))
    voices.add_argument("--page", type=_positive, metavar="N", help="the page to show (default 1)")
    voices.add_argument("--page-size", type=_positive, metavar="N", help="voices per page (Unmixr's default 12)")
    say = commands.add_parser(
        "say",
        help="synthesise text to an audio file",
        description="Synthesise text into an audio file with the bot's own checks, budget ledger and audio cache: "
        "everything is checked before anything is spent, and a repeat is served from the cache for 0 credits.",
    )
    say.add_argument("text", help="what to say (at most 6,000 characters)")
    say.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the audio file to write; its extension (.mp3 or .wav) sets the format",
    )
    say.add_argument(
        "--voice",
        metavar="NAME_OR_UUID",
        help="a voice name or uuid (default DEFAULT_VOICE_ID, else the first prebuilt voice for the language)",
    )
    say.add_argument(
        "--format", choices=["mp3", "wav"], help="the audio format, whatever the extension (needed for other ones)"
    )
    say.add_argument("--language", metavar="CODE", help="a language or locale the voice speaks, such as en-US")
    say.add_argument("--rate", help="speed: -100%% to +100%%, or x-slow, slow, medium, fast, x-fast, default")
    say.add_argument("--pitch", help="pitch: -50%% to +50%%, or x-low, low, medium, high, x-high, default")
    say.add_argument(
        "--volume", help="volume: -100%% to +100%%, or silent, x-soft, soft, medium, loud, x-loud, default"
    )
    say.add_argument(
        "--intensity", type=int, metavar="N", help="style intensity from -100 to 100 (voices that support it)"
    )
    commands.add_parser(
        "balance", help="show the account's credit balance", description="Show the Unmixr credits left."
    )
    commands.add_parser(
        "migrate-db",
        help="copy the SQLite database (DATABASE_PATH) into PostgreSQL (DATABASE_URL)",
        description="Copy every row of the SQLite file at DATABASE_PATH into the PostgreSQL database at "
        "DATABASE_URL (both read from the environment, so the password is never on a command line). A rerun "
        "adds only the rows that are missing.",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    from bot.logs import setup_logging

    args = build_parser().parse_args(argv)
    command = args.command or "run"
    if command == "migrate-db":
        # Needs only the two database settings, not the bot's tokens.
        from bot.storage.migrate import main as migrate_database

        return migrate_database()
    try:
        settings = load_settings()
    except SettingsError as error:
        return _fail(str(error), EXIT_USAGE)
    secrets = [settings.discord_token.get_secret_value(), settings.unmixr_api_key.get_secret_value()]
    if settings.openai_api_key is not None:
        secrets.append(settings.openai_api_key.get_secret_value())
    if settings.database_url is not None:
        from bot.storage import url_secrets

        secrets.extend(url_secrets(settings.database_url.get_secret_value()))
    if command == "run":
        setup_logging(settings.log_level, secrets)
        return asyncio.run(_serve(settings))
    # The tools speak in their own lines; the log is for diagnosis only (LOG_LEVEL=DEBUG).
    setup_logging("DEBUG" if settings.log_level == "DEBUG" else "CRITICAL", secrets)
    try:
        return asyncio.run(_COMMANDS[command](settings, args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        log.debug("%s failed", command, exc_info=error)
        known = explain(error, settings)
        if known is None:
            return _fail(f"Unexpected error ({type(error).__name__}): {_reason(error)}", EXIT_FAILURE, secrets)
        return _fail(known[0], known[1], secrets)
