"""Voice sessions: joining, leaving and rejoining each server's voice channel, and playing only while heard.

The mechanism behind the voice cogs (`cogs/voice.py`'s commands, `cogs/readouts.py`, `cogs/voice_events.py`): one
GuildPlayer per connected server. A dropped connection is rejoined with its queue; a disconnect on purpose clears
it; the bot leaves when alone or idle. On a stage it makes itself a speaker with Mute Members, or asks to speak.
While nobody can hear it (`bot/audio/audibility.py`) the player holds: nothing new is synthesised or started and
the clip playing pauses; after UNHEARD_SECONDS the queue is cleared (clips not yet sent give their credits back),
and it goes on by itself once it can be heard again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord

from bot.audio.audibility import VoiceChannel, humans, is_speaker, why_unheard
from bot.audio.player import Clip, GuildPlayer
from bot.budget import Reservation
from bot.errors import UserFacingError
from bot.limits import shorten
from bot.speech import SpeechPlan
from bot.voice_internals import connection_task

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

# PRODUCT.md, "Only when someone can hear": after this long unheard, playback stops and the queue is cleared; a
# shorter blip changes nothing (the clip playing pauses and goes on).
UNHEARD_SECONDS = 5.0
# After losing the channel, how long to wait for discord.py's voice poller to say whether the connection
# dropped (rejoin, keeping the queue) or the bot was disconnected by someone (leave, clearing it).
DROP_GRACE_SECONDS = 0.5
# Close codes that mean "disconnected on purpose" rather than "the connection dropped".
DELIBERATE_CLOSE_CODES = frozenset({1000, 4014, 4022})
# Voice close 4017, "E2EE/DAVE protocol required": since 2026-03-01 Discord closes every voice client that does not
# offer DAVE (opcodes-and-status-codes.mdx); only newer discord.py and davey fix it, so it is not a dropped line.
E2EE_REQUIRED = 4017
E2EE_REQUIRED_FIX = (
    "Discord closed the voice connection with 4017 (end-to-end encrypted voice, DAVE, is required): "
    "update discord.py and davey (pip install -U 'discord.py[voice]' davey), then restart the bot; "
    "`python -m bot check` shows whether DAVE is available"
)
WATCH_INTERVAL = 1.0
CONNECT_TIMEOUT = 15.0
# How long a speaker's own PATCH on a stage may take to come back as its voice state.
STAGE_SPEAKER_WAIT = 5.0
LABEL_LENGTH = 60

FailureNotice = Callable[[BaseException], Coroutine[Any, Any, None]]


class VoiceError(UserFacingError):
    """A voice-channel request that cannot be done, with what to do instead."""


def clip_label(speaker: str, text: str) -> str:
    """A queue line for a clip: who or which voice, and the start of the text, both kept short."""
    # One line each in /queue, whatever line breaks the text had.
    return f"{shorten(' '.join(speaker.split()), LABEL_LENGTH)}: {shorten(' '.join(text.split()), LABEL_LENGTH)}"


def voice_channel(member: discord.abc.User) -> VoiceChannel | None:
    """The voice channel a member is in, from the gateway's voice states (None for a user outside a server)."""
    voice = member.voice if isinstance(member, discord.Member) else None
    channel = voice.channel if voice is not None else None
    return channel if isinstance(channel, discord.VoiceChannel | discord.StageChannel) else None


