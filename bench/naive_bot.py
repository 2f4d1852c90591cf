"""A deliberately naive /say bot (defer, one upstream call, download, attach; no limiter, no cache, no checks).

It is the baseline the benchmarks compare the real bot with, on the same stand-ins in the same run, so that a
figure measured on a loaded machine can still be read: what matters is the real bot's cost over this one.
`python -m bench.naive_bot` runs it as its own process, configured like `python -m bot` (DISCORD_TOKEN,
UNMIXR_API_KEY, UNMIXR_BASE_URL, DISCORD_API_BASE, DISCORD_GATEWAY_URL, DEV_GUILD_ID), until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.cli import apply_discord_endpoints
from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr_catalogue import BRIAN_ID


class NaiveBot(discord.AutoShardedClient):
    """`/say text`: defer, ask Unmixr, download the audio, attach it."""

    def __init__(self, settings: Settings, guild_id: int) -> None:
        super().__init__(intents=discord.Intents(guilds=True))
        self.settings = settings
        self.guild_id = guild_id
        self.tree = app_commands.CommandTree(self)
        self.session: aiohttp.ClientSession

    async def setup_hook(self) -> None:
        """Open the session, add /say and sync it to the test server."""
        self.session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.settings.unmixr_api_key.get_secret_value()}"}
        endpoint = f"{self.settings.unmixr_base_url}/short-tts/"

        @app_commands.command(name="say", description="Say it.")
        async def say(interaction: discord.Interaction[Any], text: str) -> None:
            await interaction.response.defer()
            body = {"text": text, "voice_id": BRIAN_ID, "response_type": "url"}
            async with self.session.post(endpoint, json=body, headers=headers) as response:
                data = await response.json()
            async with self.session.get(data["audio_url"]) as response:
                audio = await response.read()
            file = discord.File(io.BytesIO(audio), filename="speech.mp3")
            await interaction.edit_original_response(content="Here it is.", attachments=[file])

        self.tree.add_command(say)
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def close(self) -> None:
        """Close the gateway, then the session."""
        await super().close()
        if hasattr(self, "session"):
            await self.session.close()


@contextlib.asynccontextmanager
async def running_naive_bot(settings: Settings, discord_fake: FakeDiscord, guild_id: int) -> AsyncIterator[NaiveBot]:
    """Run the naive bot against the stand-ins until the block ends."""
    apply_discord_endpoints(settings)
    bot = NaiveBot(settings, guild_id)
    task = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
    try:
        await discord_fake.wait_until_connected(timeout=30)
        await discord_fake.wait_until(lambda: bool(discord_fake.commands.get(guild_id)), what="the naive bot's sync")
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def serve() -> None:
    """Run the naive bot from the environment until SIGTERM."""
    settings = Settings()  # type: ignore[call-arg]
    if settings.dev_guild_id is None:
        raise SystemExit("DEV_GUILD_ID must name the server to sync /say to")
    apply_discord_endpoints(settings)
    bot = NaiveBot(settings, settings.dev_guild_id)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(bot.close()))
    async with bot:
        await bot.start(settings.discord_token.get_secret_value())


if __name__ == "__main__":
    asyncio.run(serve())
