"""Readouts: new messages of the readout channel, from members in the bot's voice channel, spoken there in order.

What a readout says: the cleaned text (a forwarded message's too), stickers by name, attachments by kind. With
`/settings auto-join`, a message from a member in another voice channel brings the bot there first, as /join would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.audio.player import GuildPlayer, QueueFullError
from bot.audio.sessions import VoiceChannel, clip_label, voice_channel
from bot.budget import BudgetError
from bot.errors import UserFacingError
from bot.i18n import ReadoutWords
from bot.mentions import guild_names, speakable_name
from bot.speech import SayOptions
from bot.storage import GuildSettings
from bot.text import attachment_kind, clean_message, readout_text

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

XSAID_REPEAT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Said:
    """A readout's words in English and, once the clip's language is known, in that language (its readout words);
    whether they take the "<name> said" announcement, and the author's name as it is read."""

    english: str
    words: Callable[[ReadoutWords], str]
    announced: bool
    author: str


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
        bot = self.bot
        if guild is None or not bot.readouts_enabled or message.author.bot or message.webhook_id is not None:
            return
        if bot.shutting_down:
            return  # nothing new is queued while the bot stops (PRODUCT.md, Continuity)
        author = message.author
        theirs = voice_channel(author)
        if theirs is None:
            return  # checked first: it needs only memory, and most messages stop here
        sessions = bot.voice
        server = await bot.storage.get_guild_settings(guild.id)
        if server.readout_channel_id != message.channel.id:
            return
        here = sessions.connected_channel(guild)
        if not server.auto_join and (here is None or here.id != theirs.id):
            return  # only auto-join brings the bot to a member elsewhere
        if server.ignore_role_id and isinstance(author, discord.Member) and author.get_role(server.ignore_role_id):
            return
        if message.content.startswith(bot.settings.readout_skip_prefix):
            return
        lock = self._readout_locks.setdefault(guild.id, asyncio.Lock())
        async with lock:  # messages are planned and queued in the order they arrived
            said = await self._words(message, server.max_length or 6000)
            if said is None:
                return  # nothing to read: not worth joining for either
            player = await self._player_for(message, theirs, server)
            if player is None:
                return
            unheard = sessions.unheard(guild)
            if unheard is not None:
                # Nobody would hear it: nothing is synthesised (PRODUCT.md, "Only when someone can hear").
                log.info("readout skipped in server %s: nobody can hear the bot (%s)", guild.id, unheard)
                return
            await self._read_out(message, player, said, server.xsaid is not False)

    async def _player_for(
        self, message: discord.Message, theirs: VoiceChannel, server: GuildSettings
    ) -> GuildPlayer | None:
        """The player of the author's channel: the bot's own, or, with auto-join, one it joins as /join would."""
        guild = message.guild
        assert guild is not None
        sessions = self.bot.voice
        here = sessions.connected_channel(guild)
        if here is not None and here.id == theirs.id:
            return sessions.players.get(guild.id)
        if not server.auto_join:
            return None
        # What /join allows the author, no more. Move Members is a voice permission (discord.py leaves it out of a
        # text channel's): what counts is the author's in the channel the bot would be moved out of.
        author = message.author
        may_move = here is not None and isinstance(author, discord.Member) and here.permissions_for(author).move_members
        problem = sessions.join_problem(guild, theirs, may_move=may_move)
        if problem is not None:
            log.info("auto-join in server %s refused: %s", guild.id, problem.message)
            return None
        try:
            player = await sessions.ensure_connected(guild, theirs)
        except UserFacingError as error:
            log.info("auto-join in server %s failed: %s", guild.id, error.message)
            return None
        log.info("auto-joined voice channel %s in server %s for a message of %s", theirs.id, guild.id, author.id)
        return player

    async def _words(self, message: discord.Message, limit: int) -> _Said | None:
        """What the readout of `message` says (PRODUCT.md, Continuity, "What a readout says"), or None: nothing."""
        guild = message.guild
        assert guild is not None
        storage = self.bot.storage
        # A forwarded message reads the forwarded text (message.mdx, "Message Snapshot Object").
        snapshots = message.message_snapshots
        content = "\n".join(part for part in (message.content, *(s.content for s in snapshots)) if part)
        names = await guild_names(guild, storage, content, self.bot.member_lookups, message.mentions)
        stickers = [sticker.name for sticker in (*message.stickers, *(st for s in snapshots for st in s.stickers))]
        kinds = [
            attachment_kind(attachment.content_type, attachment.filename)
            for attachment in (*message.attachments, *(a for s in snapshots for a in s.attachments))
        ]
        author = await speakable_name(storage, guild.id, message.author)

        def words(language: ReadoutWords) -> str:
            text = clean_message(content, names, max_length=limit, words=language)
            return readout_text(text, stickers, kinds, author, language)[0]

        # In English first: whether anything is left to read, and whether it is announced, is the same in every
        # language (their readout words are all speakable).
        english, announced = readout_text(clean_message(content, names, max_length=limit), stickers, kinds, author)
        return _Said(english, words, announced, author) if english else None

    async def _read_out(self, message: discord.Message, player: GuildPlayer, said: _Said, xsaid: bool) -> None:
        guild = message.guild
        assert guild is not None
        speaker: str | None = None
        now = time.monotonic()
        last = self._last_said.get(guild.id)
        repeated = last is not None and last[0] == message.author.id and now - last[1] < XSAID_REPEAT_SECONDS
        if xsaid and said.announced and not repeated:
            speaker = said.author
        try:
            if not player.has_room:
                raise QueueFullError()
            plan = await self.bot.speech.plan(
                guild_id=guild.id,
                user_id=message.author.id,
                text=said.words,
                options=SayOptions(),
                truncate_to_limit=True,
                speaker=speaker,
                server_locale=self.bot.guild_locale(guild),
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
        label = clip_label(message.author.display_name, said.english)
        clip = self.bot.voice.speech_clip(plan, reservation, label=label, requested_by=message.author.id, readout=True)
        try:
            player.enqueue(clip)
        except QueueFullError:
            await reservation.release_all()
            log.info("readout skipped in server %s: the queue is full", guild.id)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Readouts(bot))
