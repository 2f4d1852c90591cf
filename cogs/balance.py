"""/balance: the account's credits and this server's use, for admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import answer, defer
from bot.tree import admin_only

if TYPE_CHECKING:
    from bot.bot import UnmixrBot


class Balance(commands.Cog):
    """Credit balance."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    @app_commands.command(name="balance", description="Unmixr credits left, and what this server used (admins).")
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def balance(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Show prebuilt and cloned credits, and this server's use today and this month (UTC)."""
        assert interaction.guild_id is not None
        await defer(interaction, ephemeral=True)
        credits = await self.bot.unmixr.credit_balance()
        now = datetime.now(UTC)
        today = await self.bot.storage.usage_for_day(interaction.guild_id, now.date())
        month = await self.bot.storage.usage_for_month(interaction.guild_id, now.year, now.month)

        def plural(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        lines = [
            f"**Unmixr credits left**: {credits.prebuilt_chars} prebuilt characters, "
            f"{credits.cloned_chars} cloned characters",
            f"**This server today (UTC)**: {plural(today.credits, 'credit')}, {plural(today.requests, 'request')}, "
            f"{today.cache_hits} from cache",
            f"**This server in {now:%B %Y}**: {plural(month.credits, 'credit')}, {plural(month.requests, 'request')}, "
            f"{month.cache_hits} from cache",
        ]
        await answer(interaction, "\n".join(lines), ephemeral=True)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Balance(bot))
