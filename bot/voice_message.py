"""Native Discord voice messages (`format: voice-message`): where one may be sent, how, and the helper that sends it.

Discord takes message flag 8192 (IS_VOICE_MESSAGE) on Create Message and on an interaction's initial response
(callback type 4), never on a follow-up (webhook.mdx): so audio already cached on this machine is the initial
response itself; other audio is deferred, the deferred response becomes the usual voice, duration and credits line,
and the voice message is posted to the channel. Where the bot may do neither (no Send Voice Messages, no channel of
a server it is in) it attaches an mp3 and says why (PRODUCT.md, Reach).

discord.py 2.7.1 cannot set flag 8192 nor an attachment's `duration_secs` and `waveform` (its PR #10230 is open):
`_send` sends these two requests through discord.py's own HTTP client (its `Route`, a multipart form, its rate
limits); tests/test_voice_message.py fails loudly if the installed discord.py changes what this relies on.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable
from typing import Any, Final, Protocol

import discord
from discord.http import HTTPClient, Route

from bot.audio import AudioCache, AudioError, CachedAudio, cache_key, extract_audio
from bot.audio.voice_message import CONTENT_TYPE, OUTPUT_TYPE, VoiceMessageAudio, encode, pack, unpack
from bot.budget import CreditGuard, Reservation
from bot.catalogue import Catalogue
from bot.i18n import Message, Text, _
from bot.limits import upload_limit
from bot.metrics import Metrics
from bot.reach import is_user_install
from bot.replies import answer, defer
from bot.speech import SpeechPlan, SpeechResult, SpeechService
from bot.voice_internals import mark_responded

log = logging.getLogger(__name__)

# resources/message.mdx, message flags: IS_VOICE_MESSAGE.
IS_VOICE_MESSAGE: Final = 1 << 13
FILENAME: Final = "voice-message.ogg"
# Changing how the Ogg file or the waveform is made changes what a cached voice message holds: bump this.
_VERSION: Final = 1

# Why an mp3 came instead, one line under the usual one.
NO_PERMISSION: Final = _(
    "Sent as an mp3: a voice message needs the bot to have the Send Voice Messages permission in this channel."
)
NO_CHANNEL: Final = _("Sent as an mp3: voice messages can be posted only in a channel of a server the bot is in.")
NO_SEND_MESSAGES: Final = _(
    "Sent as an mp3: new audio is posted as a voice message, which needs the bot to have the Send Messages "
    "permission in this channel."
)
TOO_LARGE: Final = _("Sent as an mp3: the voice message would be larger than this server's upload limit.")
NOT_ENCODED: Final = _("Sent as an mp3: the audio could not be made into a voice message.")
REFUSED: Final = _("Sent as an mp3: Discord did not accept a voice message in this channel.")


class AudioReplies(Protocol):
    """What the command that asked for the audio offers: its usual line, and its mp3 reply."""

    def describe(self, result: SpeechResult) -> Message:
        """The line that goes with the audio: voice, duration, and credits or "from cache"."""
        ...

    def attach(
        self, interaction: discord.Interaction[Any], result: SpeechResult, note: Message | None
    ) -> Awaitable[None]:
        """Answer with the audio as a file (fitted to the upload limit), its line and `note` under it."""
        ...


def voice_message_key(plan: SpeechPlan) -> str:
    """The audio cache's key of the plan's voice message: that of every chunk's request, and this encoding."""
    chunks = [plan.request(index)[1] for index in range(len(plan.chunks))]
    return cache_key(voice_message_of=chunks, version=_VERSION)


def cannot_respond(interaction: discord.Interaction[Any]) -> Text | None:
    """Why the interaction's own response cannot be a voice message, or None if it can."""
    # PRODUCT.md, Reach: through a user install (a DM, a group DM, a server without the bot) the audio is an mp3,
    # whatever the member's own permissions there.
    if is_user_install(interaction):
        return NO_CHANNEL
    # permissions.mdx: SEND_VOICE_MESSAGES; app_permissions are the bot's in the interaction's channel.
    if not interaction.app_permissions.send_voice_messages:
        return NO_PERMISSION
    return None


