"""Running the real bot in this process against the stand-ins (shared by the tests and the benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.cli import run_bot
from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord


class BotRunner:
    """Starts and stops `run_bot` as a task, as `python -m bot` would run it."""

    def __init__(self, discord_fake: FakeDiscord, guild_id: int) -> None:
        self.discord = discord_fake
        self.guild_id = guild_id
        self.bot: Any = None
        self.bots: list[Any] = []  # every bot run_bot made (two when it retried without message content)
        self._task: asyncio.Task[None] | None = None

    async def start(self, settings: Settings, *, timeout: float = 30.0, wait_for_catalogue: bool = True) -> Any:
        """Start the bot; return it once connected with its commands synced (and its catalogue loaded)."""
        self.bots.clear()
        self._task = asyncio.create_task(run_bot(settings, on_bot=self.bots.append))
        await self.discord.wait_until_connected(timeout=timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._task.done():
                self._task.result()  # raises what stopped the bot
            bot = self.bots[-1] if self.bots else None
            if (
                bot is not None
                and hasattr(bot, "catalogue")
                and (bot.catalogue.loaded or not wait_for_catalogue)
                and self.discord.commands.get(self.guild_id)
            ):
                self.bot = bot
                return bot
            await asyncio.sleep(0.02)
        raise RuntimeError("the bot did not get ready")

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Close the bot the way a SIGTERM does, and wait for it to finish."""
        if self.bot is not None and not self.bot.is_closed():
            await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout)
        self._task = None
        self.bot = None
        # The next start must wait for its own connection, not see this one's.
        for event in self.discord.ready.values():
            event.clear()
