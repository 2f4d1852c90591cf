"""Voice channels: /join, /leave, /skip, /stop, /queue, playing /say and Read aloud, and readouts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.audio.player import Clip, GuildPlayer, QueueFullError
from bot.budget import BudgetError, Reservation
from bot.errors import UserFacingError
from bot.i18n import Message, _, command, counted, joined, listing, pgettext
from bot.i18n.interactions import render
from bot.limits import CONTENT, fit_lines, shorten
from bot.markdown import as_typed
from bot.mentions import guild_names, speakable_name
from bot.replies import READOUTS_OFF, answer, defer, follow_up
from bot.speech import SayOptions, SpeechPlan
from bot.text import clean_message, is_speakable
from bot.tree import message_for
from bot.voice_internals import connection_task

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

XSAID_REPEAT_SECONDS = 30.0
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
LABEL_LENGTH = 60
# Discord takes follow-ups for 15 minutes after an interaction; past 14 a failure is only logged.
FOLLOW_UP_SECONDS = 14 * 60

VoiceChannel = discord.VoiceChannel | discord.StageChannel


class VoiceError(UserFacingError):
    """A voice-channel request that cannot be done, with what to do instead."""


# Discord's names of the permissions the answers mention (as its settings show them to the member).
VIEW_CHANNEL = pgettext("permission", "View Channel")
CONNECT = pgettext("permission", "Connect")
SPEAK = pgettext("permission", "Speak")


def _queue_full(player: GuildPlayer) -> VoiceError:
    return VoiceError(
        _(
            "The queue is full ({count} clips); wait for it to play or use {stop} to clear it.",
            count=player.max_queue,
            stop=command("stop"),
        )
    )


def _label(plan: SpeechPlan) -> str:
    """How a clip is listed in /queue: its voice and the start of its text."""
    return clip_label(plan.voice.character or "speech", plan.text)


def _channel_humans(channel: VoiceChannel, bot_id: int) -> int:
    """How many members other than bots are in a voice channel."""
    count = 0
    for user_id in channel.voice_states:
        if user_id == bot_id:
            continue
        member = channel.guild.get_member(user_id)
        if member is not None and member.bot:
            continue
        count += 1
    return count


def _voice_channel(member: discord.abc.User) -> VoiceChannel | None:
    """The voice channel a member is in, from the gateway's voice states (None for a user outside a server)."""
    voice = member.voice if isinstance(member, discord.Member) else None
    channel = voice.channel if voice is not None else None
    return channel if isinstance(channel, discord.VoiceChannel | discord.StageChannel) else None


def _caller_channel(interaction: discord.Interaction[Any]) -> VoiceChannel | None:
    return _voice_channel(interaction.user)


def clip_label(speaker: str, text: str) -> str:
    """A queue line for a clip: who or which voice, and the start of the text, both kept short."""
    # One line each in /queue, whatever line breaks the text had.
    return f"{shorten(' '.join(speaker.split()), LABEL_LENGTH)}: {shorten(' '.join(text.split()), LABEL_LENGTH)}"


async def _chunk_bytes(bot: UnmixrBot, plan: SpeechPlan, reservation: Reservation) -> AsyncIterator[bytes]:
    async for chunk in bot.speech.iter_chunks(plan, reservation):
        yield chunk.audio


FailureNotice = Callable[[BaseException], Coroutine[Any, Any, None]]


def _failure_notice(interaction: discord.Interaction[Any], label: str) -> FailureNotice:
    """Tell the requester, privately, that their queued clip failed (while Discord still takes follow-ups)."""

    async def notify(error: BaseException) -> None:
        age = discord.utils.utcnow() - interaction.created_at
        reason = message_for(error) or _("something went wrong on our side")
        if age.total_seconds() >= FOLLOW_UP_SECONDS:
            log.info("queued clip %r failed after its interaction expired: %s", label, reason)
            return
        try:
            await follow_up(
                interaction, _("Your clip “{clip}” was skipped: {reason}", clip=as_typed(label), reason=reason)
            )
        except discord.HTTPException:
            log.info("could not tell the requester that clip %r failed", label)

    return notify


