"""The only reads of discord.py's private attributes, each where no public way exists, checked by a test.

discord.py is pinned below 2.8 (pyproject.toml); `tests/test_voice_internals.py` (and, for `mark_responded`,
`tests/test_voice_message.py`) fails loudly when an update moves one of these, and
`tests/test_private_attributes.py` keeps every other module off private attributes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import discord

log = logging.getLogger(__name__)


def connection_task(client: discord.VoiceClient) -> asyncio.Task[Any] | None:
    """The task that reads the voice websocket: it ends with the error that dropped the connection, if any.

    With `connect(reconnect=False)` discord.py disconnects on a network error and re-raises it from this task,
    while a disconnect on purpose (ours, or someone moving or kicking the bot) ends it without one. No public
    attribute or event tells those apart, and the voice cog must: it rejoins after a drop and keeps the queue,
    but clears the queue when the bot was disconnected on purpose.
    """
    state = getattr(client, "_connection", None)
    if state is None or not hasattr(state, "_runner"):
        log.warning("discord.py changed VoiceClient._connection._runner: dropped voice connections are not rejoined")
        return None
    runner = state._runner
    # None when the connection was already torn down before we looked.
    return runner if isinstance(runner, asyncio.Task) else None


def view_takes(interaction: discord.Interaction[Any]) -> bool | None:
    """Whether a live view (or dynamic item) of this process received this control interaction; None if unknown.

    discord.py hands a component interaction to the view listening on its message, or to none, before the
    `interaction` event; it offers no public way to ask which. `on_interaction` needs to know at once: a press
    that no view takes must still be answered within 3 s of its creation at Discord.
    """
    store = getattr(getattr(interaction.client, "_connection", None), "_view_store", None)
    views = getattr(store, "_views", None)
    dynamic = getattr(store, "_dynamic_items", None)
    data = cast(dict[str, Any], interaction.data or {})
    custom_id, component_type = data.get("custom_id"), data.get("component_type")
    if not isinstance(views, dict) or not isinstance(dynamic, dict) or custom_id is None:
        log.warning("discord.py changed its view store: presses on expired controls are answered after a delay")
        return None
    key = (component_type, custom_id)
    message_id = interaction.message.id if interaction.message is not None else None
    item = views.get(message_id, {}).get(key) or views.get(None, {}).get(key)
    if item is not None and getattr(item, "view", None) is not None:
        return True
    return any(pattern.fullmatch(str(custom_id)) for pattern in dynamic)


def dave_protocol_version() -> int:
    """The highest DAVE protocol version the installed discord.py and davey offer Discord's voice gateway (0: none).

    discord.py sends it as IDENTIFY's `max_dave_protocol_version` (`VoiceConnectionState.max_dave_protocol_version`,
    from the module's `has_dave` and `davey.DAVE_PROTOCOL_VERSION`) and Discord closes a voice connection that
    offers none with 4017; reading it here is as far as anyone can tell without joining a voice channel.
    """
    from discord import voice_state

    if not getattr(voice_state, "has_dave", False):  # a discord.py before DAVE, or no davey
        return 0
    return int(getattr(getattr(voice_state, "davey", None), "DAVE_PROTOCOL_VERSION", 0))


def skip_own_messages(client: discord.Client) -> bool:
    """Drop the gateway's MESSAGE_CREATE and MESSAGE_UPDATE of the bot's own messages before discord.py parses them.

    The readout intent (guild messages) makes Discord send every message of the bot's servers, its own replies
    included: each `/say` comes back twice, as the deferred reply's creation and as the edit that attaches the
    audio. discord.py builds a `Message` (author, member, attachments...) and dispatches `on_message` for each,
    which nothing here uses (readouts and commands skip bots), and it offers no public way to leave an event out.
    An edit that carries components is still parsed, since discord.py refreshes a tracked view from it. Returns
    whether the filter is in place.
    """
    parsers = getattr(getattr(client, "_connection", None), "parsers", None)
    if not isinstance(parsers, dict) or not all(event in parsers for event in ("MESSAGE_CREATE", "MESSAGE_UPDATE")):
        log.warning("discord.py changed its gateway parsers: the bot's own messages are parsed like any other")
        return False

    def own(data: Any) -> bool:
        user = client.user
        author = data.get("author") if isinstance(data, dict) else None
        return user is not None and isinstance(author, dict) and author.get("id") == str(user.id)

    def wrap(parse: Any, *, keep_components: bool) -> Any:
        def parse_unless_own(data: Any) -> None:
            if own(data) and not (keep_components and data.get("components")):
                return
            parse(data)

        return parse_unless_own

    parsers["MESSAGE_CREATE"] = wrap(parsers["MESSAGE_CREATE"], keep_components=False)
    parsers["MESSAGE_UPDATE"] = wrap(parsers["MESSAGE_UPDATE"], keep_components=True)
    return True


def mark_responded(interaction: discord.Interaction[Any]) -> None:
    """Tell discord.py that the interaction has its response: a message (callback type 4) sent without it.

    A voice message answers through discord.py's HTTP client (bot/voice_message.py), past `InteractionResponse`,
    whose `is_done()` reads the private `_response_type` it sets itself. Left unset, a later answer (an error's)
    would try a second response, which Discord refuses (40060), instead of the follow-up it must be.
    """
    response = interaction.response
    if not hasattr(response, "_response_type"):
        log.warning("discord.py changed InteractionResponse._response_type: an answered voice message looks unanswered")
        return
    response._response_type = discord.InteractionResponseType.channel_message