class VoiceSessions:
    """Every voice connection of this process, each server's player, and whether anyone hears it."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        self.players: dict[int, GuildPlayer] = {}
        self._alone_since: dict[int, float] = {}
        self._connect_locks: dict[int, asyncio.Lock] = {}
        self._dropped: set[int] = set()
        self._unconnected_since: dict[int, float] = {}
        # Servers where nobody can hear the bot: why, and the task that clears the queue after UNHEARD_SECONDS.
        self._unheard: dict[int, tuple[str, asyncio.Task[None]]] = {}
        self._watcher: asyncio.Task[None] | None = None
        bot.metrics.queued_clips.set_function(lambda: sum(len(player) for player in self.players.values()))

    def start(self) -> None:
        """Start watching for channels the bot should leave and for playback nobody hears."""
        if self._watcher is None:
            self._watcher = self.bot.spawn(self._watch(), name="voice-watch")

    async def shutdown(self) -> None:
        """Leave every voice channel (called before the bot disconnects)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        for guild_id in list(self.players):
            await self.leave(guild_id, reason="shutdown")

    # ----- what the cogs read -----

    @staticmethod
    def voice_client(guild: discord.Guild) -> discord.VoiceClient | None:
        """The server's voice client, if this process has one."""
        client = guild.voice_client
        return client if isinstance(client, discord.VoiceClient) else None

    def connected_channel(self, guild: discord.Guild) -> VoiceChannel | None:
        """The channel the bot plays in, when it has a player there."""
        client = self.voice_client(guild)
        if client is None or guild.id not in self.players:
            return None
        channel = client.channel
        return channel if isinstance(channel, discord.VoiceChannel | discord.StageChannel) else None

    def unheard(self, guild: discord.Guild) -> str | None:
        """Why nobody can hear the bot in its channel now (None when someone can, or when it is not in one)."""
        channel = self.connected_channel(guild)
        return why_unheard(channel, guild.me) if channel is not None else None

    def speech_clip(
        self,
        plan: SpeechPlan,
        reservation: Reservation,
        *,
        label: str,
        requested_by: int | None,
        on_failure: FailureNotice | None = None,
    ) -> Clip:
        """A queue entry that synthesises `plan` only when it is about to play, owning `reservation`."""
        speech = self.bot.speech

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in speech.iter_chunks(plan, reservation):
                yield chunk.audio

        return Clip(
            label=label,
            requested_by=requested_by,
            chunks=chunks(),
            release=reservation.release_all,
            on_failure=on_failure,
            from_message=plan.from_message,
        )

    # ----- joining and leaving -----

    async def ensure_connected(self, guild: discord.Guild, channel: VoiceChannel) -> GuildPlayer:
        """Connect to (or move to) `channel`, take the stage if it is one, and return the server's player."""
        lock = self._connect_locks.setdefault(guild.id, asyncio.Lock())
        async with lock:
            client = self.voice_client(guild)
            player = self.players.get(guild.id)
            if client is not None and client.is_connected() and client.channel.id == channel.id and player:
                return player
            if client is not None and client.channel.id != channel.id:
                await self.leave(guild.id, reason="moving")
                client = None
            if client is not None and not client.is_connected():
                client.cleanup()  # a dead connection; forget it without telling Discord we left
                client = None
            if client is None:
                client = await self._connect(guild, channel)
            player = self.players.get(guild.id)
            if player is None:
                player = GuildPlayer(guild.id, client, cache=self.bot.audio_cache)
                self.players[guild.id] = player
            else:
                player.voice_client = client
            self._alone_since.pop(guild.id, None)
        await self.take_the_stage(guild, channel)
        self.assess(guild)
        return player

    async def _connect(self, guild: discord.Guild, channel: VoiceChannel) -> discord.VoiceClient:
        try:
            client: discord.VoiceClient = await channel.connect(
                reconnect=False, timeout=CONNECT_TIMEOUT, self_deaf=True
            )
        except (TimeoutError, discord.ClientException, discord.HTTPException) as error:
            if isinstance(error, discord.ConnectionClosed) and error.code == E2EE_REQUIRED:
                # Not a permission problem: no grant fixes it, only an update of the bot.
                log.error("could not connect to voice in server %s: %s", guild.id, E2EE_REQUIRED_FIX)
                raise VoiceError(
                    "I can't play in voice until I'm updated: Discord requires end-to-end encrypted voice, "
                    "which this version of me cannot offer; my operator can see why in the logs."
                ) from None
            log.warning("could not connect to voice in server %s: %s", guild.id, error)
            raise VoiceError(
                f"I couldn't connect to {channel.mention}; check that I have Connect and Speak there and try again."
            ) from None
        self._watch_connection(guild.id, client)
        return client

    async def take_the_stage(self, guild: discord.Guild, channel: VoiceChannel) -> None:
        """On a stage, become a speaker (with Mute Members) or ask to speak (with Request to Speak).

        Everyone joins a stage in the audience, suppressed (voice.mdx, "Modify Current User Voice State": Mute
        Members to unsuppress oneself, Request to Speak to request).
        """
        me = guild.me
        if not isinstance(channel, discord.StageChannel) or is_speaker(channel, me):
            return
        permissions = channel.permissions_for(me)
        try:
            if permissions.mute_members:
                await me.edit(suppress=False)
                done: Callable[[], bool] = lambda: is_speaker(channel, guild.me)  # noqa: E731
            elif permissions.request_to_speak and (me.voice is None or me.voice.requested_to_speak_at is None):
                await me.request_to_speak()
                log.info("asked to speak on stage %s in server %s", channel.id, guild.id)
                done = lambda: me.voice is not None and me.voice.requested_to_speak_at is not None  # noqa: E731
            else:
                return
        except (discord.HTTPException, discord.ClientException) as error:
            log.warning("could not take the stage %s in server %s: %s", channel.id, guild.id, error)
            return
        # Discord answers 204 and tells what changed in a voice state update: wait for it, so what follows sees it.
        if not done():
            with contextlib.suppress(TimeoutError):
                await self.bot.wait_for(
                    "voice_state_update",
                    check=lambda member, _before, _after: member.id == me.id and done(),
                    timeout=STAGE_SPEAKER_WAIT,
                )

    async def leave(self, guild_id: int, *, reason: str) -> None:
        """Stop playing, clear the queue and disconnect from the server's voice channel."""
        player = self.players.pop(guild_id, None)
        self._alone_since.pop(guild_id, None)
        self._unconnected_since.pop(guild_id, None)
        self._dropped.discard(guild_id)
        self._heard_again(guild_id)
        if player is not None:
            await player.close()
            client = player.voice_client
        else:
            guild = self.bot.get_guild(guild_id)
            client = guild.voice_client if guild is not None else None  # type: ignore[assignment]
        if client is not None and client.is_connected():
            try:
                await client.disconnect(force=True)
            except Exception:
                log.exception("leaving voice in server %s failed", guild_id)
        elif client is not None:
            client.cleanup()
        log.info("left voice in server %s (%s)", guild_id, reason)

    def _watch_connection(self, guild_id: int, client: discord.VoiceClient) -> None:
        """Learn how the voice connection ends: connect(reconnect=False) leaves reconnecting to us."""
        runner = connection_task(client)
        if runner is not None:
            runner.add_done_callback(lambda task: self._connection_ended(guild_id, task))

    def _connection_ended(self, guild_id: int, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so asyncio does not report it as lost
        if isinstance(error, discord.ConnectionClosed) and error.code == E2EE_REQUIRED:
            log.error("voice connection of server %s closed: %s", guild_id, E2EE_REQUIRED_FIX)
            return
        dropped = isinstance(error, TimeoutError | OSError) or (
            isinstance(error, discord.ConnectionClosed) and error.code not in DELIBERATE_CLOSE_CODES
        )
        if dropped and guild_id in self.players:
            log.info("voice connection of server %s dropped (%s)", guild_id, error)
            self._dropped.add(guild_id)

    async def bot_moved(self, guild_id: int, before: discord.VoiceState, after: discord.VoiceState) -> None:
        """The bot's own voice state changed: rejoin after a drop, leave when disconnected, clear when moved."""
        if guild_id not in self.players:
            return
        if after.channel is None:
            await asyncio.sleep(DROP_GRACE_SECONDS)
            player = self.players.get(guild_id)
            if player is None:
                return
            channel = before.channel
            if guild_id in self._dropped and isinstance(channel, discord.VoiceChannel | discord.StageChannel):
                self._dropped.discard(guild_id)
                await self._rejoin(guild_id, player, channel)
            else:
                await self.leave(guild_id, reason="disconnected")
            return
        player = self.players.get(guild_id)
        if player is not None and before.channel is not None and after.channel.id != before.channel.id:
            dropped = player.clear()
            log.info("moved in server %s; cleared %d clips", guild_id, dropped)

    async def _rejoin(self, guild_id: int, player: GuildPlayer, channel: VoiceChannel) -> None:
        """Connect again to the channel a dropped connection was in, keeping the queue."""
        guild = self.bot.get_guild(guild_id)
        try:
            if guild is not None and guild.voice_client is not None:
                guild.voice_client.cleanup()
            client: discord.VoiceClient = await channel.connect(
                reconnect=False, timeout=CONNECT_TIMEOUT, self_deaf=True
            )
        except Exception as error:
            log.warning("rejoining voice in server %s failed: %s", guild_id, error)
            await self.leave(guild_id, reason="rejoin failed")
            return
        self._watch_connection(guild_id, client)
        player.voice_client = client
        log.info("rejoined voice in server %s after a dropped connection; queue kept", guild_id)
        if guild is not None:
            await self.take_the_stage(guild, channel)
            self.assess(guild)

    # ----- only while someone can hear -----

    def assess(self, guild: discord.Guild) -> None:
        """Hold the player while nobody can hear the bot, and let it go on once someone can."""
        player = self.players.get(guild.id)
        channel = self.connected_channel(guild)
        if player is None or channel is None:
            self._heard_again(guild.id)
            return
        reason = why_unheard(channel, guild.me)
        if reason is None:
            if guild.id in self._unheard:
                log.info("heard again in server %s; playback goes on", guild.id)
            self._heard_again(guild.id)
            player.resume()
            return
        player.hold()
        if guild.id not in self._unheard:
            log.info("nobody can hear the bot in server %s: %s", guild.id, reason)
            timer = self.bot.spawn(self._stop_unheard(guild.id), name=f"unheard:{guild.id}")
            self._unheard[guild.id] = (reason, timer)

    def _heard_again(self, guild_id: int) -> None:
        entry = self._unheard.pop(guild_id, None)
        if entry is not None and entry[1] is not asyncio.current_task():
            entry[1].cancel()

    async def _stop_unheard(self, guild_id: int) -> None:
        await asyncio.sleep(UNHEARD_SECONDS)
        guild = self.bot.get_guild(guild_id)
        player = self.players.get(guild_id)
        if guild is None or player is None:
            return
        reason = self.unheard(guild)
        if reason is None:  # heard again just now, before an event said so
            self._heard_again(guild_id)
            player.resume()
            return
        dropped = player.clear()
        log.info(
            "nobody heard the bot for %.0f s in server %s (%s): stopped and cleared %d clips",
            UNHEARD_SECONDS,
            guild_id,
            reason,
            dropped,
        )

    # ----- leaving when alone or idle -----

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            for guild_id, player in list(self.players.items()):
                try:
                    await self._check_player(guild_id, player)
                except Exception:
                    log.exception("voice watch failed for server %s", guild_id)

    async def _check_player(self, guild_id: int, player: GuildPlayer) -> None:
        settings = self.bot.settings
        client = player.voice_client
        now = time.monotonic()
        if not client.is_connected():
            # A drop is rejoined by bot_moved; a connection that never comes back is given up.
            since = self._unconnected_since.setdefault(guild_id, now)
            if now - since > 2 * CONNECT_TIMEOUT:
                await self.leave(guild_id, reason="connection lost")
            return
        self._unconnected_since.pop(guild_id, None)
        guild = self.bot.get_guild(guild_id)
        channel = client.channel
        if guild is None or not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            return
        # No event marks the end of a timeout: it is noticed here, within a second.
        self.assess(guild)
        if humans(channel, guild.me.id) == 0:
            since = self._alone_since.setdefault(guild_id, now)
            if now - since >= settings.voice_alone_seconds:
                await self.leave(guild_id, reason="alone")
                return
        else:
            self._alone_since.pop(guild_id, None)
        if player.idle and now - player.last_active >= settings.voice_idle_seconds:
            await self.leave(guild_id, reason="idle")
