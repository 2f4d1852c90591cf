"""Readouts: new messages of the readout channel, from members in the bot's voice channel, spoken there in order."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.audio.player import GuildPlayer, QueueFullError
from bot.audio.sessions import clip_label, voice_channel
from bot.budget import BudgetError
from bot.errors import UserFacingError
from bot.mentions import guild_names, speakable_name
from bot.speech import SayOptions
from bot.text import clean_message, is_speakable, said_prefix

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

XSAID_REPEAT_SECONDS = 30.0


class Readouts(commands.Cog):
    """Reads the readout channel aloud in the bot's voice channel."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        self._last_said: dict[int, tuple[int, float]] = {}
        self._readout_locks: dict[int, asyncio.Lock] = {}

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Speak new messages of the readout channel from members in the bot's voice channel."""
        guild = message.guild
        if guild is None or not self.bot.readouts_enabled or message.author.bot or message.webhook_id is not None:
            return
        sessions = self.bot.voice
        player = sessions.players.get(guild.id)
        channel = sessions.connected_channel(guild)
        if player is None or channel is None:
            return
        server = await self.bot.storage.get_guild_settings(guild.id)
        if server.readout_channel_id != message.channel.id:
            return
        author = message.author
        theirs = voice_channel(author)
        if theirs is None or theirs.id != channel.id:
            return
        if server.ignore_role_id and isinstance(author, discord.Member) and author.get_role(server.ignore_role_id):
            return
        if message.content.startswith(self.bot.settings.readout_skip_prefix):
            return
        unheard = sessions.unheard(guild)
        if unheard is not None:
            # Nobody would hear it: nothing is synthesised (PRODUCT.md, "Only when someone can hear").
            log.info("readout skipped in server %s: nobody can hear the bot (%s)", guild.id, unheard)
            return
        lock = self._readout_locks.setdefault(guild.id, asyncio.Lock())
        async with lock:  # messages are planned and queued in the order they arrived
            await self._read_out(message, player, server.max_length or 6000, server.xsaid is not False)

    async def _read_out(self, message: discord.Message, player: GuildPlayer, limit: int, xsaid: bool) -> None:
        guild = message.guild
        assert guild is not None
        names = await guild_names(guild, self.bot.storage, message.content, self.bot.member_lookups, message.mentions)
        text = clean_message(message.content, names, max_length=limit)
        if not is_speakable(text):
            return
        prefix = ""
        now = time.monotonic()
        last = self._last_said.get(guild.id)
        if xsaid and not (last and last[0] == message.author.id and now - last[1] < XSAID_REPEAT_SECONDS):
            prefix = said_prefix(await speakable_name(self.bot.storage, guild.id, message.author))
        try:
            if not player.has_room:
                raise QueueFullError()
            plan = await self.bot.speech.plan(
                guild_id=guild.id,
                user_id=message.author.id,
                text=text,
                options=SayOptions(),
                truncate_to_limit=True,
                prefix=prefix,
            )
            # Charged to the message's author, like their own /say.
            reservation = await self.bot.speech.reserve(plan)
        except BudgetError as error:
            log.info("readout skipped in server %s: over the %s budget", guild.id, error.kind)
            return
        except (UserFacingError, QueueFullError) as error:
            log.info("readout skipped in server %s: %s", guild.id, error)
            return
        self._last_said[guild.id] = (message.author.id, now)
        label = clip_label(message.author.display_name, text)
        clip = self.bot.voice.speech_clip(plan, reservation, label=label, requested_by=message.author.id)
        try:
            player.enqueue(clip)
        except QueueFullError:
            await reservation.release_all()
            log.info("readout skipped in server %s: the queue is full", guild.id)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Readouts(bot))
