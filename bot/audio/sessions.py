"""Voice sessions: joining, leaving and rejoining each server's voice channel, and playing only while heard.

The mechanism behind the voice cogs (`cogs/voice.py`'s commands, `cogs/readouts.py`, `cogs/voice_events.py`): one
GuildPlayer per connected server. Each server's channel is recorded in the database while connected, and rejoined
at the next start (`bot/audio/rejoin.py`). A dropped connection is rejoined with its queue; a disconnect on purpose
clears it and forgets the channel; the bot leaves when alone or idle. On a stage it makes itself a speaker with Mute
Members, or asks to speak. While nobody can hear it (`bot/audio/audibility.py`) the player holds: nothing new is
synthesised or started and the clip playing pauses; after UNHEARD_SECONDS the queue is cleared (clips not yet sent
give their credits back), and it goes on by itself once it can be heard again.
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
from bot.audio.rejoin import SessionRestorer
from bot.budget import Reservation
from bot.errors import UserFacingError
from bot.i18n import Text, _, listing, pgettext
from bot.limits import shorten
from bot.speech import SpeechPlan
from bot.text import catch_up_rate
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

# Discord's names of the permissions the answers mention (as its settings show them to the member).
VIEW_CHANNEL = pgettext("permission", "View Channel")
CONNECT = pgettext("permission", "Connect")
SPEAK = pgettext("permission", "Speak")
MOVE_MEMBERS = pgettext("permission", "Move Members")
MUTE_MEMBERS = pgettext("permission", "Mute Members")
REQUEST_TO_SPEAK = pgettext("permission", "Request to Speak")


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
        self._unheard: dict[int, tuple[Text, asyncio.Task[None]]] = {}
        self._watcher: asyncio.Task[None] | None = None
        # Set at shutdown: the channels stay recorded for the next start, and nothing joins any more.
        self.stopping = False
        self.restorer = SessionRestorer(bot, self)
        bot.metrics.queued_clips.set_function(lambda: sum(len(player) for player in self.players.values()))

    def start(self) -> None:
        """Start watching for channels the bot should leave and for playback nobody hears."""
        if self._watcher is None:
            self._watcher = self.bot.spawn(self._watch(), name="voice-watch")

    async def shutdown(self) -> None:
        """Leave every voice channel, keeping each recorded for the next start (called before the bot disconnects)."""
        self.stopping = True
        self.restorer.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        for guild_id in list(self.players):
            await self.leave(guild_id, reason="shutdown", forget=False)

    # ----- the record of each server's channel, rejoined at the next start (bot/audio/rejoin.py) -----

    async def _record(self, guild_id: int, channel_id: int) -> None:
        try:
            await self.bot.storage.continuity().record_voice_session(guild_id, channel_id)
        except Exception as error:
            log.warning("could not record the voice channel of server %s: %s", guild_id, error)

    async def forget(self, guild_id: int) -> None:
        """Forget the server's recorded channel: the bot left it on purpose, so the next start does not rejoin it."""
        try:
            await self.bot.storage.continuity().forget_voice_session(guild_id)
        except Exception as error:
            log.warning("could not forget the voice channel of server %s: %s", guild_id, error)

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

    def join_problem(self, guild: discord.Guild, target: VoiceChannel, *, may_move: bool) -> VoiceError | None:
        """Why the bot may not join `target` for a member now (None when it may), as /join answers it.

        The bot must not be timed out, needs View Channel and Connect there (and Speak in a voice channel, Mute
        Members or Request to Speak on a stage), room in the channel unless it may move members, and is not taken
        from another channel of the server where it is busy unless it is alone or idle there or the member
        (`may_move`: has Move Members) could move it.
        """
        me = guild.me
        if me.is_timed_out():
            return VoiceError(
                _("I can't play in {channel} now: {reason}.", channel=target.mention, reason=why_unheard(target, me))
            )
        permissions = target.permissions_for(me)
        needed = [(VIEW_CHANNEL, permissions.view_channel), (CONNECT, permissions.connect)]
        if isinstance(target, discord.VoiceChannel):
            needed.append((SPEAK, permissions.speak))
        missing = [name for name, granted in needed if not granted]
        if missing:
            return VoiceError(
                _(
                    "I can't play in {channel}: I need the {permissions} permission there; ask an admin to grant it.",
                    channel=target.mention,
                    permissions=listing(missing, conjunction=True),
                )
            )
        client = self.voice_client(guild)
        if client is not None and client.channel.id != target.id:
            player = self.players.get(guild.id)
            alone = humans(client.channel, me.id) == 0  # type: ignore[arg-type]
            idle = player is None or player.idle
            if not (alone or idle or may_move):
                return VoiceError(
                    _(
                        "I'm busy in {channel}; join me there, or wait until I'm done (members with {move_members} "
                        "can move me).",
                        channel=client.channel.mention,
                        move_members=MOVE_MEMBERS,
                    )
                )
        elif client is None and target.user_limit and len(target.voice_states) >= target.user_limit:
            if not permissions.move_members:
                return VoiceError(_("{channel} is full; make room or pick another channel.", channel=target.mention))
        if isinstance(target, discord.StageChannel) and not (permissions.mute_members or permissions.request_to_speak):
            here = self.connected_channel(guild)
            if not (here is not None and here.id == target.id and is_speaker(target, me)):
                return VoiceError(
                    _(
                        "I can't speak on the stage {stage}: I need the {mute_members} permission there to make "
                        "myself a speaker, or {request_to_speak} to ask a moderator; ask an admin to grant one.",
                        stage=target.mention,
                        mute_members=MUTE_MEMBERS,
                        request_to_speak=REQUEST_TO_SPEAK,
                    )
                )
        return None

    def unheard(self, guild: discord.Guild) -> Text | None:
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
        readout: bool = False,
    ) -> Clip:
        """A queue entry that synthesises `plan` only when it is about to play, owning `reservation`.

        A readout catches up (PRODUCT.md, Continuity): when it is sent while 5 or more readouts are queued in the
        server, itself included, it is spoken faster, with voices that can change their speed.
        """
        speech = self.bot.speech

        async def chunks() -> AsyncIterator[bytes]:
            sent = plan
            # Voice plays only in a server, so a voice clip's plan always has one.
            player = self.players.get(plan.guild_id) if plan.guild_id is not None else None
            if readout and player is not None and plan.voice.has_capability("speech:rate"):
                queued = player.readouts_queued()
                sent = plan.with_rate(catch_up_rate(plan.rate, queued))
                if sent is not plan:
                    log.info("catch-up in server %s: %d readouts queued, sent at %s", plan.guild_id, queued, sent.rate)
            async for chunk in speech.iter_chunks(sent, reservation):
                yield chunk.audio

        return Clip(
            label=label,
            requested_by=requested_by,
            chunks=chunks(),
            release=reservation.release_all,
            on_failure=on_failure,
            from_message=plan.from_message,
            readout=readout,
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
                await self.leave(guild.id, reason="moving", forget=False)
                client = None
            if client is not None and not client.is_connected():
                client.cleanup()  # a dead connection; forget it without telling Discord we left
                client = None
            if client is None:
                if self.stopping:
                    raise VoiceError(_("I'm restarting; try again in a minute."))
                client = await self._connect(guild, channel)
                await self._record(guild.id, channel.id)
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
                    _(
                        "I can't play in voice until I'm updated: Discord requires end-to-end encrypted voice, "
                        "which this version of me cannot offer; my operator can see why in the logs."
                    )
                ) from None
            log.warning("could not connect to voice in server %s: %s", guild.id, error)
            raise VoiceError(
                _(
                    "I couldn't connect to {channel}; check that I have {connect} and {speak} there and try again.",
                    channel=channel.mention,
                    connect=pgettext("permission", "Connect"),
                    speak=pgettext("permission", "Speak"),
                )
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

    async def leave(self, guild_id: int, *, reason: str, forget: bool = True) -> None:
        """Stop playing, clear the queue and disconnect from the server's voice channel.

        The recorded channel is forgotten unless `forget` is false (a shutdown, a move to another channel, a shard
        moving to another process): a channel left on purpose is not rejoined at the next start.
        """
        if forget and not self.stopping:
            await self.forget(guild_id)
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
            if not self.stopping:
                await self._record(guild_id, after.channel.id)

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
