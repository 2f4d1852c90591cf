"""Turning a member's request into audio: settings resolution, checks, chunks, cache, synthesis."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from bot.audio import AudioCache, cache_key, concat, duration
from bot.budget import CreditGuard, Reservation
from bot.catalogue import Catalogue
from bot.errors import InvalidOptionError, NothingToSayError, TextTooLongError, UnknownVoiceError
from bot.i18n import Message, ReadoutWords, Text, _, counted, listing, pgettext, readout_words
from bot.markdown import as_typed
from bot.metrics import Metrics
from bot.resolution import MAX_LENGTH_LIMIT, Resolved, resolve
from bot.storage import GuildSettings, MemberPreferences, Storage, UserPreferences
from bot.text import (
    MAX_REQUEST_CHARS,
    ProsodyError,
    is_speakable,
    matching_entries,
    normalize_pitch,
    normalize_rate,
    normalize_volume,
    split_text,
    truncate,
    with_said_prefix,
)
from bot.unmixr import TTSRequest, UnmixrClient, UnmixrError, Voice

log = logging.getLogger(__name__)

# Chunks of one request synthesised at once; the client's limiter bounds the whole process.
CHUNK_CONCURRENCY = 4
LANGUAGES_SHOWN = 10
# The `format` choices. A voice message is made from the mp3 Unmixr sends (bot/voice_message.py).
FORMATS = ("mp3", "wav", "voice-message")
VOICE_MESSAGE = "voice-message"

_PROSODY = {
    "rate": (normalize_rate, "speech:rate", "speaking_rate"),
    "pitch": (normalize_pitch, "speech:pitch", "speaking_pitch"),
    "volume": (normalize_volume, "speech:volume", "speaking_volume"),
}

# What the reply says a voice could not use, by setting and by the level it was inherited from.
_DROPPED: dict[tuple[str, str], Text] = {
    ("rate", "preference"): pgettext("dropped setting", "your preference speed {value}"),
    ("rate", "server"): pgettext("dropped setting", "the server's default speed {value}"),
    ("rate", "operator"): pgettext("dropped setting", "the default speed {value}"),
    ("pitch", "preference"): pgettext("dropped setting", "your preference pitch {value}"),
    ("pitch", "server"): pgettext("dropped setting", "the server's default pitch {value}"),
    ("pitch", "operator"): pgettext("dropped setting", "the default pitch {value}"),
    ("volume", "preference"): pgettext("dropped setting", "your preference volume {value}"),
    ("volume", "server"): pgettext("dropped setting", "the server's default volume {value}"),
    ("volume", "operator"): pgettext("dropped setting", "the default volume {value}"),
    ("intensity", "preference"): pgettext("dropped setting", "your preference intensity {value}"),
    ("intensity", "server"): pgettext("dropped setting", "the server's default intensity {value}"),
    ("intensity", "operator"): pgettext("dropped setting", "the default intensity {value}"),
    ("voice", "preference"): pgettext("dropped setting", "your preference voice (it is no longer available)"),
    ("voice", "server"): pgettext("dropped setting", "the server's default voice (it is no longer available)"),
    ("language", "server"): pgettext("dropped setting", "the server's language {value}"),
}
_CANNOT_CHANGE: dict[str, Text] = {
    "rate": _("{voice} cannot change its speed; {voices}"),
    "pitch": _("{voice} cannot change its pitch; {voices}"),
    "volume": _("{voice} cannot change its volume; {voices}"),
}


def _dropped(setting: str, source: str, value: object = None) -> Text:
    found = _DROPPED.get((setting, source)) or _DROPPED[(setting, "operator")]
    return Text(found.message, {"value": "" if value is None else str(value)}, context=found.context)


# A user install's server level: nothing set (PRODUCT.md, Reach: no server settings apply there).
NO_SERVER = GuildSettings(guild_id=0)


@dataclass(slots=True)
class SayOptions:
    """What the member typed: every field None when the option was not given."""

    voice: str | None = None
    language: str | None = None
    rate: str | None = None
    pitch: str | None = None
    volume: str | None = None
    intensity: int | None = None
    format: str | None = None


@dataclass(slots=True)
class SpeechPlan:
    """Everything needed to synthesise, decided without calling Unmixr."""

    guild_id: int | None  # None: asked through the user's own install (no server's settings, budgets or clones)
    user_id: int | None  # the member charged: who asked, or a readout's author
    voice: Voice
    text: str
    chunks: list[str]
    language: str | None
    rate: str | None
    pitch: str | None
    volume: str | None
    intensity: int | None
    output_type: str
    pronunciations: dict[str, str]
    dropped: list[Text] = field(default_factory=list)
    # The readout words of the clip's language ("link", "and so on", "said") its text was cleaned with.
    words: ReadoutWords = field(default_factory=readout_words)
    # The text is a member's message (a readout, Read aloud): its audio stays in the cache at most a day.
    from_message: bool = False
    # Attach it as a Discord voice message (the format `voice-message`); ignored in voice playback.
    voice_message: bool = False
    # Each chunk's request and cache key, built once: the budget check and the synthesis both need them.
    _requests: dict[int, tuple[TTSRequest, str]] = field(default_factory=dict, repr=False)

    def with_rate(self, rate: str | None) -> SpeechPlan:
        """The same plan spoken at another rate: each chunk's request, and so its cache key, is the one sent."""
        if rate == self.rate:
            return self
        return dataclasses.replace(self, rate=rate, _requests={})

    @property
    def fairness(self) -> Hashable:
        """Who this request shares the upstream's and ffmpeg's slots fairly as: its server, or its user-install user."""
        return self.guild_id if self.guild_id is not None else ("user", self.user_id)

    def request(self, index: int) -> tuple[TTSRequest, str]:
        """The Unmixr request for chunk `index` and its audio-cache key."""
        made = self._requests.get(index)
        if made is None:
            request = self.request_for(self.chunks[index])
            made = self._requests[index] = (request, _cache_key(request))
        return made

    def request_for(self, chunk: str) -> TTSRequest:
        """The Unmixr request for one chunk, with only the pronunciations that occur in it."""
        return TTSRequest(
            text=chunk,
            voice_id=self.voice.uuid,
            language=self.language,
            speaking_rate=self.rate,
            speaking_pitch=self.pitch,
            speaking_volume=self.volume,
            intensity=self.intensity,
            output_type=self.output_type,
            pronunciation_dict=matching_entries(chunk, self.pronunciations) or None,
        )


