"""One way to answer an interaction, whether it is fresh, deferred or expired.

Everything sent here passes `bot.limits` first, so no answer is ever refused by Discord for its size or shape.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord

from bot.i18n import Message, _
from bot.i18n.interactions import render
from bot.limits import NOTHING_TO_PICK, fit_content, fit_embed, fit_view

log = logging.getLogger(__name__)

# Replies never ping anyone, whatever text a member managed to put into them.
NO_MENTIONS = discord.AllowedMentions.none()

_EPHEMERAL_DEFER = "ephemeral_defer"
# When the bot received the interaction and when it first acknowledged it (time.monotonic), for the metrics.
_RECEIVED = "received_at"
_ACKNOWLEDGED = "acknowledged_at"
# A press acknowledged to update its own message: there is no "thinking" message to edit.
_UPDATE = "update"

# receiving-and-responding.mdx: "Interaction tokens are valid for 15 minutes" from the interaction's creation.
# The bot uses one for 14 of them, so a request in flight never meets the expiry (a 401 counts toward Discord's
# invalid request limit, which bans the bot's address at 10,000 in 10 minutes).
TOKEN_USABLE_SECONDS = 14 * 60

READOUTS_OFF = _(
    "Readouts are off: the bot's Message Content intent is not enabled; the bot's operator can turn it on "
    "on the Bot page of the application in the Discord developer portal."
)


def token_usable(interaction: discord.Interaction) -> bool:
    """Whether the interaction's token may still be used: within 14 minutes of its creation at Discord."""
    age = discord.utils.utcnow() - interaction.created_at
    return age.total_seconds() < TOKEN_USABLE_SECONDS


def mark_received(interaction: discord.Interaction) -> None:
    """Note when the bot received the interaction (the start of its acknowledgement and answer times)."""
    interaction.extras.setdefault(_RECEIVED, time.monotonic())


def response_times(interaction: discord.Interaction) -> tuple[float | None, float | None]:
    """Seconds from receipt to acknowledgement, and to now; None where receipt or acknowledgement is unknown."""
    received = interaction.extras.get(_RECEIVED)
    if received is None:
        return None, None
    acknowledged = interaction.extras.get(_ACKNOWLEDGED)
    return (None if acknowledged is None else acknowledged - received), time.monotonic() - received


def _acknowledged(interaction: discord.Interaction) -> None:
    interaction.extras.setdefault(_ACKNOWLEDGED, time.monotonic())


async def defer(interaction: discord.Interaction, *, ephemeral: bool, thinking: bool = True) -> None:
    """Acknowledge the interaction now, remembering how, so later answers go to the right place."""
    if interaction.response.is_done():
        return
    interaction.extras[_EPHEMERAL_DEFER] = ephemeral
    await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
    _acknowledged(interaction)


async def defer_update(interaction: discord.Interaction) -> None:
    """Acknowledge a button or menu press that will update its own message; other answers become follow-ups."""
    if interaction.response.is_done():
        return
    interaction.extras[_EPHEMERAL_DEFER] = _UPDATE
    await interaction.response.defer()
    _acknowledged(interaction)


async def answer(
    interaction: discord.Interaction,
    content: Message | None = None,
    *,
    ephemeral: bool = True,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    files: list[discord.File] | None = None,
) -> None:
    """Send the final answer in the member's language: a response when fresh, else an edit or a follow-up.

    An ephemeral answer after a public defer deletes the public "thinking" message first, so the
    channel is not left with a dangling placeholder.
    """
    content = fit_content(None if content is None else render(interaction, content))
    kwargs = _fitted(embed, view, interaction)
    if interaction.response.is_done() and not token_usable(interaction):
        log.warning("interaction %s expired before it could be answered", interaction.id)
        return
    try:
        if not interaction.response.is_done():
            if files:
                kwargs["files"] = files
            await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)
            _acknowledged(interaction)
            return
        deferred_ephemeral = interaction.extras.get(_EPHEMERAL_DEFER, True)
        if deferred_ephemeral == ephemeral:
            if files:
                kwargs["attachments"] = files
            await interaction.edit_original_response(content=content, **kwargs)
            return
        if deferred_ephemeral is False:
            # Public "thinking" message, private answer: remove the placeholder first.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the thinking message of interaction %s", interaction.id)
        if files:
            kwargs["files"] = files
        await interaction.followup.send(content or discord.utils.MISSING, ephemeral=ephemeral, **kwargs)
    except discord.HTTPException as error:
        if not _expired(error):
            raise
        log.warning("interaction %s expired before it could be answered", interaction.id)


async def update(
    interaction: discord.Interaction,
    *,
    content: Message | None = None,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    remove_view: bool = False,
) -> None:
    """Replace the interaction's message (a button's message, or a command's answer), acknowledged or not.

    What is not given stays as it was; `remove_view` takes the message's buttons and menus away.
    """
    kwargs = _fitted(embed, view, interaction)
    if remove_view:
        kwargs["view"] = None
    if content is not None:
        kwargs["content"] = fit_content(render(interaction, content))
    if interaction.response.is_done() and not token_usable(interaction):
        log.warning("interaction %s expired before its message could be updated", interaction.id)
        return
    try:
        if not interaction.response.is_done():
            await interaction.response.edit_message(**kwargs)
            _acknowledged(interaction)
        else:
            await interaction.edit_original_response(**kwargs)
    except discord.HTTPException as error:
        if not _expired(error):
            raise
        log.warning("interaction %s expired before its message could be updated", interaction.id)


async def follow_up(interaction: discord.Interaction, content: Message) -> None:
    """Tell the member something more, privately, after the interaction was answered (a queued clip failed)."""
    if not token_usable(interaction):
        log.info("interaction %s expired before its follow-up could be sent", interaction.id)
        return
    try:
        text = fit_content(render(interaction, content)) or "…"
        await interaction.followup.send(text, ephemeral=True, **_fitted(None, None))
    except discord.HTTPException as error:
        if not _expired(error):
            raise
        log.info("interaction %s expired before its follow-up could be sent", interaction.id)


async def post(
    channel: discord.abc.Messageable, content: str | None = None, *, embed: discord.Embed | None = None
) -> discord.Message:
    """Send a message to a channel (not an interaction answer), fitted to Discord's limits and pinging nobody."""
    kwargs = _fitted(embed, None)
    return await channel.send(fit_content(content), **kwargs)


def _fitted(
    embed: discord.Embed | None, view: discord.ui.View | None, interaction: discord.Interaction | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if embed is not None:
        kwargs["embed"] = fit_embed(embed)
    if view is not None:
        if interaction is not None:
            fit_view(view, render(interaction, NOTHING_TO_PICK))
        else:
            fit_view(view)
        kwargs["view"] = view
    return kwargs


def _expired(error: discord.HTTPException) -> bool:
    """Whether Discord refused because the interaction is gone: unknown (404) or its token expired (401)."""
    # After 15 minutes a token gets 401 "Invalid Webhook Token" (50027); a deleted message or interaction, 404.
    return isinstance(error, discord.NotFound) or error.status == 401 or error.code == 50027
