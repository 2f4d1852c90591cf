"""/preferences: a member's own defaults in this server, or a user's account-wide ones through a user install."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOptionError, ServerOnlyError, UnknownVoiceError
from bot.i18n import Message, Text, _, joined, pgettext
from bot.limits import NicknameText, RateText
from bot.lookups import ensure_lookups
from bot.markdown import as_code, as_typed
from bot.reach import is_user_install, server_id
from bot.replies import answer
from bot.text import normalize_rate
from cogs._options import voice_choices
from cogs.settings import check_prosody

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

# Each preference as its subcommand is called (the same translations as the commands' names).
_NAMES: dict[str, Text] = {
    "voice_id": pgettext("command", "voice"),
    "rate": pgettext("command", "rate"),
    "nickname": pgettext("command", "nickname"),
}


class Preferences(commands.GroupCog, group_name="preferences", group_description="Your own defaults here."):
    """Member-level preferences."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        super().__init__()

    async def _change(
        self,
        interaction: discord.Interaction[UnmixrBot],
        name: str,
        value: str | None,
        shown: Message,
    ) -> None:
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        if is_user_install(interaction):
            old = await self.bot.storage.set_user_preference(interaction.user.id, name, value)
            # Account-wide (PRODUCT.md, Reach): the same wherever the app is used from the user's own account.
            await answer(
                interaction,
                _(
                    "Your {setting} for this app in DMs and servers without it: {old} → {new}.",
                    setting=_NAMES[name],
                    old=self._show(name, old, None),
                    new=shown if value is not None else _("cleared (the default applies)"),
                ),
                ephemeral=True,
            )
            return
        assert interaction.guild_id is not None
        old = await self.bot.storage.set_member_preference(interaction.guild_id, interaction.user.id, name, value)
        old_text = self._show(name, old, interaction.guild_id)
        new_text = shown if value is not None else _("cleared (the server's default applies)")
        await answer(
            interaction,
            _("Your {setting}: {old} → {new}.", setting=_NAMES[name], old=old_text, new=new_text),
            ephemeral=True,
        )

    def _show(self, name: str, value: str | None, guild_id: int | None) -> Message:
        if value is None:
            return _("not set")
        if name == "voice_id":
            voice = self.bot.catalogue.get(value, guild_id)
            return f"**{as_typed(voice.character)}**" if voice is not None else as_code(value)
        return as_code(value)

    @app_commands.command(name="voice", description="Your voice in this server (leave empty to clear).")
    @app_commands.describe(voice="A voice name or uuid")
    async def voice(self, interaction: discord.Interaction[UnmixrBot], voice: str | None = None) -> None:
        """Set or clear the member's voice."""
        if voice is None:
            await self._change(interaction, "voice_id", None, "")
            return
        await ensure_lookups(interaction, ephemeral=True)
        guild_id = server_id(interaction)  # a user install's voice is never a server's clone
        found = self.bot.catalogue.find(voice, guild_id)
        if found is None:
            raise UnknownVoiceError(voice, self.bot.catalogue.close_names(voice, guild_id))
        await self._change(interaction, "voice_id", found.uuid, f"**{as_typed(found.character)}**")

    @voice.autocomplete("voice")
    async def _voice_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await voice_choices(self.bot, interaction, current)

    @app_commands.command(name="rate", description="Your speaking speed (leave empty to clear).")
    @app_commands.describe(rate="-100% to +100%, or x-slow, slow, medium, fast, x-fast, default")
    async def rate(self, interaction: discord.Interaction[UnmixrBot], rate: RateText | None = None) -> None:
        """Set or clear the member's rate."""
        value = check_prosody(normalize_rate, rate) if rate is not None else None
        await self._change(interaction, "rate", value, as_code(value or ""))

    @app_commands.command(name="nickname", description="The name readouts call you (leave empty to clear).")
    @app_commands.describe(nickname="How your name should be spoken")
    async def nickname(self, interaction: discord.Interaction[UnmixrBot], nickname: NicknameText | None = None) -> None:
        """Set or clear the member's spoken name."""
        if is_user_install(interaction):
            raise ServerOnlyError(
                _("A nickname is what readouts call you in a server that has the bot; here, set your voice or rate.")
            )
        value = nickname.strip() if nickname is not None else None
        if value is not None and not value:
            raise InvalidOptionError(_("A nickname needs at least one visible character; leave it empty to clear it."))
        await self._change(interaction, "nickname", value, as_code(value or ""))

    @app_commands.command(name="reset", description="Clear all your preferences in this server.")
    async def reset(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Clear every preference of the member."""
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        if is_user_install(interaction):
            await self._reset_account_wide(interaction)
            return
        assert interaction.guild_id is not None
        old = await self.bot.storage.reset_member_preferences(interaction.guild_id, interaction.user.id)
        cleared: list[Message] = [
            _(
                "{setting} {value}",
                setting=_NAMES[name],
                value=self._show(name, getattr(old, name), interaction.guild_id),
            )
            for name in ("voice_id", "rate", "nickname")
            if getattr(old, name) is not None
        ]
        if cleared:
            message = _(
                "Cleared your preferences ({settings}); the server's defaults apply again.",
                settings=joined(cleared, "; "),
            )
        else:
            message = _("You had no preferences to clear; the server's defaults apply.")
        await answer(interaction, message, ephemeral=True)

    async def _reset_account_wide(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        old = await self.bot.storage.reset_user_preferences(interaction.user.id)
        cleared: list[Message] = [
            _("{setting} {value}", setting=_NAMES[name], value=self._show(name, getattr(old, name), None))
            for name in ("voice_id", "rate")
            if getattr(old, name) is not None
        ]
        if cleared:
            message = _(
                "Cleared your preferences for this app in DMs and servers without it ({settings}); the defaults apply "
                "again.",
                settings=joined(cleared, "; "),
            )
        else:
            message = _(
                "You had no preferences to clear for this app in DMs and servers without it; the defaults apply."
            )
        await answer(interaction, message, ephemeral=True)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Preferences(bot))
