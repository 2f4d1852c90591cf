"""/say and the Read aloud message command."""

from __future__ import annotations

import io
import logging
import re
from typing import TYPE_CHECKING, Any, Protocol

import discord
from discord import app_commands
from discord.ext import commands

from bot.audio import AudioError
from bot.audio.fitting import FittedAudio
from bot.budget import Reservation
from bot.choices import FORMAT_CHOICES
from bot.errors import ServerOnlyError, UserFacingError
from bot.i18n import Fixed, Message, _, counted, joined, listing
from bot.limits import LanguageText, PitchText, RateText, VolumeText, upload_limit
from bot.lookups import ensure_lookups
from bot.markdown import as_typed
from bot.mentions import guild_names, interaction_names, needs_lookup
from bot.reach import answers_publicly, is_user_install, server_id
from bot.replies import answer, defer
from bot.resolution import resolve
from bot.speech import SayOptions, SpeechPlan, SpeechResult
from bot.text import MentionResolver, clean_message
from bot.voice_message import VoiceMessages
from cogs._options import language_choices, voice_choices

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

# Cleaning for /say never cuts: over-long text is refused with its length instead.
NO_CUT = 1_000_000


class SpeechQueue(Protocol):
    """What the voice extension offers to /say and Read aloud."""

    async def check_can_play(self, interaction: discord.Interaction[Any]) -> None: ...

    def in_callers_channel(self, interaction: discord.Interaction[Any]) -> bool: ...

    def check_room(self, interaction: discord.Interaction[Any]) -> None: ...

    async def enqueue(
        self, interaction: discord.Interaction[Any], plan: SpeechPlan, reservation: Reservation
    ) -> int: ...


def describe(result: SpeechResult) -> Message:
    """The line that goes with an audio reply: voice, duration, and credits or "from cache"."""
    cost = _("from cache") if result.from_cache else counted(result.credits, "{count} credit", "{count} credits")
    line = _(
        "🔊 **{voice}** · {seconds} s · {cost}",
        voice=as_typed(result.plan.voice.character),
        seconds=Fixed(result.duration),
        cost=cost,
    )
    return line + dropped_note(result.plan)


def dropped_note(plan: SpeechPlan) -> Message:
    """A note listing inherited settings this voice could not use, if any."""
    if not plan.dropped:
        return ""
    return joined(["\n-# ", _("Not used with this voice: {settings}.", settings=listing(plan.dropped))])


