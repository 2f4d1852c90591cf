"""Voice-state events: what Discord tells about the bot's voice channel, handed to the voice sessions.

Shards ready (recorded voice sessions rejoined), the bot's own connection (rejoined after a drop, the queue cleared
when someone disconnects or moves it), and everything that decides whether anyone can hear it: voice states (mutes,
deafened members, stage speakers, members coming and going), the bot's own member (a timeout), its channel's
overwrites and its server's roles (Speak).
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
    async def on_shard_connect(self, shard_id: int) -> None:
        """A new gateway session of a shard (READY): its recorded voice sessions are restored once it is ready."""
        self.bot.voice.restorer.shard_connected(shard_id)

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        """Rejoin the shard's recorded voice channels, paced (after a restart, a crash, or the shard moving here)."""
        self.bot.voice.restorer.shard_ready(shard_id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server back after its shard was ready: rejoin its channel, or drop a voice state no process holds."""
        self.bot.voice.restorer.guild_available(guild)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot left or was removed from a server: nothing to rejoin there."""
        if guild.id in self.bot.voice.players:
            await self.bot.voice.leave(guild.id, reason="removed from the server")
        else:
            await self.bot.voice.forget(guild.id)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(VoiceEvents(bot))
