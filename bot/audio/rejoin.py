"""Voice sessions that survive restarts: each shard, once ready, rejoins the channels recorded for its servers.

PRODUCT.md, Continuity: the bot records each server's voice channel while connected (`VoiceSessions`), keeps the
record across a shutdown, and when a shard is ready (after a restart, a crash, or the shard moving to another
process) rejoins each recorded channel where a member who is not a bot is still present, one join a second per shard
(Discord allows 120 gateway sends a minute per connection, events/gateway.mdx "Rate Limiting"; the first 25 within
30 s of ready). A channel that is empty, gone, or where the bot can no longer Connect or Speak is skipped and
forgotten. A server that is unavailable when its shard is ready is rejoined when it becomes available. Where Discord
still shows the bot in a channel it holds no connection to and will not rejoin (what a crash leaves behind), that
voice state is dropped, at the same pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

import discord

from bot.audio.audibility import humans
from bot.errors import UserFacingError

if TYPE_CHECKING:
    from bot.audio.sessions import VoiceSessions
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

# One gateway send (a voice state update) a second per shard, well inside 120 a minute with heartbeats.
JOIN_INTERVAL: Final[float] = 1.0


class SessionRestorer:
    """Rejoins recorded voice sessions shard by shard, paced."""

    def __init__(self, bot: UnmixrBot, sessions: VoiceSessions) -> None:
        self.bot = bot
        self.sessions = sessions
        self._ready_shards: set[int] = set()
        self._pending: dict[int, int] = {}  # server -> channel, for servers unavailable when their shard was ready
        self._next_slot: dict[int, float] = {}  # shard -> when its next gateway send may go (time.monotonic)
        self._tasks: set[asyncio.Task[Any]] = set()

    def shard_connected(self, shard_id: int) -> None:
        """A shard has a new gateway session: it restores again once ready."""
        self._ready_shards.discard(shard_id)

    def shard_ready(self, shard_id: int) -> None:
        """Rejoin the recorded channels of the shard's servers, and drop voice states this process does not hold."""
        self._ready_shards.add(shard_id)
        self._spawn(self._restore(shard_id), name=f"voice-restore:{shard_id}")

    def guild_available(self, guild: discord.Guild) -> None:
        """A server came back (or arrived) after its shard was ready: rejoin it, or drop a stale voice state."""
        if guild.shard_id not in self._ready_shards:
            return  # shard_ready sees to it
        channel_id = self._pending.pop(guild.id, None)
        if channel_id is not None:
            self._spawn(self._rejoin(guild, channel_id), name=f"voice-restore:{guild.id}")
        elif self._stale(guild):
            self._spawn(self._drop_stale(guild), name=f"voice-drop:{guild.id}")

    async def _restore(self, shard_id: int) -> None:
        try:
            recorded = await self.bot.storage.continuity().voice_sessions()
        except Exception as error:
            log.warning("could not read the recorded voice sessions of shard %d: %s", shard_id, error)
            return
        count = self.bot.shard_count or 1
        mine = {guild_id: channel for guild_id, channel in recorded.items() if (guild_id >> 22) % count == shard_id}
        if mine:
            log.info("shard %d is ready: rejoining up to %d voice channels", shard_id, len(mine))
        for guild_id, channel_id in mine.items():
            if self.sessions.stopping:
                return
            server = self.bot.get_guild(guild_id)
            if server is None:
                log.info("not rejoining voice in server %s: the bot is no longer in it; forgotten", guild_id)
                await self.sessions.forget(guild_id)
            elif server.unavailable:
                self._pending[guild_id] = channel_id
            else:
                await self._rejoin(server, channel_id)
        # After the rejoins, which come first: voice states a crashed process left where nothing is to be rejoined.
        for guild in list(self.bot.guilds):
            if guild.shard_id == shard_id and guild.id not in mine and self._stale(guild):
                await self._drop_stale(guild)

    def stop(self) -> None:
        """Stop every join still to come (the bot is shutting down)."""
        for task in list(self._tasks):
            task.cancel()

    # -----

    def _stale(self, guild: discord.Guild) -> bool:
        me = guild.me
        voice = me.voice if me is not None else None
        return voice is not None and voice.channel is not None and guild.voice_client is None

    async def _slot(self, shard_id: int) -> None:
        """Wait for the shard's next gateway send, one a second."""
        now = time.monotonic()
        at = max(now, self._next_slot.get(shard_id, now))
        self._next_slot[shard_id] = at + JOIN_INTERVAL
        if at > now:
            await asyncio.sleep(at - now)

    async def _drop_stale(self, guild: discord.Guild) -> None:
        await self._slot(guild.shard_id)
        if self.sessions.stopping or not self._stale(guild):
            return
        try:
            await guild.change_voice_state(channel=None)
        except (discord.HTTPException, discord.ClientException, ConnectionError) as error:
            log.warning("could not leave the voice channel a previous process held in server %s: %s", guild.id, error)

    async def _rejoin(self, guild: discord.Guild, channel_id: int) -> None:
        # Checked before taking a slot (a skipped server costs no gateway send) and again when it comes.
        if not await self._still_wanted(guild.id, channel_id):
            return
        await self._slot(guild.shard_id)
        if self.sessions.stopping or not await self._still_wanted(guild.id, channel_id):
            return
        current = self.bot.get_guild(guild.id)
        channel = current.get_channel(channel_id) if current is not None else None
        assert current is not None and isinstance(channel, discord.VoiceChannel | discord.StageChannel)
        # Not awaited: a slow handshake must not hold up the next server's slot.
        self._spawn(self._connect(current, channel), name=f"rejoin:{current.id}")

    async def _still_wanted(self, guild_id: int, channel_id: int) -> bool:
        """Whether the server's recorded channel is still to be rejoined; if not, it is forgotten (and a voice
        state left there by a crashed process dropped)."""
        current = self.bot.get_guild(guild_id)
        if current is None:
            await self.sessions.forget(guild_id)
            return False
        if self.sessions.connected_channel(current) is not None:
            return False  # someone brought the bot into a channel meanwhile
        why = self._why_not(current, current.get_channel(channel_id))
        if why is None:
            return True
        log.info("not rejoining voice in server %s: %s; forgotten", current.id, why)
        await self.sessions.forget(current.id)
        if self._stale(current):
            await self._drop_stale(current)
        return False

    def _why_not(self, guild: discord.Guild, channel: object) -> str | None:
        if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            return "its channel is gone"
        if humans(channel, guild.me.id) == 0:
            return f"nobody is in {channel.name} any more"
        problem = self.sessions.join_problem(guild, channel, may_move=True)
        return problem.message if problem is not None else None

    async def _connect(self, guild: discord.Guild, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        try:
            await self.sessions.ensure_connected(guild, channel)
        except UserFacingError as error:
            log.warning("could not rejoin voice in server %s: %s", guild.id, error.message)
            await self.sessions.forget(guild.id)
            return
        log.info("rejoined voice channel %s in server %s", channel.id, guild.id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> None:
        task = self.bot.spawn(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
