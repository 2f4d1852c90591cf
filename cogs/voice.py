"""Voice control: /join, /leave, /skip, /stop, /queue, and queueing /say and Read aloud in the caller's channel.

The checks and queueing /say uses (`SpeechQueue` in `cogs/say.py`) live here; the connections themselves, and
whether anyone can hear the bot, in `bot/audio/sessions.py`; readouts in `cogs/readouts.py`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.audio.audibility import VoiceChannel, is_speaker, why_unheard
from bot.audio.player import GuildPlayer, QueueFullError
from bot.audio.sessions import (
    CONNECT,
    VIEW_CHANNEL,
    FailureNotice,
    VoiceError,
    VoiceSessions,
    clip_label,
    voice_channel,
)
from bot.budget import Reservation
from bot.i18n import Message, _, command, counted, joined, listing, pgettext
from bot.i18n.interactions import render
from bot.limits import CONTENT, fit_lines
from bot.markdown import as_typed
from bot.replies import READOUTS_OFF, answer, defer, follow_up
from bot.speech import SpeechPlan
from bot.tree import message_for

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

# Discord takes follow-ups for 15 minutes after an interaction; past 14 a failure is only logged.
FOLLOW_UP_SECONDS = 14 * 60


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


def _caller_channel(interaction: discord.Interaction[Any]) -> VoiceChannel | None:
    return voice_channel(interaction.user)


def _failure_notice(interaction: discord.Interaction[Any], label: str) -> FailureNotice:
    """Tell the requester, privately, that their queued clip failed (while Discord still takes follow-ups)."""

    async def notify(error: BaseException) -> None:
        age = discord.utils.utcnow() - interaction.created_at
        reason = message_for(error) or _("something went wrong on our side")
        if age.total_seconds() >= FOLLOW_UP_SECONDS:
            log.info("queued clip %r failed after its interaction expired: %s", label, reason)
            return
        try:
            skipped = _("Your clip “{clip}” was skipped: {reason}", clip=as_typed(label), reason=reason)
            await follow_up(interaction, skipped)
        except discord.HTTPException:
            log.info("could not tell the requester that clip %r failed", label)

    return notify


class Voice(commands.Cog):
    """Voice-channel commands, and playing /say and Read aloud there."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    @property
    def sessions(self) -> VoiceSessions:
        """The process's voice connections and players."""
        return self.bot.voice

    @property
    def players(self) -> dict[int, GuildPlayer]:
        """Each connected server's player."""
        return self.sessions.players

    async def cog_load(self) -> None:
        """Start watching the voice connections."""
        self.sessions.start()

    async def cog_unload(self) -> None:
        """Leave every channel."""
        await self.shutdown()

    async def shutdown(self) -> None:
        """Leave every voice channel (called before the bot disconnects)."""
        await self.sessions.shutdown()

    # ----- checks used by /say and Read aloud -----

    def in_callers_channel(self, interaction: discord.Interaction[Any]) -> bool:
        """Whether the bot plays in the caller's voice channel, where someone can hear it."""
        guild = interaction.guild
        if guild is None:
            return False
        here = self.sessions.connected_channel(guild)
        channel = _caller_channel(interaction)
        return (
            here is not None and channel is not None and here.id == channel.id and why_unheard(here, guild.me) is None
        )

    async def check_can_play(
        self, interaction: discord.Interaction[Any], channel: VoiceChannel | None = None, *, joining: bool = False
    ) -> None:
        """Refuse, with what to do, when the bot cannot play in the caller's (or the given) channel.

        For `/say play: true` also when nobody could hear it there; `joining` (for /join) lets the bot join anyway.
        On a stage where the bot may only ask to speak, `play: true` makes it join and ask, and is then answered that
        it waits for a moderator: nothing is queued.
        """
        guild = interaction.guild
        assert guild is not None
        target = channel or _caller_channel(interaction)
        if target is None:
            raise VoiceError(_("Join a voice channel first, then try again (or leave out `play` to get a file)."))
        problem = self.sessions.join_problem(guild, target, may_move=interaction.permissions.move_members)
        if problem is not None:
            raise problem
        if isinstance(target, discord.StageChannel):
            await self._check_stage(interaction, target, joining=joining)
        if not joining:
            reason = why_unheard(target, guild.me)
            if reason is not None:
                raise VoiceError(
                    _(
                        "Nobody can hear me in {channel} right now: {reason} (or leave out `play` to get a file).",
                        channel=target.mention,
                        reason=reason,
                    )
                )

    async def _check_stage(
        self, interaction: discord.Interaction[Any], stage: discord.StageChannel, *, joining: bool
    ) -> None:
        """A stage: the bot needs Mute Members to make itself a speaker, or Request to Speak to ask a moderator."""
        guild = stage.guild
        me = guild.me
        permissions = stage.permissions_for(me)
        here = self.sessions.connected_channel(guild)
        # Without Mute Members or Request to Speak, join_problem has refused already.
        if (here is not None and here.id == stage.id and is_speaker(stage, me)) or permissions.mute_members:
            return
        if joining:
            return  # /join joins and asks, and says so
        await defer(interaction, ephemeral=True)
        await self.sessions.ensure_connected(guild, stage)
        raise VoiceError(
            _(
                "I've asked to speak on the stage {stage} and wait for a moderator to invite me; nothing was queued, "
                "so try again once I'm a speaker.",
                stage=stage.mention,
            )
        )

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
            player = await self.sessions.ensure_connected(guild, channel)
        except BaseException:
            await reservation.release_all()
            raise
        label = _label(plan)
        clip = self.sessions.speech_clip(
            plan,
            reservation,
            label=label,
            requested_by=interaction.user.id,
            on_failure=_failure_notice(interaction, label),
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
        client = self.sessions.voice_client(guild)
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
        client = self.sessions.voice_client(guild)
        if client is not None and client.channel.id == target.id and client.is_connected():
            await answer(interaction, _("I'm already in {channel}.", channel=target.mention), ephemeral=True)
            return
        await self.check_can_play(interaction, target, joining=True)
        await defer(interaction, ephemeral=True)
        await self.sessions.ensure_connected(guild, target)
        server = await self.bot.storage.get_guild_settings(guild.id)
        joined_message: Message = _("Joined {channel}.", channel=target.mention)
        unheard = why_unheard(target, guild.me)
        readouts = f"<#{server.readout_channel_id}>"
        if unheard is not None:
            nobody = _("Nobody can hear me yet: {reason}.", reason=unheard)
            joined_message = joined([joined_message, "\n-# ", nobody])
        elif server.readout_channel_id and self.bot.readouts_enabled:
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
        await self.sessions.leave(interaction.guild_id, reason="asked")
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
            clip=as_typed(clip.label),
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


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Voice(bot))
