"""/balance: the account's credits and this server's use, for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import answer, defer
from bot.tree import admin_only

if TYPE_CHECKING:
    from bot.bot import UnmixrBot


def plural(count: int, word: str) -> str:
    """`count` and `word`, with an s unless the count is one."""
    return f"{count} {word}{'' if count == 1 else 's'}"


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
            f"**Unmixr credits left**: {credits.prebuilt_chars} prebuilt characters, "
            f"{credits.cloned_chars} cloned characters",
            f"**This server today (UTC)**: {plural(today.credits, 'credit')}, {plural(today.requests, 'request')}, "
            f"{today.cache_hits} from cache",
            f"**This server in {now:%B %Y}**: {plural(month.credits, 'credit')}, {plural(month.requests, 'request')}, "
            f"{month.cache_hits} from cache",
        ]
        if server_budget.limit is not None:
            held = f" ({today.reserved} held for requests in progress)" if today.reserved else ""
            lines.append(
                f"**Today's budget**: {today.committed} of {server_budget.describe('a day')} used{held}; "
                f"it starts again <t:{next_midnight(now)}:R>"
            )
        else:
            lines.append("**Today's budget**: unlimited (set one with `/settings budget`)")
        lines.append(f"**Member budget**: {member_budget.describe('an hour')}")
        if self.bot.guard.account_daily is not None:
            # The operator's cap on every server together: when it is reached, this server is refused too.
            used = await self.bot.guard.account_usage()
            lines.append(
                f"**Operator's daily limit**: {used} of {self.bot.guard.account_daily} credits used by all servers "
                f"today; it starts again <t:{next_midnight(now)}:R>"
            )
        lines.extend(f"⚠️ {warning}" for warning in warnings)
        await answer(interaction, "\n".join(lines), ephemeral=True)


def next_midnight(now: datetime) -> int:
    """The Unix time of the next 00:00 UTC, when a daily budget starts again."""
    return int(datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC).timestamp())


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Balance(bot))
