"""Reaching Discord and Unmixr from the settings: the addresses, and a time limit on Discord's first answers.

A Discord that accepts the connection but never answers (a firewall or proxy holding it) would otherwise keep the
bot waiting silently for minutes: logging in and the gateway's first message (its Hello) each get
DISCORD_ANSWER_SECONDS, then the bot stops with one line naming the address it waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import aiohttp
import discord
import yarl

from bot.settings import Settings

# Long enough for a slow network, short enough that a silent Discord is reported instead of waited on.
DISCORD_ANSWER_SECONDS: Final[float] = 30.0

MESSAGE_CONTENT_HELP = (
    "Discord refused the Message Content intent (gateway close 4014), so readouts are off. "
    "To read the readout channel aloud, enable 'Message Content Intent' on the Bot page of your application "
    "at https://discord.com/developers/applications and restart the bot; everything else works without it."
)


class DiscordSilentError(Exception):
    """Discord accepted the connection but did not answer in time; the message is one line for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def apply_discord_endpoints(settings: Settings) -> None:
    """Point discord.py at another Discord (a local stand-in) when the settings ask for it."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def discord_api_origin() -> str:
    """Where discord.py sends its REST requests, such as https://discord.com."""
    return str(yarl.URL(discord.http.Route.BASE).origin())


def discord_gateway_address() -> str:
    """Where discord.py opens its gateway connection, such as wss://gateway.discord.gg/."""
    return str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


async def login_within(client: discord.Client, token: str, seconds: float | None = None) -> None:
    """Log in, or raise DiscordSilentError when Discord does not answer within `seconds`."""
    limit = DISCORD_ANSWER_SECONDS if seconds is None else seconds
    try:
        async with asyncio.timeout(limit):
            await client.login(token)
    except TimeoutError:
        raise DiscordSilentError(
            f"Discord did not answer at {discord_api_origin()} within {limit:.0f} s while logging in; check the "
            "network (a firewall or proxy may be holding the connection), then start again."
        ) from None


async def connect_within(bot: Any, answered: asyncio.Event, seconds: float | None = None) -> None:
    """Run `bot.connect()` until the bot closes, if the gateway's first message comes within `seconds`.

    `answered` is set when the gateway first speaks (the bot's before_identify_hook, which follows its Hello).
    Later disconnections are discord.py's to retry, as ever: only the first answer is timed.
    """
    limit = DISCORD_ANSWER_SECONDS if seconds is None else seconds
    connecting = asyncio.ensure_future(bot.connect())
    waiting = asyncio.ensure_future(answered.wait())
    try:
        await asyncio.wait({connecting, waiting}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done() and not answered.is_set():
            raise DiscordSilentError(
                f"Discord's gateway at {discord_gateway_address()} did not answer within {limit:.0f} s; check "
                "the network (a firewall or proxy may be holding the connection), then start again."
            )
        await connecting
    finally:
        waiting.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting


def unmixr_client(settings: Settings, session: aiohttp.ClientSession) -> Any:
    """The Unmixr client the operator's tools use, configured as the bot's."""
    from bot.unmixr import UnmixrClient

    return UnmixrClient(
        session,
        settings.unmixr_api_key,
        base_url=settings.unmixr_base_url,
        openai_api_key=settings.openai_api_key,
        max_concurrency=settings.unmixr_max_concurrency,
    )
