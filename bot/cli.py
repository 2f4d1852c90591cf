"""The operator's command line: run the bot, check the set-up, sync commands, try the API."""

from __future__ import annotations

import argparse
import asyncio
import ctypes.util
import importlib.util
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl

from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")

MESSAGE_CONTENT_HELP = (
    "Discord refused the Message Content intent (gateway close 4014), so readouts are off. "
    "To read the readout channel aloud, enable 'Message Content Intent' on the Bot page of your application "
    "at https://discord.com/developers/applications and restart the bot; everything else works without it."
)


def apply_discord_endpoints(settings: Settings) -> None:
    """Point discord.py at another Discord (a local stand-in) when the settings ask for it."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


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
                await bot.start(settings.discord_token.get_secret_value())
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.error(MESSAGE_CONTENT_HELP)
            message_content = False


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
    except discord.LoginFailure:
        log.error("Discord refused DISCORD_TOKEN; copy the token again from the Bot page of your application.")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the bot's intents; check the Bot page of your application.")
        return 1
    stopping = holder.get("stopping")
    if stopping is not None:
        await stopping
    return 0


def _client(settings: Settings, session: aiohttp.ClientSession) -> Any:
    from bot.unmixr import UnmixrClient

    return UnmixrClient(
        session,
        settings.unmixr_api_key,
        base_url=settings.unmixr_base_url,
        openai_api_key=settings.openai_api_key,
        max_concurrency=settings.unmixr_max_concurrency,
    )


def voice_support() -> dict[str, bool]:
    """Whether each piece that voice playback needs is present."""
    return {
        "ffmpeg": shutil.which("ffmpeg") is not None,
        "ffprobe": shutil.which("ffprobe") is not None,
        "libopus": discord.opus.is_loaded() or ctypes.util.find_library("opus") is not None,
        "PyNaCl": importlib.util.find_spec("nacl") is not None,
        "davey": importlib.util.find_spec("davey") is not None,
    }


async def _check(settings: Settings) -> int:
    from bot.unmixr import UnmixrError

    problems: list[str] = []
    print(f"Configuration: OK (Unmixr at {settings.unmixr_base_url}, database {settings.database_path})")
    async with aiohttp.ClientSession() as session:
        try:
            balance = await _client(settings, session).credit_balance()
            print(
                f"Unmixr: OK, {balance.prebuilt_chars:,} prebuilt and {balance.cloned_chars:,} cloned characters left"
            )
        except UnmixrError as error:
            problems.append(f"Unmixr: {error.message}")
    support = voice_support()
    for name, present in support.items():
        print(f"{name}: {'OK' if present else 'missing'}")
    missing = [name for name, present in support.items() if not present]
    if missing:
        problems.append(
            "Voice playback will not work without "
            + ", ".join(missing)
            + " (apt-get install ffmpeg libopus0; pip install 'discord.py[voice]')."
        )
    problems.extend(await _check_discord(settings))
    for problem in problems:
        print(f"Problem: {problem}")
    print("All checks passed." if not problems else f"{len(problems)} problem(s) found.")
    return 1 if problems else 0


async def _check_discord(settings: Settings) -> list[str]:
    apply_discord_endpoints(settings)
    # Only logs in (no gateway); the guilds intent just keeps discord.py from warning about its absence.
    client = discord.Client(intents=discord.Intents(guilds=True))
    try:
        await client.login(settings.discord_token.get_secret_value())
        info = await client.application_info()
    except discord.LoginFailure:
        return ["Discord refused DISCORD_TOKEN; copy it again from the Bot page of your application."]
    except (discord.HTTPException, aiohttp.ClientError) as error:
        return [f"Discord could not be reached ({type(error).__name__})."]
    finally:
        await client.close()
    print(f"Discord: OK, logged in as application {info.name} ({info.id})")
    flags = info.flags
    if not (flags.gateway_message_content or flags.gateway_message_content_limited):
        print("Message Content intent: not enabled; readouts will be off. " + MESSAGE_CONTENT_HELP.split(". ", 1)[1])
    else:
        print("Message Content intent: enabled")
    return []


async def _voices(settings: Settings, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        page = await _client(settings, session).voice_list(
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
    for voice in page.results:
        print(
            f"{voice.uuid}  {voice.character}  {voice.gender or '-'}  {voice.language or '-'}  {voice.quality or '-'}"
        )
    print(f"page {page.current_page} of {page.total_page}, {page.count} voices")
    return 0


async def _find_voice(client: Any, name_or_id: str) -> Any:
    from bot.catalogue import rank
    from bot.unmixr import UnmixrError

    try:
        return await client.voice_details(name_or_id)
    except UnmixrError:
        log.debug("%r is not a voice uuid; searching by name", name_or_id)
    for category in ("prebuilt-voices", None):
        page = await client.voice_list(category=category, query=name_or_id, page_size=100)
        ranked = rank(name_or_id, page.results)
        if ranked:
            return ranked[0]
    return None


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    from bot.audio import concat
    from bot.text import MAX_REQUEST_CHARS, split_text
    from bot.unmixr import TTSRequest

    async with aiohttp.ClientSession() as session:
        client = _client(settings, session)
        voice = await _find_voice(client, args.voice)
        if voice is None:
            print(f"No voice called {args.voice!r}; try `python -m bot voices --query NAME`.")
            return 1
        chunks = split_text(args.text, MAX_REQUEST_CHARS)
        if not chunks:
            print("Nothing to say: the text is empty.")
            return 1
        requests = [
            TTSRequest(
                text=chunk,
                voice_id=voice.uuid,
                language=args.language,
                speaking_rate=args.rate,
                speaking_pitch=args.pitch,
                speaking_volume=args.volume,
                intensity=args.intensity,
                output_type=args.format,
            )
            for chunk in chunks
        ]
        results = await asyncio.gather(*(client.short_tts(request) for request in requests))
    audio = results[0].audio if len(results) == 1 else await concat([r.audio for r in results], args.format)
    await asyncio.to_thread(Path(args.output).write_bytes, audio)
    seconds = sum(r.duration or 0 for r in results)
    credits = sum(r.credit_usage.prebuilt + r.credit_usage.voice_cloning for r in results)
    print(f"Wrote {args.output}: {voice.character}, {seconds:.1f} s, {credits} credits")
    return 0


async def _balance(settings: Settings) -> int:
    async with aiohttp.ClientSession() as session:
        balance = await _client(settings, session).credit_balance()
    print(f"prebuilt characters: {balance.prebuilt_chars:,}")
    print(f"cloned characters:   {balance.cloned_chars:,}")
    return 0


async def _sync(settings: Settings, guild_id: int | None) -> int:
    from bot.bot import UnmixrBot

    apply_discord_endpoints(settings)
    bot = UnmixrBot(settings, message_content=False)
    async with bot:
        await bot.login(settings.discord_token.get_secret_value())
        if guild_id is not None:
            guild = discord.Object(guild_id)
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
            print(f"Synced {len(synced)} commands to server {guild_id} (visible at once).")
        else:
            synced = await bot.tree.sync()
            print(f"Synced {len(synced)} global commands (Discord may take up to an hour to show changes).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="The Unmixr text-to-speech Discord bot.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("check", help="check the configuration, Unmixr, Discord and voice support")
    sync = commands.add_parser("sync", help="register the slash commands with Discord")
    sync.add_argument("--guild", type=int, help="sync to one server only (instant) instead of globally")
    voices = commands.add_parser("voices", help="list voices")
    voices.add_argument("--category")
    voices.add_argument("--query")
    voices.add_argument("--language")
    voices.add_argument("--gender", choices=["any", "male", "female", "child"])
    voices.add_argument("--capability")
    voices.add_argument("--style")
    voices.add_argument("--use-case")
    voices.add_argument("--page", type=int)
    voices.add_argument("--page-size", type=int)
    say = commands.add_parser("say", help="synthesise text to an audio file")
    say.add_argument("text")
    say.add_argument("--voice", required=True, help="a voice name or uuid")
    say.add_argument("-o", "--output", required=True, help="the file to write")
    say.add_argument("--language")
    say.add_argument("--rate")
    say.add_argument("--pitch")
    say.add_argument("--volume")
    say.add_argument("--intensity", type=int)
    say.add_argument("--format", choices=["mp3", "wav"], default="mp3")
    commands.add_parser("balance", help="show the account's credit balance")
    commands.add_parser("migrate-db", help="copy the SQLite database (DATABASE_PATH) into PostgreSQL (DATABASE_URL)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    from bot.logs import setup_logging

    args = build_parser().parse_args(argv)
    if args.command == "migrate-db":
        from bot.storage.migrate import main as migrate_database

        return migrate_database()
    try:
        settings = load_settings()
    except SettingsError as error:
        # Errors go to stderr, so scripts reading a command's output never mistake them for it.
        print(error, file=sys.stderr)
        return 2
    secrets = [settings.discord_token.get_secret_value(), settings.unmixr_api_key.get_secret_value()]
    if settings.openai_api_key is not None:
        secrets.append(settings.openai_api_key.get_secret_value())
    if settings.database_url is not None:
        from bot.storage import url_secrets

        secrets.extend(url_secrets(settings.database_url.get_secret_value()))
    setup_logging(settings.log_level if args.command in (None, "run") else "WARNING", secrets)
    from bot.storage import StorageError
    from bot.unmixr import UnmixrError

    command = args.command or "run"
    try:
        if command == "run":
            return asyncio.run(_serve(settings))
        if command == "check":
            return asyncio.run(_check(settings))
        if command == "sync":
            return asyncio.run(_sync(settings, args.guild))
        if command == "voices":
            return asyncio.run(_voices(settings, args))
        if command == "say":
            return asyncio.run(_say(settings, args))
        return asyncio.run(_balance(settings))
    except UnmixrError as error:
        print(f"Unmixr: {error.message}", file=sys.stderr)
        return 1
    except StorageError as error:
        print(f"Database: {error}", file=sys.stderr)
        return 1
    except discord.LoginFailure:
        print("Discord refused DISCORD_TOKEN; copy it again from the Bot page of your application.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
