"""`python -m bot check`: try everything the bot will use before it starts, without spending a credit.

Each step prints one line on stdout ("Name: OK, ..." or what it found); each problem is one line on stderr. The
steps follow what the bot opens at start: its database (SQLite or DATABASE_URL), the audio cache, the monitoring
port, Unmixr (the key, the credits, DEFAULT_VOICE_ID), voice support, then Discord (the token, the intents,
SHARD_COUNT, DEV_GUILD_ID and ALERT_CHANNEL_ID).
"""

from __future__ import annotations

import asyncio
import ctypes.util
import errno
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import aiohttp
import discord

from bot.connect import MESSAGE_CONTENT_HELP, apply_discord_endpoints, login_within, unmixr_client
from bot.settings import Settings

Explain = Callable[[BaseException], "tuple[str, int] | None"]

# How long check waits for a running bot's /healthz when the monitoring port is taken.
HEALTHZ_TIMEOUT: Final = 3.0


def voice_support() -> dict[str, bool]:
    """Whether each piece that voice playback needs is present."""
    return {
        "ffmpeg": shutil.which("ffmpeg") is not None,
        "ffprobe": shutil.which("ffprobe") is not None,
        "libopus": discord.opus.is_loaded() or ctypes.util.find_library("opus") is not None,
        "PyNaCl": importlib.util.find_spec("nacl") is not None,
        "davey": importlib.util.find_spec("davey") is not None,
    }


def problems_found(count: int) -> str:
    """The closing line of a check that found problems."""
    if count == 1:
        return "1 problem found."
    return f"{count:,} problems found."


async def check(settings: Settings, *, explain: Explain) -> int:
    """Run every step; returns the exit status (1 when any problem was found)."""
    problems: list[str] = []
    print(f"Configuration: OK (Unmixr at {settings.unmixr_base_url})")
    problems.extend(await check_database(settings))
    problems.extend(await asyncio.to_thread(check_folder, "Audio cache", "AUDIO_CACHE_DIR", settings.audio_cache_dir))
    problems.extend(await check_monitoring(settings))
    problems.extend(await check_unmixr(settings, explain))
    problems.extend(check_voice_support())
    problems.extend(await check_discord(settings, explain))
    for problem in problems:
        print(f"Problem: {problem}", file=sys.stderr)
    if problems:
        print(problems_found(len(problems)))
        return 1
    print("All checks passed.")
    return 0


async def check_database(settings: Settings) -> list[str]:
    """Connect to the database the bot will use and read its schema version; nothing is created or migrated."""
    from bot.storage import LATEST_VERSION, StorageError
    from bot.storage.backends import open_backend

    if settings.database_url is None:
        path = settings.database_path
        if not await asyncio.to_thread(path.exists):
            # The bot creates the file (and its folder) at start: check that it can.
            return await asyncio.to_thread(check_folder, "Database", "DATABASE_PATH", path, file=True)
    try:
        backend = await open_backend(settings.database_location)
    except (StorageError, OSError) as error:
        return [f"Database: {_reason(error)}."]
    try:
        version = await backend.schema_version()
        where = backend.description
    except (StorageError, OSError) as error:
        return [f"Database: {_reason(error)}."]
    finally:
        await backend.close()
    if version > LATEST_VERSION:
        return [
            f"Database: {where} has schema version {version}, newer than this bot knows ({LATEST_VERSION}); "
            "upgrade the bot before starting it."
        ]
    if version < LATEST_VERSION:
        print(f"Database: OK, {where}, schema version {version} (the bot migrates it to {LATEST_VERSION} at start)")
    else:
        print(f"Database: OK, {where}, schema version {version}")
    return []


def check_folder(what: str, setting: str, path: Path, *, file: bool = False) -> list[str]:
    """Whether the bot can create or write `path` (a folder, or with `file` a file in one); blocking."""
    folder = path.parent if file else path
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [f"{what}: {setting} {path} cannot be created: {existing} is not a folder."]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"{what}: {setting} {path} cannot be written: permission denied on {existing}."]
    if file and path.exists() and not os.access(path, os.W_OK):
        return [f"{what}: {setting} {path} cannot be written: permission denied."]
    if existing == folder and (not file or path.exists()):
        print(f"{what}: OK, {path.absolute()}")
    else:
        print(f"{what}: OK, {path.absolute()} (created at start)")
    return []


async def check_monitoring(settings: Settings) -> list[str]:
    """Whether the bot can serve /healthz and /metrics on METRICS_HOST:METRICS_PORT (a running bot may hold it)."""
    if settings.metrics_port is None:
        print("Monitoring: off (METRICS_PORT is not set)")
        return []
    host, port = settings.metrics_host, settings.metrics_port
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(asyncio.Protocol, host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE and await _serves_healthz(host, port):
            print(f"Monitoring: OK, a running bot serves http://{host}:{port}/healthz")
            return []
        reason = os.strerror(error.errno) if error.errno else _reason(error)
        return [
            f"Monitoring: cannot serve on METRICS_HOST {host} port {port} ({reason}); choose a free METRICS_PORT, "
            "or leave it unset to turn monitoring off."
        ]
    server.close()
    await server.wait_closed()
    print(f"Monitoring: OK, http://{host}:{port}/healthz and /metrics")
    return []


async def _serves_healthz(host: str, port: int) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HEALTHZ_TIMEOUT)) as session:
            async with session.get(f"http://{host}:{port}/healthz") as response:
                body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") in ("ok", "fail")


