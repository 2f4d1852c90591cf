"""Voice-state events: what Discord tells about the bot's voice channel, handed to the voice sessions.

The bot's own connection (rejoined after a drop, the queue cleared when someone disconnects or moves it), and
everything that decides whether anyone can hear it: voice states (mutes, deafened members, stage speakers, members
coming and going), the bot's own member (a timeout), its channel's overwrites and its server's roles (Speak).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.bot import UnmixrBot


class VoiceEvents(commands.Cog):
    """Keeps the voice sessions in step with Discord's events."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """The bot's own state moves its session; anyone's may change whether the bot can be heard."""
        if self.bot.user is not None and member.id == self.bot.user.id:
            await self.bot.voice.bot_moved(member.guild.id, before, after)
        self.bot.voice.assess(member.guild)

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        """A timeout of the bot (sent for the bot's own member even without the members intent)."""
        if self.bot.user is not None and after.id == self.bot.user.id:
            self.bot.voice.assess(after.guild)

    @commands.Cog.listener()
    async def on_guild_channel_update(self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel) -> None:
        """An overwrite may give or take Speak in the bot's channel."""
        self.bot.voice.assess(after.guild)

    @commands.Cog.listener()
    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        """A role's permissions may give or take Speak."""
        self.bot.voice.assess(after.guild)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """After a restart, drop a voice connection Discord still shows but this process does not hold."""
        me = guild.me
        if me is not None and me.voice is not None and me.voice.channel is not None and guild.voice_client is None:
            await guild.change_voice_state(channel=None)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(VoiceEvents(bot))
