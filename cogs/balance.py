"""/balance: the account's credits and this server's use, for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import answer, defer
from bot.tree import admin_only
from bot.wording import counted, number

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
        """Show prebuilt and cloned credits, this server's use today and this month (UTC), and its budget."""
        assert interaction.guild_id is not None
        await defer(interaction, ephemeral=True)
        credits = await self.bot.unmixr.credit_balance()
        warnings = await self.bot.balance_watch.check(credits)
        now = self.bot.guard.clock()
        today = await self.bot.storage.usage_for_day(interaction.guild_id, now.date())
        month = await self.bot.storage.usage_for_month(interaction.guild_id, now.year, now.month)
        server_budget, member_budget = await self.bot.guard.budgets(interaction.guild_id)

        lines = [
            f"**Unmixr credits left**: {number(credits.prebuilt_chars)} prebuilt characters, "
            f"{number(credits.cloned_chars)} cloned characters",
            f"**This server today (UTC)**: {usage(today.credits, today.requests, today.cache_hits)}",
            f"**This server in {now:%B %Y}**: {usage(month.credits, month.requests, month.cache_hits)}",
        ]
        if server_budget.limit is not None:
            held = f" ({number(today.reserved)} held for requests in progress)" if today.reserved else ""
            lines.append(
                f"**Today's budget**: {number(today.committed)} of {server_budget.describe('a day')} used{held}; "
                f"it starts again <t:{next_midnight(now)}:R>"
            )
        else:
            lines.append("**Today's budget**: unlimited (set one with `/settings budget`)")
        lines.append(f"**Member budget**: {member_budget.describe('an hour')}")
        if self.bot.guard.account_daily is not None:
            # The operator's cap on every server together: when it is reached, this server is refused too.
            used, limit = await self.bot.guard.account_usage(), self.bot.guard.account_daily
            lines.append(
                f"**Operator's daily limit**: {number(used)} of {number(limit)} credits used by all servers today; "
                f"it starts again <t:{next_midnight(now)}:R>"
            )
        lines.extend(f"⚠️ {warning}" for warning in warnings)
        await answer(interaction, "\n".join(lines), ephemeral=True)


def usage(credits: int, requests: int, from_cache: int) -> str:
    """What a server used: credits, requests, and how many of them came from the cache."""
    return ", ".join(
        (
            counted(credits, "{count} credit", "{count} credits"),
            counted(requests, "{count} request", "{count} requests"),
            f"{number(from_cache)} from cache",
        )
    )


def next_midnight(now: datetime) -> int:
    """The Unix time of the next 00:00 UTC, when a daily budget starts again."""
    return int(datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC).timestamp())


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Balance(bot))