def cannot_post(interaction: discord.Interaction[Any]) -> Text | None:
    """Why the bot cannot post a voice message to the interaction's channel (Create Message), or None if it can."""
    # A DM, or a server the bot is not in (an app installed by a user): there is no channel the bot may post to.
    if interaction.guild_id is None or not interaction.is_guild_integration() or interaction.channel_id is None:
        return NO_CHANNEL
    permissions = interaction.app_permissions
    if not permissions.send_voice_messages:
        return NO_PERMISSION
    in_thread = isinstance(interaction.channel, discord.Thread)
    if not permissions.view_channel or not (
        permissions.send_messages_in_threads if in_thread else permissions.send_messages
    ):
        return NO_SEND_MESSAGES
    return None


async def respond(interaction: discord.Interaction[Any], audio: VoiceMessageAudio) -> None:
    """Answer a fresh interaction with the voice message: its initial response (callback type 4)."""
    route = Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interaction_id=interaction.id,
        interaction_token=interaction.token,
    )
    await _send(interaction.client.http, route, {"type": 4, "data": _message(audio)}, audio)
    mark_responded(interaction)


async def post(interaction: discord.Interaction[Any], audio: VoiceMessageAudio) -> int:
    """Post the voice message to the interaction's channel (Create Message); return the new message's id."""
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=interaction.channel_id)
    created = await _send(interaction.client.http, route, _message(audio), audio)
    return int(created["id"])


def _message(audio: VoiceMessageAudio) -> dict[str, Any]:
    # message.mdx, "Voice Messages": the flag, one audio attachment with its duration and waveform, nothing else.
    attachment = {
        "id": 0,
        "filename": FILENAME,
        "duration_secs": round(audio.duration, 3),
        "waveform": audio.waveform_base64,
    }
    return {"flags": IS_VOICE_MESSAGE, "attachments": [attachment]}


async def _send(http: HTTPClient, route: Route, payload: dict[str, Any], audio: VoiceMessageAudio) -> Any:
    """The one request that carries a voice message: multipart, with the file's part typed `audio/ogg`."""
    # Discord reads `duration_secs` and `waveform` only when the attachment's Content-Type begins with audio/.
    file = discord.File(io.BytesIO(audio.ogg), filename=FILENAME)
    form: list[dict[str, Any]] = [
        {"name": "payload_json", "value": json.dumps(payload, separators=(",", ":"))},
        {"name": "files[0]", "value": file.fp, "filename": FILENAME, "content_type": CONTENT_TYPE},
    ]
    try:
        return await http.request(route, files=[file], form=form)
    finally:
        file.close()


def _made(found: CachedAudio | None) -> VoiceMessageAudio | None:
    """The voice message in a cache entry, if it holds one."""
    return unpack(found.data, found.duration) if found is not None and found.output_type == OUTPUT_TYPE else None


