"""Whether anyone can hear the bot in a voice channel, and if not why: Discord's rules read from discord.py's cache.

PRODUCT.md, "Only when someone can hear": the bot has Speak, is not server-muted or timed out, is not in a stage's
audience, and a member who is not a bot and not deafened is in its channel. Nothing here calls Discord.
"""

from __future__ import annotations

import discord

from bot.i18n import Text, _

VoiceChannel = discord.VoiceChannel | discord.StageChannel


def humans(channel: VoiceChannel, me_id: int) -> int:
    """How many members other than bots are in a voice channel, deafened or not."""
    count = 0
    for user_id in channel.voice_states:
        member = channel.guild.get_member(user_id)
        if user_id != me_id and not (member is not None and member.bot):
            count += 1
    return count


def hearers(channel: VoiceChannel, me_id: int) -> list[int]:
    """The members in a voice channel who could hear the bot: not the bot, not a bot, not deafened in any way."""
    found = []
    for user_id, state in channel.voice_states.items():
        if user_id == me_id or state.deaf or state.self_deaf:
            continue
        member = channel.guild.get_member(user_id)
        if member is not None and member.bot:
            continue
        found.append(user_id)
    return found


def is_speaker(channel: VoiceChannel, me: discord.Member) -> bool:
    """Whether the bot may be heard in `channel` as far as a stage goes: any voice channel, or a stage's speaker.

    A stage speaker "is not suppressed, and has no request_to_speak_timestamp" (Discord's stage-instance docs).
    """
    if not isinstance(channel, discord.StageChannel):
        return True
    voice = me.voice
    in_it = voice is not None and voice.channel is not None and voice.channel.id == channel.id
    return in_it and voice is not None and not voice.suppress and voice.requested_to_speak_at is None


def why_unheard(channel: VoiceChannel, me: discord.Member) -> Text | None:
    """Why nobody can hear the bot in `channel` now, as a clause that says what would fix it; None if someone can.

    The bot's own voice state (a server mute, a stage's audience) counts once it is in `channel`: before it joins,
    the rest tells whether it would be heard there.
    """
    if me.is_timed_out() and me.timed_out_until is not None:
        ends = discord.utils.format_dt(me.timed_out_until, "R")
        return _("I'm timed out in this server (it ends {ends}); a moderator can lift the timeout", ends=ends)
    # Speak is a voice channel's permission (Discord's permissions docs mark it V only); a stage has speakers.
    if isinstance(channel, discord.VoiceChannel) and not channel.permissions_for(me).speak:
        return _("I don't have the Speak permission in {channel}; ask an admin to grant it", channel=channel.mention)
    voice = me.voice
    here = voice is not None and voice.channel is not None and voice.channel.id == channel.id
    if here and voice is not None and voice.mute:
        return _("I'm server-muted; ask a moderator to unmute me")
    if here and not is_speaker(channel, me):
        if voice is not None and voice.requested_to_speak_at is not None:
            return _("I've asked to speak on the stage {stage}; a moderator has to invite me", stage=channel.mention)
        return _(
            "I'm in the audience of the stage {stage}; a moderator has to invite me to speak", stage=channel.mention
        )
    if not hearers(channel, me.id):
        others = any(user_id != me.id for user_id in channel.voice_states)
        if others:
            return _("everyone in {channel} is deafened or a bot; someone has to listen", channel=channel.mention)
        return _("nobody is in {channel} to listen; join it first", channel=channel.mention)
    return None