async def check_unmixr(settings: Settings, explain: Explain) -> list[str]:
    """The key and the credits left; DEFAULT_VOICE_ID when set. No request here costs a credit."""
    from bot.unmixr import NotFoundError, UnmixrError

    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        client = unmixr_client(settings, session)
        try:
            balance = await client.credit_balance()
        except UnmixrError as error:
            return [_line(error, explain)]
        print(f"Unmixr: OK, {balance.prebuilt_chars:,} prebuilt and {balance.cloned_chars:,} cloned characters left")
        if balance.prebuilt_chars < settings.low_balance_characters:
            print(
                f"Unmixr: note, fewer prebuilt characters than LOW_BALANCE_CHARACTERS "
                f"({settings.low_balance_characters:,}): the bot will warn about it"
            )
        voice_id = settings.default_voice_id
        if voice_id is not None:
            try:
                voice = await client.voice_details(voice_id)
            except NotFoundError:
                problems.append(
                    f"DEFAULT_VOICE_ID {voice_id} is not a voice on Unmixr; the bot would use the first prebuilt "
                    "voice instead. Pick a uuid from `python -m bot voices`, or leave it empty."
                )
            except UnmixrError as error:
                problems.append(_line(error, explain))
            else:
                if voice.is_available:
                    print(f"DEFAULT_VOICE_ID: OK, {voice.character or voice.uuid}")
                else:
                    problems.append(
                        f"DEFAULT_VOICE_ID {voice_id} ({voice.character}) is no longer available on Unmixr; "
                        "pick another uuid from `python -m bot voices`, or leave it empty."
                    )
    if settings.openai_api_key is not None:
        print("OPENAI_API_KEY: set (Unmixr checks it only when an OpenAI voice speaks)")
    return problems


def check_voice_support() -> list[str]:
    """Whether ffmpeg, libopus, PyNaCl and davey are there for voice playback, and DAVE is offered."""
    from bot.voice_internals import dave_protocol_version

    support = voice_support()
    for name, present in support.items():
        print(f"{name}: {'OK' if present else 'missing'}")
    problems: list[str] = []
    # As far as anyone can tell without joining a voice channel: what discord.py would offer in IDENTIFY.
    dave = dave_protocol_version()
    if dave >= 1:
        print(f"DAVE (end-to-end encrypted voice): OK, protocol version {dave}")
    else:
        print("DAVE (end-to-end encrypted voice): missing")
        problems.append(
            "Discord closes voice connections without DAVE end-to-end encryption (close code 4017): "
            "update discord.py and davey (pip install -U 'discord.py[voice]' davey)."
        )
    missing = [name for name, present in support.items() if not present]
    if missing:
        problems.append(
            "Voice playback will not work without "
            + ", ".join(missing)
            + " (apt-get install ffmpeg libopus0; pip install 'discord.py[voice]')."
        )
    return problems


async def check_discord(settings: Settings, explain: Explain) -> list[str]:
    """Log in (no gateway session): the token, the intents, SHARD_COUNT, DEV_GUILD_ID and ALERT_CHANNEL_ID."""
    apply_discord_endpoints(settings)
    # Only logs in; the guilds intent just keeps discord.py from warning about its absence.
    client = discord.Client(intents=discord.Intents(guilds=True))
    problems: list[str] = []
    try:
        await login_within(client, settings.discord_token.get_secret_value())
        info = await client.application_info()
        print(f"Discord: OK, logged in as application {info.name} ({info.id})")
        flags = info.flags
        if not (flags.gateway_message_content or flags.gateway_message_content_limited):
            print(
                "Message Content intent: not enabled; readouts will be off. " + MESSAGE_CONTENT_HELP.split(". ", 1)[1]
            )
        else:
            print("Message Content intent: enabled")
        problems.extend(await _check_shards(client, settings))
        if settings.dev_guild_id is not None:
            problems.extend(await _check_reachable(client.fetch_guild, "DEV_GUILD_ID", settings.dev_guild_id))
        if settings.alert_channel_id is not None:
            problems.extend(await _check_reachable(client.fetch_channel, "ALERT_CHANNEL_ID", settings.alert_channel_id))
    except Exception as error:
        known = explain(error)
        if known is None:
            raise
        problems.append(known[0])
    finally:
        await client.close()
    return problems


async def _check_shards(client: discord.Client, settings: Settings) -> list[str]:
    recommended, _url, _limits = await client.http.get_bot_gateway()
    if settings.shard_count is None:
        print(f"Shards: OK, Discord recommends {recommended} and the bot will run that many")
        return []
    if settings.shard_count < recommended:
        return [
            f"SHARD_COUNT is {settings.shard_count} but Discord needs at least {recommended} shards for this bot's "
            f"servers; set SHARD_COUNT to {recommended} or more."
        ]
    print(f"Shards: OK, SHARD_COUNT {settings.shard_count} (Discord recommends {recommended})")
    return []


async def _check_reachable(fetch: Callable[[int], Any], setting: str, object_id: int) -> list[str]:
    try:
        found = await fetch(object_id)
    except (discord.NotFound, discord.Forbidden):
        return [
            f"{setting} {object_id}: the bot cannot see it (not in that server, or no View Channel there); "
            "check the number, or invite the bot there."
        ]
    print(f"{setting}: OK, {getattr(found, 'name', object_id)}")
    return []


def _line(error: BaseException, explain: Explain) -> str:
    known = explain(error)
    return known[0] if known is not None else _reason(error)


def _reason(error: object) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
