"""One way to answer an interaction, whether it is fresh, deferred or expired."""

from __future__ import annotations

import logging
from typing import Any

import discord

log = logging.getLogger(__name__)

# Replies never ping anyone, whatever text a member managed to put into them.
NO_MENTIONS = discord.AllowedMentions.none()

_EPHEMERAL_DEFER = "ephemeral_defer"

READOUTS_OFF = (
    "Readouts are off: the bot's Message Content intent is not enabled; the bot's operator can turn it on "
    "on the Bot page of the application in the Discord developer portal."
)


async def defer(interaction: discord.Interaction, *, ephemeral: bool, thinking: bool = True) -> None:
    """Acknowledge the interaction now, remembering how, so later answers go to the right place."""
    if interaction.response.is_done():
        return
    interaction.extras[_EPHEMERAL_DEFER] = ephemeral
    await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)


async def answer(
    interaction: discord.Interaction,
    content: str | None = None,
    *,
    ephemeral: bool = True,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    files: list[discord.File] | None = None,
) -> None:
    """Send the final answer: a response when fresh, else an edit or a follow-up.

    An ephemeral answer after a public defer deletes the public "thinking" message first, so the
    channel is not left with a dangling placeholder.
    """
    kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if embed is not None:
        kwargs["embed"] = embed
    if view is not None:
        kwargs["view"] = view
    try:
        if not interaction.response.is_done():
            if files:
                kwargs["files"] = files
            await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)
            return
        deferred_ephemeral = interaction.extras.get(_EPHEMERAL_DEFER, True)
        if deferred_ephemeral == ephemeral:
            if files:
                kwargs["attachments"] = files
            await interaction.edit_original_response(content=content, **kwargs)
            return
        if not deferred_ephemeral:
            # Public "thinking" message, private answer: remove the placeholder first.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the thinking message of interaction %s", interaction.id)
        if files:
            kwargs["files"] = files
        await interaction.followup.send(content or discord.utils.MISSING, ephemeral=ephemeral, **kwargs)
    except discord.NotFound:
        # The token expired (15 minutes) or the interaction was deleted: nobody is left to answer.
        log.warning("interaction %s expired before it could be answered", interaction.id)
