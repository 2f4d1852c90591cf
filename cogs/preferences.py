"""/preferences: a member's own defaults in this server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOptionError, UnknownVoiceError
from bot.limits import NicknameText, RateText
from bot.lookups import ensure_lookups
from bot.markdown import as_code, as_typed
from bot.replies import answer
from bot.text import normalize_rate
from cogs._options import voice_choices
from cogs.settings import check_prosody

if TYPE_CHECKING:
    from bot.bot import UnmixrBot


class Preferences(commands.GroupCog, group_name="preferences", group_description="Your own defaults here."):
    """Member-level preferences."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        super().__init__()

    async def _change(
        self,
        interaction: discord.Interaction[UnmixrBot],
        name: str,
        label: str,
        value: str | None,
        shown: str,
    ) -> None:
        assert interaction.guild_id is not None
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        old = await self.bot.storage.set_member_preference(interaction.guild_id, interaction.user.id, name, value)
        old_text = self._show(name, old, interaction.guild_id)
        new_text = shown if value is not None else "cleared (the server's default applies)"
        await answer(interaction, f"Your {label}: {old_text} → {new_text}.", ephemeral=True)

    def _show(self, name: str, value: str | None, guild_id: int) -> str:
        if value is None:
            return "not set"
        if name == "voice_id":
            voice = self.bot.catalogue.get(value, guild_id)
            return f"**{as_typed(voice.character)}**" if voice is not None else as_code(value)
        return as_code(value)

    @app_commands.command(name="voice", description="Your voice in this server (leave empty to clear).")
    @app_commands.describe(voice="A voice name or uuid")
    async def voice(self, interaction: discord.Interaction[UnmixrBot], voice: str | None = None) -> None:
        """Set or clear the member's voice."""
        if voice is None:
            await self._change(interaction, "voice_id", "voice", None, "")
            return
        await ensure_lookups(interaction, ephemeral=True)
        found = self.bot.catalogue.find(voice, interaction.guild_id)
        if found is None:
            raise UnknownVoiceError(voice, self.bot.catalogue.close_names(voice, interaction.guild_id))
        await self._change(interaction, "voice_id", "voice", found.uuid, f"**{as_typed(found.character)}**")

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
        await self._change(interaction, "rate", "rate", value, as_code(value or ""))

    @app_commands.command(name="nickname", description="The name readouts call you (leave empty to clear).")
    @app_commands.describe(nickname="How your name should be spoken")
    async def nickname(self, interaction: discord.Interaction[UnmixrBot], nickname: NicknameText | None = None) -> None:
        """Set or clear the member's spoken name."""
        value = nickname.strip() if nickname is not None else None
        if value is not None and not value:
            raise InvalidOptionError("A nickname needs at least one visible character; leave it empty to clear it.")
        await self._change(interaction, "nickname", "nickname", value, as_code(value or ""))

    @app_commands.command(name="reset", description="Clear all your preferences in this server.")
    async def reset(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Clear every preference of the member."""
        assert interaction.guild_id is not None
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        old = await self.bot.storage.reset_member_preferences(interaction.guild_id, interaction.user.id)
        cleared = [
            f"{label} {self._show(name, getattr(old, name), interaction.guild_id)}"
            for label, name in (("voice", "voice_id"), ("rate", "rate"), ("nickname", "nickname"))
            if getattr(old, name) is not None
        ]
        if cleared:
            message = f"Cleared your preferences ({'; '.join(cleared)}); the server's defaults apply again."
        else:
            message = "You had no preferences to clear; the server's defaults apply."
        await answer(interaction, message, ephemeral=True)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Preferences(bot))