class Voice(commands.Cog):
    """Playback in voice channels and readouts of the readout channel."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        self.players: dict[int, GuildPlayer] = {}
        self._alone_since: dict[int, float] = {}
        self._last_said: dict[int, tuple[int, float]] = {}
        self._readout_locks: dict[int, asyncio.Lock] = {}
        self._connect_locks: dict[int, asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._dropped: set[int] = set()
        self._unconnected_since: dict[int, float] = {}

    async def cog_load(self) -> None:
        """Start watching for channels the bot should leave, and report the queues' length in the metrics."""
        self._watcher = self.bot.spawn(self._watch(), name="voice-watch")
        self.bot.metrics.queued_clips.set_function(lambda: sum(len(player) for player in self.players.values()))

    async def cog_unload(self) -> None:
        """Stop watching and leave every channel."""
        await self.shutdown()

    async def shutdown(self) -> None:
        """Leave every voice channel (called before the bot disconnects)."""
        if self._watcher is not None:
            self._watcher.cancel()
        for guild_id in list(self.players):
            await self._leave(guild_id, reason="shutdown")

    # ----- checks used by /say and Read aloud -----

    def _voice_client(self, guild: discord.Guild) -> discord.VoiceClient | None:
        client = guild.voice_client
        return client if isinstance(client, discord.VoiceClient) else None

    def in_callers_channel(self, interaction: discord.Interaction[Any]) -> bool:
        """Whether the bot is connected in the caller's voice channel."""
        if interaction.guild is None:
            return False
        client = self._voice_client(interaction.guild)
        channel = _caller_channel(interaction)
        return client is not None and channel is not None and client.channel.id == channel.id

    async def check_can_play(self, interaction: discord.Interaction[Any], channel: VoiceChannel | None = None) -> None:
        """Refuse, with what to do, when the bot cannot play in the caller's (or the given) channel."""
        guild = interaction.guild
        assert guild is not None
        target = channel or _caller_channel(interaction)
        if target is None:
            raise VoiceError(_("Join a voice channel first, then try again (or leave out `play` to get a file)."))
        me = guild.me
        permissions = target.permissions_for(me)
        missing = [
            name
            for name, granted in (
                (VIEW_CHANNEL, permissions.view_channel),
                (CONNECT, permissions.connect),
                (SPEAK, permissions.speak),
            )
            if not granted
        ]
        if missing:
            raise VoiceError(
                _(
                    "I can't play in {channel}: I need the {permissions} permission there; ask an admin to grant it.",
                    channel=target.mention,
                    permissions=listing(missing, conjunction=True),
                )
            )
        client = self._voice_client(guild)
        if client is not None and client.channel.id != target.id:
            player = self.players.get(guild.id)
            alone = _channel_humans(client.channel, me.id) == 0  # type: ignore[arg-type]
            idle = player is None or player.idle
            if not (alone or idle or interaction.permissions.move_members):
                raise VoiceError(
                    _(
                        "I'm busy in {channel}; join me there, or wait until I'm done (members with {move_members} "
                        "can move me).",
                        channel=client.channel.mention,
                        move_members=pgettext("permission", "Move Members"),
                    )
                )
        elif client is None and target.user_limit and len(target.voice_states) >= target.user_limit:
            if not permissions.move_members:
                raise VoiceError(_("{channel} is full; make room or pick another channel.", channel=target.mention))

    async def ensure_connected(self, guild: discord.Guild, channel: VoiceChannel) -> GuildPlayer:
        """Connect to (or move to) `channel` and return the server's player."""
        lock = self._connect_locks.setdefault(guild.id, asyncio.Lock())
        async with lock:
            client = self._voice_client(guild)
            player = self.players.get(guild.id)
            if client is not None and client.is_connected() and client.channel.id == channel.id and player:
                return player
            if client is not None and client.channel.id != channel.id:
                await self._leave(guild.id, reason="moving")
                client = None
            if client is not None and not client.is_connected():
                client.cleanup()  # a dead connection; forget it without telling Discord we left
                client = None
            if client is None:
                try:
                    client = await channel.connect(reconnect=False, timeout=CONNECT_TIMEOUT, self_deaf=True)
                except (TimeoutError, discord.ClientException, discord.HTTPException) as error:
                    if isinstance(error, discord.ConnectionClosed) and error.code == E2EE_REQUIRED:
                        # Not a permission problem: no grant fixes it, only an update of the bot.
                        log.error("could not connect to voice in server %s: %s", guild.id, E2EE_REQUIRED_FIX)
                        raise VoiceError(
                            _(
                                "I can't play in voice until I'm updated: Discord requires end-to-end encrypted "
                                "voice, which this version of me cannot offer; my operator can see why in the logs."
                            )
                        ) from None
                    log.warning("could not connect to voice in server %s: %s", guild.id, error)
                    raise VoiceError(
                        _(
                            "I couldn't connect to {channel}; check that I have {connect} and {speak} there and try "
                            "again.",
                            channel=channel.mention,
                            connect=CONNECT,
                            speak=SPEAK,
                        )
                    ) from None
                self._watch_connection(guild.id, client)
            player = self.players.get(guild.id)
            if player is None:
                player = GuildPlayer(guild.id, client, cache=self.bot.audio_cache)
                self.players[guild.id] = player
            else:
                player.voice_client = client
            self._alone_since.pop(guild.id, None)
            return player

    def check_room(self, interaction: discord.Interaction[Any]) -> None:
        """Refuse before anything is reserved when the server's queue is already full."""
        assert interaction.guild is not None
        player = self.players.get(interaction.guild.id)
        if player is not None and not player.has_room:
            raise _queue_full(player)

    async def enqueue(self, interaction: discord.Interaction[Any], plan: SpeechPlan, reservation: Reservation) -> int:
        """Queue a planned request in the caller's channel and return its position.

        The clip owns `reservation` from here: it is synthesised when it is next to play, and gives its credits
        back if it is dropped first. A clip that starts at once is waited for, so a failure is the answer.
        """
        guild = interaction.guild
        assert guild is not None
        channel = _caller_channel(interaction)
        if channel is None:
            await reservation.release_all()
            raise VoiceError(_("Join a voice channel first, then try again."))
        try:
            player = await self.ensure_connected(guild, channel)
        except BaseException:
            await reservation.release_all()
            raise
        label = _label(plan)
        return await self._enqueue_plan(
            player, plan, reservation, interaction.user.id, _failure_notice(interaction, label), label
        )

    async def _enqueue_plan(
        self,
        player: GuildPlayer,
        plan: SpeechPlan,
        reservation: Reservation,
        user_id: int | None,
        on_failure: FailureNotice | None,
        label: str,
    ) -> int:
        clip = Clip(
            label=label,
            requested_by=user_id,
            chunks=_chunk_bytes(self.bot, plan, reservation),
            release=reservation.release_all,
            on_failure=on_failure,
            from_message=plan.from_message,
        )
        try:
            position = player.enqueue(clip)
        except QueueFullError:
            await reservation.release_all()
            raise _queue_full(player) from None
        try:
            await clip.first_ready()
        except BaseException:
            # Nothing was playable (out of credits, ...): take it back out and report why.
            if clip in player.queue:
                player.queue.remove(clip)
            clip.cancel()
            raise
        return position

    # ----- commands -----

    def _require_same_channel(self, interaction: discord.Interaction[Any]) -> tuple[discord.VoiceClient, GuildPlayer]:
        guild = interaction.guild
        assert guild is not None
        client = self._voice_client(guild)
        player = self.players.get(guild.id)
        if client is None or player is None:
            raise VoiceError(_("I'm not in a voice channel; use {join} first.", join=command("join")))
        caller = _caller_channel(interaction)
        if caller is None or caller.id != client.channel.id:
            raise VoiceError(_("Join {channel} to control playback there.", channel=client.channel.mention))
        return client, player

    @app_commands.command(name="join", description="Bring the bot into your voice channel (or the one given).")
    @app_commands.describe(channel="A voice channel (default: yours)")
    async def join(
        self,
        interaction: discord.Interaction[UnmixrBot],
        channel: discord.VoiceChannel | discord.StageChannel | None = None,
    ) -> None:
        """Join the caller's voice channel or the given one."""
        guild = interaction.guild
        assert guild is not None
        target = channel or _caller_channel(interaction)
        if target is None:
            raise VoiceError(
                _(
                    "Join a voice channel first, or name one with the `{option}` option.",
                    option=pgettext("option", "channel"),
                )
            )
        if channel is not None:
            # The bot must not become a way into a channel the caller could not enter themselves.
            caller = interaction.user
            theirs = channel.permissions_for(caller) if isinstance(caller, discord.Member) else discord.Permissions()
            missing = [name for name, ok in ((VIEW_CHANNEL, theirs.view_channel), (CONNECT, theirs.connect)) if not ok]
            if missing:
                raise VoiceError(
                    _(
                        "You can't bring me to {channel}: you need the {permissions} permission there yourself; pick "
                        "a channel you can join.",
                        channel=channel.mention,
                        permissions=listing(missing, conjunction=True),
                    )
                )
        client = self._voice_client(guild)
        if client is not None and client.channel.id == target.id and client.is_connected():
            await answer(interaction, _("I'm already in {channel}.", channel=target.mention), ephemeral=True)
            return
        await self.check_can_play(interaction, target)
        await defer(interaction, ephemeral=True)
        await self.ensure_connected(guild, target)
        server = await self.bot.storage.get_guild_settings(guild.id)
        joined_message: Message = _("Joined {channel}.", channel=target.mention)
        readouts = f"<#{server.readout_channel_id}>"
        if server.readout_channel_id and self.bot.readouts_enabled:
            joined_message = _(
                "Joined {channel}. Messages in {readouts} from members here will be read aloud.",
                channel=target.mention,
                readouts=readouts,
            )
        elif server.readout_channel_id:
            joined_message = joined([joined_message, "\n-# ", READOUTS_OFF])
        await answer(interaction, joined_message, ephemeral=True)

    @app_commands.command(name="leave", description="Make the bot leave its voice channel.")
    async def leave(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Leave the voice channel and clear the queue."""
        client, _player = self._require_same_channel(interaction)
        channel = client.channel
        await defer(interaction, ephemeral=True)
        assert interaction.guild_id is not None
        await self._leave(interaction.guild_id, reason="asked")
        await answer(interaction, _("Left {channel} and cleared the queue.", channel=channel.mention), ephemeral=True)

    @app_commands.command(name="skip", description="Skip the clip that is playing.")
    async def skip(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Skip one clip."""
        _client, player = self._require_same_channel(interaction)
        clip = player.skip()
        if clip is None:
            await answer(interaction, _("Nothing is playing."), ephemeral=True)
            return
        skipped = counted(
            len(player.queue),
            "Skipped {clip}; {count} clip left in the queue.",
            "Skipped {clip}; {count} clips left in the queue.",
            clip=clip.label,
        )
        await answer(interaction, skipped, ephemeral=True)

    @app_commands.command(name="stop", description="Stop playing and clear the queue.")
    async def stop(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Clear the queue."""
        _client, player = self._require_same_channel(interaction)
        dropped = player.clear()
        cleared = counted(dropped, "Stopped and cleared {count} clip.", "Stopped and cleared {count} clips.")
        await answer(interaction, cleared, ephemeral=True)

    @app_commands.command(name="queue", description="What is playing and what is waiting.")
    async def queue(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """List the queue."""
        _client, player = self._require_same_channel(interaction)
        if player.idle:
            await answer(interaction, _("The queue is empty."), ephemeral=True)
            return
        now = [_("Now: {clip}", clip=as_typed(player.current.label))] if player.current is not None else []
        lines = [render(interaction, line) for line in now]
        lines += [f"{position}. {as_typed(clip.label)}" for position, clip in enumerate(player.queue, start=2)]
        fitted = fit_lines(
            lines, CONTENT, lambda left: render(interaction, counted(left, "… and {count} more", "… and {count} more"))
        )
        await answer(interaction, fitted, ephemeral=True)

    # ----- readouts -----

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Speak new messages of the readout channel from members in the bot's voice channel."""
        guild = message.guild
        if guild is None or not self.bot.readouts_enabled or message.author.bot or message.webhook_id is not None:
            return
        player = self.players.get(guild.id)
        client = self._voice_client(guild)
        if player is None or client is None:
            return
        server = await self.bot.storage.get_guild_settings(guild.id)
        if server.readout_channel_id != message.channel.id:
            return
        author = message.author
        channel = _voice_channel(author)
        if channel is None or channel.id != client.channel.id:
            return
        if server.ignore_role_id and isinstance(author, discord.Member) and author.get_role(server.ignore_role_id):
            return
        if message.content.startswith(self.bot.settings.readout_skip_prefix):
            return
        lock = self._readout_locks.setdefault(guild.id, asyncio.Lock())
        async with lock:  # messages are planned and queued in the order they arrived
            await self._read_out(message, player, server.max_length or 6000, server.xsaid is not False)

    async def _read_out(self, message: discord.Message, player: GuildPlayer, limit: int, xsaid: bool) -> None:
        guild = message.guild
        assert guild is not None
        names = await guild_names(guild, self.bot.storage, message.content, self.bot.member_lookups, message.mentions)
        # Cleaned once the clip's language is known (its readout words); speakable in every language alike.
        text = clean_message(message.content, names, max_length=limit)
        if not is_speakable(text):
            return
        speaker: str | None = None
        now = time.monotonic()
        last = self._last_said.get(guild.id)
        if xsaid and not (last and last[0] == message.author.id and now - last[1] < XSAID_REPEAT_SECONDS):
            speaker = await speakable_name(self.bot.storage, guild.id, message.author)
        try:
            if not player.has_room:
                raise QueueFullError()
            plan = await self.bot.speech.plan(
                guild_id=guild.id,
                user_id=message.author.id,
                text=lambda words: clean_message(message.content, names, max_length=limit, words=words),
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
        label = clip_label(message.author.display_name, text)
        clip = Clip(
            label=label,
            requested_by=message.author.id,
            chunks=_chunk_bytes(self.bot, plan, reservation),
            release=reservation.release_all,
            from_message=plan.from_message,
        )
        try:
            player.enqueue(clip)
        except QueueFullError:
            await reservation.release_all()
            log.info("readout skipped in server %s: the queue is full", guild.id)

    # ----- leaving and reconnecting -----

    async def _leave(self, guild_id: int, *, reason: str) -> None:
        player = self.players.pop(guild_id, None)
        self._alone_since.pop(guild_id, None)
        self._unconnected_since.pop(guild_id, None)
        self._dropped.discard(guild_id)
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

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Rejoin after a dropped connection; clear the queue when disconnected or moved by someone else."""
        if self.bot.user is None or member.id != self.bot.user.id:
            return
        guild_id = member.guild.id
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
                await self._leave(guild_id, reason="disconnected")
            return
        player = self.players.get(guild_id)
        if player is not None and before.channel is not None and after.channel.id != before.channel.id:
            dropped = player.clear()
            log.info("moved in server %s; cleared %d clips", guild_id, dropped)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """After a restart, drop a voice connection Discord still shows but this process does not hold."""
        me = guild.me
        if me is not None and me.voice is not None and me.voice.channel is not None and guild.voice_client is None:
            await guild.change_voice_state(channel=None)

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
            # A drop is rejoined by on_voice_state_update; a connection that never comes back is given up.
            since = self._unconnected_since.setdefault(guild_id, now)
            if now - since > 2 * CONNECT_TIMEOUT:
                await self._leave(guild_id, reason="connection lost")
            return
        self._unconnected_since.pop(guild_id, None)
        channel = client.channel
        if _channel_humans(channel, self.bot.user.id if self.bot.user else 0) == 0:  # type: ignore[arg-type]
            since = self._alone_since.setdefault(guild_id, now)
            if now - since >= settings.voice_alone_seconds:
                await self._leave(guild_id, reason="alone")
                return
        else:
            self._alone_since.pop(guild_id, None)
        if player.idle and now - player.last_active >= settings.voice_idle_seconds:
            await self._leave(guild_id, reason="idle")

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
            await self._leave(guild_id, reason="rejoin failed")
            return
        self._watch_connection(guild_id, client)
        player.voice_client = client
        log.info("rejoined voice in server %s after a dropped connection; queue kept", guild_id)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Voice(bot))