class VoiceMessages:
    """Sends a member's request as a voice message, made from the synthesised mp3 and cached with it."""

    def __init__(
        self, speech: SpeechService, cache: AudioCache, guard: CreditGuard, catalogue: Catalogue, metrics: Metrics
    ) -> None:
        self._speech = speech
        self._cache = cache
        self._guard = guard
        self._catalogue = catalogue
        self._metrics = metrics

    async def deliver(
        self, interaction: discord.Interaction[Any], plan: SpeechPlan, replies: AudioReplies
    ) -> Text | None:
        """Answer with the plan as a voice message, or return why one cannot go here, having done nothing then."""
        key = voice_message_key(plan)
        acknowledged = interaction.response.is_done()
        # Before the acknowledgement only this machine's cache may be read (PRODUCT.md, Replies); after it (a
        # deferred request on PostgreSQL) the shared tier too: another process may have made it.
        audio = _made(await (self._cache.get(key) if acknowledged else self._cache.get_local(key)))
        if audio is not None and not acknowledged and cannot_respond(interaction) is None:
            if await self._respond(interaction, plan, audio):
                return None
        blocked = cannot_post(interaction)
        if blocked is not None:
            return blocked
        # A voice message already made costs nothing and is never refused; new audio is checked as an mp3 is.
        reservation = await (self._from_cache(plan) if audio is not None else self._speech.reserve(plan, joined=True))
        try:
            await defer(interaction, ephemeral=False)
            if audio is None and not acknowledged and self._cache.shared is not None:
                audio = _made(await self._cache.get(key))  # deferred now: the shared tier may hold it
                if audio is not None:
                    self._metrics.cache(hit=True, chunks=len(plan.chunks))
            await self._deferred(interaction, plan, key, reservation, audio, replies)
        finally:
            await reservation.release_all()
        return None

    async def _from_cache(self, plan: SpeechPlan) -> Reservation:
        """Count a request served wholly from the cache: free, never refused, but a request all the same."""
        self._metrics.cache(hit=True, chunks=len(plan.chunks))
        return await self._guard.reserve(
            guild_id=plan.guild_id,
            user_id=plan.user_id,
            holds={},
            cached=range(len(plan.chunks)),
            cloned_voice=plan.guild_id is not None and self._catalogue.is_clone(plan.voice.uuid, plan.guild_id),
        )

    async def _respond(self, interaction: discord.Interaction[Any], plan: SpeechPlan, audio: VoiceMessageAudio) -> bool:
        """Make the cached voice message the interaction's response; False if it cannot be (nothing sent then)."""
        if len(audio.ogg) > upload_limit(interaction.filesize_limit):
            return False
        try:
            await respond(interaction, audio)
        except discord.HTTPException as error:
            # A refused response acknowledges nothing: the deferred way is still open.
            log.warning("Discord refused the voice message response of interaction %s: %s", interaction.id, error)
            return False
        await self._from_cache(plan)
        return True

    async def _deferred(
        self,
        interaction: discord.Interaction[Any],
        plan: SpeechPlan,
        key: str,
        reservation: Reservation,
        audio: VoiceMessageAudio | None,
        replies: AudioReplies,
    ) -> None:
        """Deferred: the response becomes the usual line, then the voice message is posted to the channel."""
        if audio is not None:
            for index in range(len(plan.chunks)):
                await reservation.cache_hit(index)  # held for new audio, then found made after all
            result = SpeechResult(plan, b"", "ogg", audio.duration, 0, True)
        else:
            result = await self._speech.synthesise(plan, reservation)
        # The line first: the member sees the result while the voice message is made and posted.
        await answer(interaction, replies.describe(result), ephemeral=False)
        if audio is None:
            try:
                audio = await encode(result.audio)
            except AudioError as error:
                log.warning("could not make a voice message for interaction %s: %s", interaction.id, error)
                await replies.attach(interaction, result, NOT_ENCODED)
                return
            self._cache.put_soon(
                key, pack(audio), duration=audio.duration, output_type=OUTPUT_TYPE, from_message=plan.from_message
            )
        if len(audio.ogg) > upload_limit(interaction.filesize_limit):
            await replies.attach(interaction, await self._as_mp3(result, audio), TOO_LARGE)
            return
        try:
            await post(interaction, audio)
        except discord.HTTPException as error:
            # The line is there already: it gets the audio as an mp3 instead (an edit, so no second message).
            log.warning("Discord refused the voice message of interaction %s: %s", interaction.id, error)
            await replies.attach(interaction, await self._as_mp3(result, audio), REFUSED)

    @staticmethod
    async def _as_mp3(result: SpeechResult, audio: VoiceMessageAudio) -> SpeechResult:
        """The result with mp3 audio: the synthesised file, or (served from the cache) the voice message converted."""
        if result.audio:
            return result
        mp3 = await extract_audio(audio.ogg, output_format="mp3")
        return SpeechResult(result.plan, mp3, "mp3", result.duration, result.credits, result.from_cache)
