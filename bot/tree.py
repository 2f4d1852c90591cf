"""The command tree: server commands (and user installs' own), and the one place where errors become answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from bot.budget import BudgetError
from bot.errors import GuildOnlyError, NotAdminError, ServerOnlyError, UserFacingError
from bot.i18n import Message, _, counted
from bot.limits import shorten
from bot.metrics import Metrics, Outcome
from bot.reach import USER_INSTALL_COMMANDS, is_user_install
from bot.replies import answer, mark_received, response_times
from bot.unmixr import UnmixrError

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

SHUTTING_DOWN = _("The bot is restarting; please try again in a minute.")
# opcodes-and-status-codes.mdx: Discord refuses a message the server's AutoMod blocks with code 200000.
AUTOMOD_BLOCKED_CODE = 200000
AUTOMOD_BLOCKED = _(
    "This server's AutoMod blocked the answer (a word in it is on the server's blocked list); "
    "a moderator can review the AutoMod rules, or try other words or another voice."
)
# A value quoted back in an answer is cut to this, so the sentence stays readable.
QUOTED_VALUE = 100


def is_admin(interaction: discord.Interaction[Any]) -> bool:
    """Whether the member has Manage Server here (the bot's own check; Discord's gate can be overridden)."""
    permissions = interaction.permissions
    return bool(permissions.manage_guild or permissions.administrator)


def require_admin(interaction: discord.Interaction[Any]) -> None:
    """Raise NotAdminError unless the member has Manage Server."""
    if not is_admin(interaction):
        raise NotAdminError()


def admin_only() -> Any:
    """A check that refuses members without Manage Server, whatever Discord's integration settings say."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction)
        return True

    return app_commands.check(predicate)


def apology(interaction_id: int) -> Message:
    """The answer to an unexpected error, with the interaction's id for the log."""
    return _(
        "Sorry, something went wrong on our side; please try again in a moment (reference {id}).",
        id=str(interaction_id),
    )


def message_for(error: BaseException) -> Message | None:
    """The one-sentence answer for a known error, or None for an unexpected one."""
    if isinstance(error, UserFacingError):
        return error.text
    if isinstance(error, UnmixrError):
        return error.text
    if isinstance(error, app_commands.TransformerError):
        value = shorten(str(error.value), QUOTED_VALUE)
        return _("“{value}” is not a valid value for this option; pick one of the offered values.", value=value)
    if isinstance(error, app_commands.NoPrivateMessage):
        return GuildOnlyError().text
    if isinstance(error, app_commands.CommandOnCooldown):
        seconds = round(error.retry_after)
        return counted(
            seconds,
            "Slow down a little: try again in {count} second.",
            "Slow down a little: try again in {count} seconds.",
        )
    if isinstance(error, discord.HTTPException) and error.code == AUTOMOD_BLOCKED_CODE:
        return AUTOMOD_BLOCKED
    if isinstance(error, app_commands.CommandNotFound):
        return _("That command is gone or changed; wait a minute for Discord to update the list and try again.")
    return None


class UnmixrTree(app_commands.CommandTree["UnmixrBot"]):
    """A command tree that answers every error with one ephemeral sentence."""

    async def interaction_check(self, interaction: discord.Interaction[UnmixrBot]) -> bool:
        """Refuse DMs (but for user installs' own commands) and work during shutdown; remember the interaction for a
        graceful stop."""
        bot = self.client
        mark_received(interaction)
        bot.command_ids.learn_from(interaction)
        if is_user_install(interaction):
            # Registered for user installs only with their budgets set: a registration left from before they were
            # unset still sends these, answered as any DM.
            if not bot.settings.user_installs:
                raise GuildOnlyError()
            name = str(cast(dict[str, Any], interaction.data or {}).get("name", ""))
            if name not in USER_INSTALL_COMMANDS:
                # Named with its subcommand where it has one: a group alone has no mention.
                used = interaction.command
                raise ServerOnlyError.command(used.qualified_name if used is not None else name)
        elif interaction.guild_id is None:
            raise GuildOnlyError()
        else:
            # Only servers that have the bot: a user install's server says its locale with each interaction.
            bot.remember_guild_locale(interaction)
        if bot.shutting_down:
            if interaction.type is not discord.InteractionType.autocomplete:
                await answer(interaction, SHUTTING_DOWN)
            return False
        bot.track_interaction()
        return True

    async def on_error(self, interaction: discord.Interaction[UnmixrBot], error: app_commands.AppCommandError) -> None:
        """Turn an error into its answer; unknown ones are logged with the interaction id."""
        await handle_error(interaction, error)
        if interaction.type is discord.InteractionType.application_command and interaction.command is not None:
            record_command(self.client.metrics, interaction, interaction.command.qualified_name, outcome_of(error))


def record_command(metrics: Metrics, interaction: discord.Interaction[Any], name: str, outcome: Outcome) -> None:
    """Count a finished command, and how long it took to be acknowledged and to be answered."""
    metrics.command(name, outcome)
    acknowledged, answered = response_times(interaction)
    if acknowledged is not None:
        metrics.command_time(name, "ack", acknowledged)
    if answered is not None:
        metrics.command_time(name, "answer", answered)


def outcome_of(error: BaseException) -> Outcome:
    """How a failed command counts in the metrics: budget, refused (another known answer) or error (unexpected)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, BudgetError):
        return "budget"
    return "refused" if message_for(original) is not None else "error"


async def handle_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Answer `error` on `interaction`: known errors get their sentence, unknown ones an apology."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    message = message_for(original)
    if isinstance(original, UnmixrError):
        # A refused key or an outage is reported once a minute by the Unmixr client, with its address.
        log.log(
            logging.DEBUG if original.logged_by_client else logging.WARNING,
            "Unmixr error on interaction %s: %s",
            interaction.id,
            original.message,
        )
    if message is None:
        log.error(
            "unexpected error in interaction %s (%s)",
            interaction.id,
            getattr(interaction.command, "qualified_name", interaction.type.name),
            exc_info=original,
        )
        message = apology(interaction.id)
    if interaction.type is discord.InteractionType.autocomplete:
        return
    try:
        await answer(interaction, message, ephemeral=True)
    except discord.HTTPException:
        log.exception("could not send the error answer for interaction %s", interaction.id)