@dataclass(slots=True)
class ChunkAudio:
    """One synthesised chunk."""

    index: int
    audio: bytes
    duration: float
    credits: int
    from_cache: bool


@dataclass(slots=True)
class SpeechResult:
    """The joined audio of a whole request."""

    plan: SpeechPlan
    audio: bytes
    output_type: str
    duration: float
    credits: int
    from_cache: bool


def _cache_key(request: TTSRequest) -> str:
    return cache_key(**request.model_dump(exclude={"response_type"}, exclude_none=True))


class SpeechService:
    """Plans and performs synthesis for members, charging as little as possible."""

    def __init__(
        self,
        client: UnmixrClient,
        cache: AudioCache,
        storage: Storage,
        catalogue: Catalogue,
        guard: CreditGuard,
        *,
        operator_voice_id: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._metrics = metrics if metrics is not None else Metrics()
        self._cache = cache
        self._storage = storage
        self._catalogue = catalogue
        self._guard = guard
        self._operator_voice_id = operator_voice_id
        # Chunks left to finish after their request failed or stopped, kept so they are not collected.
        self._finishing: set[asyncio.Future[ChunkAudio]] = set()

    async def plan(
        self,
        *,
        guild_id: int | None,
        user_id: int,
        text: str | Callable[[ReadoutWords], str],
        options: SayOptions,
        truncate_to_limit: bool = False,
        given_length: int | None = None,
        speaker: str | None = None,
        server_locale: str | None = None,
    ) -> SpeechPlan:
        """Check a request and decide how to synthesise it; raises a UserFacingError on bad input.

        `text` is the cleaned text, or the cleaning to run with the readout words of the clip's language (known
        once the voice and language are chosen; else the server's `server_locale`, else English); `given_length`
        is the length the member typed, which is what the limit is about. With `truncate_to_limit`, text over
        `max-length` is cut with "and so on" (Read aloud and readouts) instead of refused (`/say`), and the audio
        is a member's message, kept at most a day. A `speaker` is announced first ("<name> said"), which does not
        count toward the limit.

        Without `guild_id` the request comes through the user's own install (PRODUCT.md, Reach): settings resolve from
        the option, the user's account-wide preferences, the operator's default and the built-in default; no
        server's settings, pronunciations or clones apply.
        """
        server: GuildSettings
        preferences: MemberPreferences | UserPreferences
        if guild_id is None:
            server, preferences = NO_SERVER, await self._storage.get_user_preferences(user_id)
        else:
            server = await self._storage.get_guild_settings(guild_id)
            preferences = await self._storage.get_member_preferences(guild_id, user_id)
        # The text checks come first and need no voice: the readout words it is cleaned with are all speakable, so
        # English ones tell as well as any whether anything is left to say. It is cleaned again in the clip's
        # language below when that is not English.
        english = readout_words()
        stripped = (text if isinstance(text, str) else text(english)).strip()
        if not stripped or not is_speakable(stripped):
            raise NothingToSayError()
        limit = resolve("max_length", server=server).value or MAX_LENGTH_LIMIT
        length = len(stripped) if given_length is None else given_length
        if length > limit and not truncate_to_limit:
            raise TextTooLongError(length, limit)

        # Interactions passed the look-up gate already (nothing to wait for); a readout may wait here.
        await self._catalogue.prepare(guild_id)
        prosody = {name: self._check_prosody(name, getattr(options, name)) for name in _PROSODY}
        if options.intensity is not None and not -100 <= options.intensity <= 100:
            raise InvalidOptionError(
                _(
                    "Intensity must be a whole number from -100 to 100, not {intensity}; {voices}",
                    intensity=str(options.intensity),
                    voices=self._voices_with("intensity", guild_id),
                )
            )
        if options.format is not None and options.format not in FORMATS:
            raise InvalidOptionError(_("Format must be mp3, wav or voice-message."))

        dropped: list[Text] = []
        voice = await self._choose_voice(options, preferences, server, guild_id, dropped)
        language = self._choose_language(voice, options, server, dropped)
        # The words a readout adds are in the language the clip is spoken in (PRODUCT.md, Languages).
        words = readout_words(language or voice.language, server_locale)
        if words is not english and not isinstance(text, str):
            stripped = text(words).strip()
        if len(stripped) > limit:
            stripped = truncate(stripped, limit, words)
        if speaker is not None:
            stripped = with_said_prefix(speaker, stripped, words)

        values: dict[str, Any] = {}
        for name, (normalize, capability, _field) in _PROSODY.items():
            resolved = resolve(name, option=prosody[name], preferences=preferences, server=server)
            value = resolved.value
            if resolved.inherited and value is not None:
                try:
                    value = normalize(value)
                except ProsodyError:
                    value = None  # a stored value written before the rules changed; ignore it
            if value is None or value in ("default", "0%", "+0%"):
                values[name] = None
            elif not voice.has_capability(capability):
                if not resolved.inherited:
                    cannot = _CANNOT_CHANGE[name]
                    raise InvalidOptionError(
                        Text(
                            cannot.message,
                            {"voice": as_typed(voice.character), "voices": self._voices_with(capability, guild_id)},
                        )
                    )
                dropped.append(_dropped(name, resolved.source, value))
                values[name] = None
            else:
                values[name] = value
        intensity = resolve("intensity", option=options.intensity, server=server)
        if intensity.value is not None and not voice.has_capability("intensity"):
            if not intensity.inherited:
                raise InvalidOptionError(
                    _(
                        "{voice} does not support intensity; {voices}",
                        voice=as_typed(voice.character),
                        voices=self._voices_with("intensity", guild_id),
                    )
                )
            dropped.append(_dropped("intensity", intensity.source, str(intensity.value)))
            intensity = Resolved(None, intensity.source)
        output_type = resolve("format", option=options.format, server=server).value or "mp3"
        voice_message = output_type == VOICE_MESSAGE
        if voice_message:
            output_type = "mp3"
        pronounced = await self._storage.list_pronunciations(guild_id) if guild_id is not None else []
        entries = {entry.word: entry.spoken for entry in pronounced}
        return SpeechPlan(
            guild_id=guild_id,
            user_id=user_id,
            voice=voice,
            text=stripped,
            chunks=split_text(stripped, MAX_REQUEST_CHARS),
            language=language,
            rate=values["rate"],
            pitch=values["pitch"],
            volume=values["volume"],
            intensity=intensity.value,
            output_type=output_type,
            pronunciations=matching_entries(stripped, entries),
            dropped=dropped,
            words=words,
            # Read aloud and readouts, the requests cut at max-length, are the ones that speak members' messages.
            from_message=truncate_to_limit,
            voice_message=voice_message,
        )

    @staticmethod
    def _check_prosody(name: str, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return _PROSODY[name][0](value)
        except ProsodyError as error:
            raise InvalidOptionError(error.text) from None

    async def _choose_voice(
        self,
        options: SayOptions,
        preferences: MemberPreferences | UserPreferences,
        server: GuildSettings,
        guild_id: int | None,
        dropped: list[Text],
    ) -> Voice:
        if options.voice is not None and options.voice.strip():
            voice = self._catalogue.find(options.voice, guild_id)
            if voice is None:
                raise UnknownVoiceError(options.voice, self._catalogue.close_names(options.voice, guild_id))
            return voice
        for source, voice_id in (
            ("preference", preferences.voice_id),
            ("server", server.voice_id),
            ("operator", self._operator_voice_id),
        ):
            if not voice_id:
                continue
            voice = self._catalogue.get(voice_id, guild_id)
            if voice is not None:
                return voice
            if source != "operator":
                dropped.append(_dropped("voice", source))
            else:
                log.warning("DEFAULT_VOICE_ID is not an available voice; using the first prebuilt voice")
        language = server.language or "en-US"
        voice = self._catalogue.default_voice(language)
        if voice is None:
            raise InvalidOptionError(_("No voice is available right now; please try again later."))
        return voice

    def _choose_language(
        self, voice: Voice, options: SayOptions, server: GuildSettings, dropped: list[Text]
    ) -> str | None:
        language = resolve("language", option=options.language, server=server)
        code = (language.value or "").strip()
        if not code:
            return None
        if voice.speaks(code):
            return code
        if not language.inherited:
            languages = voice.languages
            shown = as_typed(", ".join(languages[:LANGUAGES_SHOWN]))
            name, spoken = as_typed(voice.character), as_typed(code)
            if not shown:
                raise InvalidOptionError(
                    _(
                        "{voice} does not speak {language}; it speaks its own language only.",
                        voice=name,
                        language=spoken,
                    )
                )
            if len(languages) > LANGUAGES_SHOWN:
                raise InvalidOptionError(
                    counted(
                        len(languages) - LANGUAGES_SHOWN,
                        "{voice} does not speak {language}; it speaks {languages} and {count} more.",
                        "{voice} does not speak {language}; it speaks {languages} and {count} more.",
                        voice=name,
                        language=spoken,
                        languages=shown,
                    )
                )
            raise InvalidOptionError(
                _(
                    "{voice} does not speak {language}; it speaks {languages}.",
                    voice=name,
                    language=spoken,
                    languages=shown,
                )
            )
        if language.source == "server":
            dropped.append(_dropped("language", "server", code))
        return None

    def _voices_with(self, capability: str, guild_id: int | None) -> Message:
        names = [
            voice.character
            for voice in self._catalogue.voices_for(guild_id)
            if voice.character and voice.has_capability(capability)
        ]
        if not names:
            return _("no voice supports it at the moment.")
        shown = listing([as_typed(name) for name in names[:5]])
        if len(names) > 5:
            return counted(
                len(names) - 5,
                "voices that support it include {voices} and {count} more.",
                "voices that support it include {voices} and {count} more.",
                voices=shown,
            )
        return _("voices that support it include {voices}.", voices=shown)

    def _joined_key(self, plan: SpeechPlan) -> str | None:
        # The joined file of a long text is cached too, so a repeated long text is not joined again.
        if len(plan.chunks) < 2:
            return None
        return cache_key(chunks=[plan.request(index)[1] for index in range(len(plan.chunks))])

    async def reserve(self, plan: SpeechPlan, *, joined: bool = False) -> Reservation:
        """Check the budgets and hold the request's estimate: its chunks' code points.

        `joined` is for an attachment, synthesised at once: chunks in the cache now (or a cached joined file of
        every chunk) are free. Otherwise the plan is a clip queued in voice, synthesised only when it is about
        to play, by when its chunks may have left the cache: every chunk holds, and one still cached when it is
        synthesised gives its part back. Raises BudgetError (a one-sentence answer) when a budget would be
        passed; nothing is held then.
        """
        cached: set[int] = set()
        if joined:
            await self._cache.load()
            joined_key = self._joined_key(plan)
            if joined_key is not None and joined_key in self._cache:
                cached = set(range(len(plan.chunks)))
            else:
                # Beyond the local folder, one query to the shared tier (PostgreSQL: deferred by now) for the rest.
                keys = {index: plan.request(index)[1] for index in range(len(plan.chunks))}
                found = await self._cache.locate([*keys.values(), *([joined_key] if joined_key is not None else [])])
                if joined_key is not None and joined_key in found:
                    cached = set(keys)
                else:
                    cached = {index for index, key in keys.items() if key in found}
        holds = {index: len(chunk) for index, chunk in enumerate(plan.chunks) if index not in cached}
        return await self._guard.reserve(
            guild_id=plan.guild_id,
            user_id=plan.user_id,
            holds=holds,
            cached=cached,
            cloned_voice=plan.guild_id is not None and self._catalogue.is_clone(plan.voice.uuid, plan.guild_id),
        )

    async def iter_chunks(self, plan: SpeechPlan, reservation: Reservation) -> AsyncIterator[ChunkAudio]:
        """Synthesise the chunks concurrently (bounded) and yield them in order as each is ready.

        Chunks that were never sent release their hold when the iteration stops early.
        """
        gate = asyncio.Semaphore(CHUNK_CONCURRENCY)
        sent: set[int] = set()

        async def one(index: int, chunk: str) -> ChunkAudio:
            async with gate:
                return await self._synthesise_chunk(plan, index, chunk, reservation, lambda: sent.add(index))

        tasks = [asyncio.ensure_future(one(index, chunk)) for index, chunk in enumerate(plan.chunks)]
        try:
            for task in tasks:
                # Shielded: stopping this iteration must not cancel a chunk whose request is already out.
                yield await asyncio.shield(task)
        finally:
            # A chunk whose request is out may be charged already: let it finish so its audio is cached and
            # counted (a retry then costs nothing for it). Chunks not sent yet (still waiting for a slot of
            # the upstream limit) are cancelled, and their holds given back.
            unsent = [task for index, task in enumerate(tasks) if not task.done() and index not in sent]
            for task in unsent:
                task.cancel()
            for task in tasks:
                if not task.done() and task not in unsent:
                    self._finishing.add(task)
                    task.add_done_callback(self._chunk_finished)
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved, so a failed chunk is not reported as never retrieved
            if unsent:
                # Only the cancelled ones need waiting for: a finished /say goes on without a trip round the loop.
                await asyncio.gather(*unsent, return_exceptions=True)
            for index in range(len(tasks)):
                if index not in sent:
                    await reservation.release(index)

    def _chunk_finished(self, task: asyncio.Future[ChunkAudio]) -> None:
        self._finishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a chunk left running after its request failed also failed: %s", task.exception())

    async def synthesise(self, plan: SpeechPlan, reservation: Reservation) -> SpeechResult:
        """Synthesise a whole request and join it into one file."""
        joined_key = self._joined_key(plan)
        if joined_key is not None:
            joined = await self._cache.get(joined_key)
            if joined is not None and joined.duration is not None:
                self._metrics.cache(hit=True, chunks=len(plan.chunks))
                for index in range(len(plan.chunks)):
                    await reservation.cache_hit(index)
                return SpeechResult(plan, joined.data, plan.output_type, joined.duration, 0, True)
        parts = [chunk async for chunk in self.iter_chunks(plan, reservation)]
        seconds = sum(part.duration for part in parts)
        if joined_key is None:
            audio = parts[0].audio
        else:
            audio = await concat([part.audio for part in parts], plan.output_type, server=plan.fairness)  # type: ignore[arg-type]
            self._cache.put_soon(
                joined_key, audio, duration=seconds, output_type=plan.output_type, from_message=plan.from_message
            )
        return SpeechResult(
            plan=plan,
            audio=audio,
            output_type=plan.output_type,
            duration=seconds,
            credits=sum(part.credits for part in parts),
            from_cache=all(part.from_cache for part in parts),
        )

    async def _synthesise_chunk(
        self,
        plan: SpeechPlan,
        index: int,
        chunk: str,
        reservation: Reservation,
        on_sent: Callable[[], None] | None = None,
    ) -> ChunkAudio:
        request, key = plan.request(index)
        cached = await self._cache.get(key)
        self._metrics.cache(hit=cached is not None)
        if cached is not None:
            await reservation.cache_hit(index)
            seconds = cached.duration if cached.duration is not None else await duration(cached.data)
            return ChunkAudio(index, cached.data, seconds, 0, True)
        fairness: Hashable = plan.fairness
        out = False

        def leaving() -> None:
            nonlocal out
            out = True
            reservation.sent(index)
            if on_sent is not None:
                on_sent()

        try:
            result = await self._client.short_tts(request, fairness_key=fairness, on_sent=leaving)
        except UnmixrError as error:
            if error.credit_usage is not None:
                await reservation.settle(index, len(chunk), error.credit_usage)
            elif error.maybe_charged:
                await reservation.settle(index, len(chunk), None)  # a timeout after sending: assume the estimate
            else:
                await reservation.release(index)
            raise
        except BaseException:
            if out:
                # Stopped while the request was out: it may have been charged, so the hold counts as spent.
                await reservation.settle(index, len(chunk), None)
            else:
                await reservation.release(index)  # stopped while it waited for a slot: nothing was sent
            raise
        usage = result.credit_usage if result.usage_reported else None
        await reservation.settle(index, len(chunk), usage)
        seconds = result.duration if result.duration else await duration(result.audio)
        # Written to disk after the answer; served from memory meanwhile.
        self._cache.put_soon(
            key, result.audio, duration=seconds, output_type=plan.output_type, from_message=plan.from_message
        )
        credits = usage.total if usage is not None else len(chunk)
        return ChunkAudio(index, result.audio, seconds, credits, False)
