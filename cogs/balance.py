"""/balance: the account's credits and this server's use, for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import Message, Moment, _, command, counted, joined, listing
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
        """Show prebuilt and cloned credits, this server's use today and this month (UTC), and its budget."""
        assert interaction.guild_id is not None
        await defer(interaction, ephemeral=True)
        credits = await self.bot.unmixr.credit_balance()
        warnings = await self.bot.balance_watch.check(credits)
        now = self.bot.guard.clock()
        today = await self.bot.storage.usage_for_day(interaction.guild_id, now.date())
        month = await self.bot.storage.usage_for_month(interaction.guild_id, now.year, now.month)
        server_budget, member_budget = await self.bot.guard.budgets(interaction.guild_id)

        midnight = f"<t:{next_midnight(now)}:R>"
        lines: list[Message] = [
            _(
                "**Unmixr credits left**: {prebuilt} prebuilt characters, {cloned} cloned characters",
                prebuilt=credits.prebuilt_chars,
                cloned=credits.cloned_chars,
            ),
            _("**This server today (UTC)**: {usage}", usage=usage(today.credits, today.requests, today.cache_hits)),
            _(
                "**This server in {month}**: {usage}",
                month=Moment(now, "yMMMM"),
                usage=usage(month.credits, month.requests, month.cache_hits),
            ),
        ]
        if server_budget.limit is not None:
            values = {"used": today.committed, "budget": server_budget.describe("day"), "when": midnight}
            if today.reserved:
                lines.append(
                    _(
                        "**Today's budget**: {used} of {budget} used ({held} held for requests in progress); "
                        "it starts again {when}",
                        held=today.reserved,
                        **values,
                    )
                )
            else:
                lines.append(_("**Today's budget**: {used} of {budget} used; it starts again {when}", **values))
        else:
            lines.append(
                _("**Today's budget**: unlimited (set one with {command})", command=command("settings budget"))
            )
        lines.append(_("**Member budget**: {budget}", budget=member_budget.describe("hour")))
        if self.bot.guard.account_daily is not None:
            # The operator's cap on every server together: when it is reached, this server is refused too.
            used, limit = await self.bot.guard.account_usage(), self.bot.guard.account_daily
            lines.append(
                _(
                    "**Operator's daily limit**: {used} of {limit} credits used by all servers today; "
                    "it starts again {when}",
                    used=used,
                    limit=limit,
                    when=midnight,
                )
            )
        lines.extend(joined(["⚠️ ", warning]) for warning in warnings)
        await answer(interaction, joined(lines, "\n"), ephemeral=True)


def usage(credits: int, requests: int, from_cache: int) -> Message:
    """What a server used: credits, requests, and how many of them came from the cache."""
    return listing(
        (
            counted(credits, "{count} credit", "{count} credits"),
            counted(requests, "{count} request", "{count} requests"),
            counted(from_cache, "{count} from cache", "{count} from cache"),
        )
    )


def next_midnight(now: datetime) -> int:
    """The Unix time of the next 00:00 UTC, when a daily budget starts again."""
    return int(datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC).timestamp())


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Balance(bot))