def audio_filename(voice_name: str, output_type: str) -> str:
    """A tidy attachment name from the voice's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", voice_name.lower()).strip("-") or "speech"
    return f"{slug[:40]}.{output_type}"


class Say(commands.Cog):
    """Synthesis commands."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        self.fitted = FittedAudio(bot.audio_cache)
        self.voice_messages = VoiceMessages(bot.speech, bot.audio_cache, bot.guard, bot.catalogue, bot.metrics)
        self.read_aloud_menu = app_commands.ContextMenu(name="Read aloud", callback=self.read_aloud)
        bot.tree.add_command(self.read_aloud_menu)

    async def cog_unload(self) -> None:
        """Remove the context menu this cog added to the tree."""
        self.bot.tree.remove_command(self.read_aloud_menu.name, type=self.read_aloud_menu.type)

    def _queue(self) -> SpeechQueue | None:
        cog = self.bot.get_cog("Voice")
        return cog if cog is not None else None  # type: ignore[return-value]

    @app_commands.command(name="say", description="Turn text into speech with an Unmixr voice.")
    @app_commands.describe(
        text="What to say",
        voice="A voice name or uuid (default: your voice, then the server's)",
        language="A language or locale the voice speaks, such as en-US",
        rate="Speed: -100% to +100%, or x-slow, slow, medium, fast, x-fast, default",
        pitch="Pitch: -50% to +50%, or x-low, low, medium, high, x-high, default",
        volume="Volume: -100% to +100%, or silent, x-soft, soft, medium, loud, x-loud, default",
        intensity="Style intensity from -100 to 100 (voices with the intensity capability)",
        format="Audio format: an mp3 or wav file, or a Discord voice message",
        play="Play it in your voice channel instead of attaching it",
    )
    @app_commands.choices(format=FORMAT_CHOICES)
    async def say(
        self,
        interaction: discord.Interaction[UnmixrBot],
        text: app_commands.Range[str, 1, 6000],
        voice: str | None = None,
        language: LanguageText | None = None,
        rate: RateText | None = None,
        pitch: PitchText | None = None,
        volume: VolumeText | None = None,
        intensity: app_commands.Range[int, -100, 100] | None = None,
        format: str | None = None,
        play: bool = False,
    ) -> None:
        """Synthesise text and attach it, or queue it in voice with `play`."""
        user_install = is_user_install(interaction)
        if play and user_install:
            raise ServerOnlyError(
                _("Playing in voice needs a server that has the bot; leave out `play` to get a file.")
            )
        queue = self._queue() if play else None
        if play:
            if queue is None:
                raise UserFacingError(
                    _("Playing in voice is not available on this bot; leave out `play` to get a file.")
                )
            await queue.check_can_play(interaction)
        options = SayOptions(voice, language, rate, pitch, volume, intensity, format)
        private = play or not answers_publicly(interaction)
        # The request writes the usage ledger before it answers: on a remote database that defers first.
        await ensure_lookups(interaction, ephemeral=private, writes=True)
        names: MentionResolver
        if user_install:
            # No server of the bot's: only the users the interaction itself carries have names.
            names = interaction_names(interaction)
        else:
            assert interaction.guild is not None
            if needs_lookup(interaction.guild, text, self.bot.member_lookups):
                await defer(interaction, ephemeral=private)  # naming a mentioned member may take a REST call
            names = await guild_names(interaction.guild, self.bot.storage, text, self.bot.member_lookups)
        plan = await self.bot.speech.plan(
            guild_id=server_id(interaction),
            user_id=interaction.user.id,
            text=lambda words: clean_message(text, names, max_length=NO_CUT, words=words),
            options=options,
            given_length=len(text),
            server_locale=self._server_locale(interaction),
        )
        await self._deliver(interaction, plan, queue)

    @say.autocomplete("voice")
    async def _voice_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await voice_choices(self.bot, interaction, current)

    @say.autocomplete("language")
    async def _language_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await language_choices(self.bot, interaction, current)

    async def read_aloud(self, interaction: discord.Interaction[UnmixrBot], message: discord.Message) -> None:
        """Speak a message's cleaned text with the caller's voice: in voice if the bot is with them."""
        user_install = is_user_install(interaction)
        queue = None if user_install else self._queue()
        in_voice = queue is not None and queue.in_callers_channel(interaction)
        await ensure_lookups(interaction, ephemeral=in_voice or not answers_publicly(interaction), writes=True)
        names: MentionResolver
        if user_install:
            limit = resolve("max_length").value  # no server's max-length: the built-in one
            names = interaction_names(interaction, message.mentions)
        else:
            assert interaction.guild is not None
            server = await self.bot.storage.get_guild_settings(interaction.guild.id)
            limit = resolve("max_length", server=server).value
            names = await guild_names(
                interaction.guild, self.bot.storage, message.content, self.bot.member_lookups, message.mentions
            )
        plan = await self.bot.speech.plan(
            guild_id=server_id(interaction),
            user_id=interaction.user.id,
            text=lambda words: clean_message(message.content, names, max_length=limit, words=words),
            options=SayOptions(),
            truncate_to_limit=True,
            server_locale=self._server_locale(interaction),
        )
        await self._deliver(interaction, plan, queue if in_voice else None)

    def _server_locale(self, interaction: discord.Interaction[UnmixrBot]) -> str | None:
        """The server's preferred locale, for readout words when the clip's language is not shipped."""
        if is_user_install(interaction):
            # A server without the bot says it with each interaction (a DM has none); the bot keeps nothing of it.
            return interaction.guild_locale.value if interaction.guild_locale is not None else None
        return self.bot.guild_locale(interaction.guild)

    async def _deliver(
        self, interaction: discord.Interaction[UnmixrBot], plan: SpeechPlan, queue: SpeechQueue | None
    ) -> None:
        """Queue the plan in voice (an ephemeral position) or synthesise it into a public attachment.

        The budgets are checked before the defer, so a refusal is a private answer and nothing is spent.
        """
        if queue is not None:
            queue.check_room(interaction)
            reservation = await self.bot.speech.reserve(plan)
            try:
                await defer(interaction, ephemeral=True)
            except BaseException:
                await reservation.release_all()
                raise
            position = await queue.enqueue(interaction, plan, reservation)
            await answer(interaction, queued_message(plan, position), ephemeral=True)
            return
        note: Message | None = None
        if plan.voice_message:
            # None: sent as a voice message; otherwise why not, and nothing was spent nor sent.
            blocked = await self.voice_messages.deliver(interaction, plan, self)
            if blocked is None:
                return
            note = blocked
        reservation = await self.bot.speech.reserve(plan, joined=True)
        try:
            await defer(interaction, ephemeral=not answers_publicly(interaction))
            await self.attach(interaction, await self.bot.speech.synthesise(plan, reservation), note)
        finally:
            await reservation.release_all()

    def describe(self, result: SpeechResult) -> Message:
        """The line that goes with an audio reply (for the voice messages' Protocol)."""
        return describe(result)

    async def attach(
        self, interaction: discord.Interaction[Any], result: SpeechResult, note: Message | None = None
    ) -> None:
        """Answer with the audio as a public attachment, fitted to the upload limit, with its line and `note`."""
        plan, audio, output_type = result.plan, result.audio, result.output_type
        notes: list[Message] = [joined(["\n-# ", note])] if note else []
        limit = upload_limit(interaction.filesize_limit)
        if len(audio) > limit:
            try:
                sources = [plan.request(index)[1] for index in range(len(plan.chunks))]
                audio = await self.fitted.fit(
                    sources,
                    audio,
                    limit,
                    duration=result.duration,
                    server=plan.fairness,
                    from_message=plan.from_message,
                )
            except AudioError:
                raise UserFacingError(
                    _(
                        "The audio ({megabytes} MB) is too large for this server's upload limit even when compressed; "
                        "try a shorter text.",
                        megabytes=Fixed(len(result.audio) / 1_048_576),
                    )
                ) from None
            output_type = "mp3"
            notes.append(joined(["\n-# ", _("Converted to a smaller mp3 to fit this server's upload limit.")]))
        file = discord.File(io.BytesIO(audio), filename=audio_filename(plan.voice.character or "speech", output_type))
        public = answers_publicly(interaction)
        await answer(interaction, joined([describe(result), *notes]), ephemeral=not public, files=[file])


def queued_message(plan: SpeechPlan, position: int) -> Message:
    """The ephemeral answer for a clip queued in voice."""
    voice = as_typed(plan.voice.character)
    if position <= 1:
        queued = _("Queued at position {position} (playing now): **{voice}**", position=position, voice=voice)
    else:
        queued = _("Queued at position {position}: **{voice}**", position=position, voice=voice)
    return joined([queued, dropped_note(plan)])


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Say(bot))
