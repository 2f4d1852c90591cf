"""End-to-end tests of /say through the real discord.py and both stand-ins."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.storage import Storage
from tests.conftest import MEMBER_PERMISSIONS, UNMIXR_KEY, World
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeInteraction, FakeMember, Response
from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID, STEFFAN_ID

# A raw HTTP status in an answer ("error 505") tells a member nothing.
RAW_STATUS = re.compile(r"\b(?:4\d\d|5\d\d)\b")


# Helpers shared with test_read_aloud.py and test_say_long.py -----------------------------------------


def is_answer(response: Response) -> bool:
    """Whether a response carries an answer (a message, an update or autocomplete choices)."""
    if response.kind in ("followup", "edit_original", "edit_followup"):
        return True
    return response.kind == "callback" and response.type in (4, 7, 8, 9)


@pytest.fixture(autouse=True)
async def every_interaction_answered(discord_fake: FakeDiscord, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After each test: every interaction was acknowledged, its delay is recorded, and none went unanswered."""
    yield
    for interaction in discord_fake.interactions.values():
        acknowledged = interaction.acknowledged_at
        assert acknowledged is not None, f"{interaction} was never acknowledged: {interaction.responses}"
        delay = acknowledged - interaction.created_at
        assert delay >= 0
        request.node.user_properties.append((f"ack_seconds_{interaction.id}", round(delay, 4)))
        accepted = [r for r in interaction.responses if r.status < 300]
        assert any(is_answer(r) for r in accepted), f"{interaction} ended without an answer: {interaction.responses}"


async def ffprobe(data: bytes) -> dict[str, Any]:
    """What ffprobe makes of some audio: the format's name, its duration and the audio stream's codec."""
    process = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        "format=format_name,duration:stream=codec_name,codec_type",
        "-of",
        "json",
        "-i",
        "pipe:0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate(data)
    assert process.returncode == 0, f"ffprobe could not read the audio: {errors.decode(errors='replace')}"
    report = json.loads(output)
    streams = [s for s in report.get("streams", []) if s.get("codec_type") == "audio"]
    assert streams, f"no audio stream in the attachment: {report}"
    # Read from a pipe, an mp3 has no duration in its header: decode it all to measure it.
    stated = report["format"].get("duration")
    seconds = float(stated) if stated not in (None, "N/A") else await decoded_seconds(data)
    return {"format": report["format"]["format_name"], "duration": seconds, "codec": streams[0]["codec_name"]}


async def decoded_seconds(data: bytes) -> float:
    """The duration of audio measured by decoding all of it (exact even where headers only estimate)."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-hide_banner",
        "-nostats",
        "-i",
        "pipe:0",
        "-f",
        "null",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"AV_LOG_FORCE_NOCOLOR": "1"},
    )
    _, errors = await process.communicate(data)
    assert process.returncode == 0, errors.decode(errors="replace")
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", errors.decode(errors="replace"))
    assert times, "ffmpeg reported no decoded time"
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def reply_seconds(content: str) -> float:
    """The duration an audio reply states ("· 1.3 s ·")."""
    match = re.search(r"(\d+(?:\.\d+)?) s\b", content)
    assert match is not None, f"the reply does not state a duration: {content!r}"
    return float(match.group(1))


def reply_credits(content: str) -> int:
    """The credits an audio reply states ("· 19 credits")."""
    match = re.search(r"([\d,]+) credits?\b", content)
    assert match is not None, f"the reply does not state the credits used: {content!r}"
    return int(match.group(1).replace(",", ""))


def mentions_allowed(response: Response) -> Any:
    """The allowed_mentions an answer was sent with (a callback nests its message under "data")."""
    body = response.json or {}
    if response.kind == "callback":
        body = body.get("data") or {}
    return body.get("allowed_mentions")


def tts_payloads(unmixr: FakeUnmixr) -> list[Any]:
    """The JSON bodies of the /short-tts/ requests Unmixr received, in order."""
    return [r.json for r in unmixr.requests if r.endpoint == "/short-tts/"]


async def final(interaction: FakeInteraction) -> FakeInteraction:
    """Wait for the interaction's final answer and return the interaction."""
    await interaction.wait_final()
    return interaction


def assert_refused(interaction: FakeInteraction, *fragments: str) -> str:
    """The final answer is one ephemeral line without attachments, containing every fragment (any case)."""
    content = interaction.content()
    assert interaction.ephemeral, f"expected an ephemeral answer, got {content!r}"
    assert not interaction.files(), "a refusal carries no audio"
    assert content.strip() and "\n" not in content.strip(), f"expected one line, got {content!r}"
    assert content.rstrip().endswith((".", "?", "!", ")")), f"expected a full sentence, got {content!r}"
    for fragment in fragments:
        assert fragment.casefold() in content.casefold(), f"{fragment!r} is not in {content!r}"
    return content


def assert_refused_at_once(interaction: FakeInteraction, *fragments: str) -> str:
    """Refused by the bot's own checks: the interaction's first and only answer is an ephemeral response."""
    content = assert_refused(interaction, *fragments)
    accepted = [(r.kind, r.type) for r in interaction.responses if r.status < 300]
    assert accepted == [("callback", 4)], f"expected one immediate response, got {accepted}"
    return content


def assert_audio_reply(interaction: FakeInteraction, extension: str = "mp3") -> tuple[str, bytes]:
    """The final answer is public and carries exactly one audio attachment of that type."""
    assert not interaction.ephemeral, f"expected a public answer, got {interaction.content()!r}"
    files = interaction.files()
    assert len(files) == 1, f"expected one attachment, got {[name for name, _ in files]}"
    name, data = files[0]
    assert name.endswith(f".{extension}"), name
    return name, data


async def usage_today(world: World, guild_id: int | None = None) -> Any:
    """What the ledger says the server used today (UTC)."""
    return await world.bot.storage.usage_for_day(guild_id or world.guild.id, datetime.now(UTC).date())


def voice_uuid(unmixr: FakeUnmixr, name: str) -> str:
    """The uuid of a catalogue voice by its exact name."""
    return next(str(v["uuid"]) for v in unmixr.voices if v["character"] == name)


def add_clone_upstream(unmixr: FakeUnmixr, name: str) -> str:
    """Put a clone in the stand-in's account, shaped as its /clone-voice/ makes them, and return its uuid."""
    voice_id = f"c10ed000-0000-4000-8000-{len(unmixr.clones):012d}"
    unmixr.clones.append(
        {
            "uuid": voice_id,
            "character": name,
            "gender": "",
            "language": "en",
            "quality": "",
            "sample_voice_url": f"{unmixr.origin}/samples/{voice_id}.mp3",
            "emotions": [],
            "capabilities": [],
            "roles": [],
            "use_cases": [],
            "other_languages": ["en", "de", "fr"],
            "supported_locales": {},
            "is_available": True,
            "date_created": "2025-01-01T00:00:00.000000Z",
            "is_multilingual": True,
            "wpm": None,
            "is_new": True,
            "description": "A test clone.",
            "age": None,
            "personality": [],
            "avatar_url": None,
            "category": "clones",
        }
    )
    return voice_id


async def admin_sets(world: World, subcommand: str, options: dict[str, Any]) -> None:
    """An admin changes a server setting; the change must be accepted."""
    interaction = await final(await world.slash("settings", options, subcommand=subcommand, member=world.admin))
    assert interaction.ephemeral
    assert "must" not in interaction.content().casefold(), interaction.content()


# The plain /say -----------------------------------------------------------------------------------------


async def test_say_attaches_public_audio_naming_voice_duration_and_credits(running: World) -> None:
    text = "Hello there, this is a test of the speech command."
    interaction = await final(await running.say(text=text))

    _, audio = assert_audio_reply(interaction)
    probe = await ffprobe(audio)
    assert probe["codec"] == "mp3"
    assert probe["duration"] > 0.5
    content = interaction.content()
    assert "Brian" in content  # the first prebuilt en-US voice is the built-in default
    assert reply_seconds(content) == pytest.approx(probe["duration"], abs=0.15)
    assert reply_credits(content) == len(text)
    assert "from cache" not in content

    (payload,) = tts_payloads(running.unmixr)
    assert payload["response_type"] == "url"
    assert payload["voice_id"] == BRIAN_ID
    assert payload["text"] == text
    assert payload.get("output_type", "mp3") == "mp3"
    # Nothing the member did not ask for is sent.
    for absent in ("speaking_rate", "speaking_pitch", "speaking_volume", "intensity", "pronunciation_dict"):
        assert absent not in payload
    usage = await usage_today(running)
    assert usage.credits == len(text)
    assert usage.requests == 1


async def test_repeated_say_is_served_from_cache_without_credits(running: World) -> None:
    text = "Say it once, then say it again."
    first = await final(await running.say(text=text))
    _, first_audio = assert_audio_reply(first)
    spent = (await usage_today(running)).credits
    assert spent == len(text)

    second = await final(await running.say(text=text, member=running.other))

    _, second_audio = assert_audio_reply(second)
    assert len(running.tts_requests()) == 1, "a cached request must not reach Unmixr again"
    assert "from cache" in second.content()
    assert "Brian" in second.content()
    assert second_audio == first_audio
    usage = await usage_today(running)
    assert usage.credits == spent, "a cache hit costs no credits"
    assert usage.cache_hits == 1


# Every option reaches Unmixr ------------------------------------------------------------------------------


async def test_voice_is_found_by_exact_name_prefix_any_case_and_uuid(running: World) -> None:
    jenny = voice_uuid(running.unmixr, "Jenny")
    cases = [
        ("Jenny", jenny),  # exact
        ("jEnNy", jenny),  # any case
        ("Stef", STEFFAN_ID),  # prefix
        ("steffan (express)", STEFFAN_ID),
        (BRIAN_ID, BRIAN_ID),  # uuid
        (BRIAN_ID.upper(), BRIAN_ID),
    ]
    for number, (given, expected) in enumerate(cases):
        interaction = await final(await running.say(text=f"Voice check number {number}.", voice=given))
        assert_audio_reply(interaction)
        assert tts_payloads(running.unmixr)[-1]["voice_id"] == expected, given
        expected_name = next(v["character"] for v in running.unmixr.voices if v["uuid"] == expected)
        assert expected_name in interaction.content()


async def test_language_prosody_intensity_and_wav_reach_unmixr_in_canonical_form(running: World) -> None:
    interaction = await final(
        await running.say(
            text="Bonjour, tout le monde.",
            voice="Brian",
            language="fr-FR",
            rate="20%",
            pitch="-10%",
            volume="X-Loud",
            intensity=40,
            format="wav",
        )
    )

    _, audio = assert_audio_reply(interaction, extension="wav")
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    probe = await ffprobe(audio)
    assert probe["format"] == "wav"
    assert probe["codec"].startswith("pcm_")
    (payload,) = tts_payloads(running.unmixr)
    assert payload["voice_id"] == BRIAN_ID
    assert payload["language"] == "fr-FR"
    assert payload["speaking_rate"] == "+20%"
    assert payload["speaking_pitch"] == "-10%"
    assert payload["speaking_volume"] == "x-loud"
    assert payload["intensity"] == 40
    assert payload["output_type"] == "wav"
    assert payload["response_type"] == "url"


async def test_prosody_words_and_signed_percentages_are_normalised(running: World) -> None:
    await final(await running.say(text="Fast and high.", rate="FAST", pitch="+5%", volume="-0%"))
    payload = tts_payloads(running.unmixr)[-1]
    assert payload["speaking_rate"] == "fast"
    assert payload["speaking_pitch"] == "+5%"
    assert "speaking_volume" not in payload  # 0% is the default: nothing to send


async def test_pronunciations_send_only_matching_whole_words(running: World) -> None:
    for word, spoken in (("SQL", "sequel"), ("GIF", "jif"), ("Nginx", "engine x")):
        added = await final(
            await running.slash("pronounce", {"word": word, "spoken": spoken}, subcommand="add", member=running.admin)
        )
        assert added.ephemeral
        assert spoken in added.content()

    await final(await running.say(text="I store my gifs in sql, and nginx serves them."))
    payload = tts_payloads(running.unmixr)[-1]
    # "gifs" is not the whole word "GIF"; the two others match whatever their case.
    assert payload["pronunciation_dict"] == {"SQL": "sequel", "Nginx": "engine x"}

    await final(await running.say(text="MySQL and NoSQL are not the word on its own."))
    assert "pronunciation_dict" not in tts_payloads(running.unmixr)[-1]


# Voice autocomplete and clone scoping -------------------------------------------------------------------


NO_MATCH = 3


def _match_rank(name: str, query: str) -> int:
    """How well a name matches: 0 exact, 1 prefix, 2 anywhere else, NO_MATCH when it does not."""
    name, query = name.casefold(), query.casefold()
    if name == query:
        return 0
    if name.startswith(query):
        return 1
    if query in name:
        return 2
    return NO_MATCH


async def _autocomplete(world: World, current: str, guild: FakeGuild | None = None, **kwargs: Any) -> Any:
    guild = guild or world.guild
    channel = kwargs.pop("channel", world.text)
    member = kwargs.pop("member", world.member)
    interaction = await world.discord.autocomplete(
        guild, channel, member, "say", {"text": "hello", "voice": current}, "voice"
    )
    await interaction.wait_final()
    return interaction.choices()


async def test_voice_autocomplete_ranks_matches_and_offers_uuids(running: World) -> None:
    offered = {
        str(v["uuid"]): str(v["character"])
        for v in running.unmixr.voices
        if v.get("is_available", True) and v.get("category") != "openai-voices"
    }

    everything = await _autocomplete(running, "")
    assert 0 < len(everything) <= 25
    assert all(choice["value"] in offered for choice in everything)

    for query in ("a", "e", "an", "Ana", "ar", "EXPRESS", "(community)"):
        choices = await _autocomplete(running, query)
        values = [choice["value"] for choice in choices]
        assert len(values) == len(set(values)) <= 25
        assert all(value in offered for value in values), query
        ranks = [_match_rank(offered[value], query) for value in values]
        assert NO_MATCH not in ranks, f"{query!r} offered non-matching voices"
        assert ranks == sorted(ranks), f"{query!r} is not ranked exact, prefix, then substring: {ranks}"
        matching = {uuid for uuid, name in offered.items() if _match_rank(name, query) != NO_MATCH}
        if len(matching) <= 25:
            assert set(values) == matching, query
        else:
            assert len(values) == 25, query
            # Cut at 25, the better matches are the ones kept.
            best = {uuid for uuid in matching if _match_rank(offered[uuid], query) < 2}
            assert best <= set(values) or len(best) > 25, query

    exact = await _autocomplete(running, "ana")
    assert exact[0]["value"] == voice_uuid(running.unmixr, "Ana")
    assert "Ana" in exact[0]["name"]
    assert len(exact) > 1  # Nanami and others contain "ana" too, after the exact match


async def _world_with_two_guilds(world: World) -> tuple[FakeGuild, dict[str, Any], FakeMember]:
    second = world.discord.add_guild(name="Other Server")
    channel = second.add_text_channel("chat")
    member = second.add_member("Sam Second", permissions=MEMBER_PERMISSIONS)
    await world.start_bot()
    return second, channel, member


async def test_a_clone_is_offered_and_accepted_only_in_its_own_server(world: World) -> None:
    # A clone made before this start: the bot reads each server's clones as the server becomes available.
    clone_id = add_clone_upstream(world.unmixr, "Zelda Clone")
    async with await Storage.open(world.settings.database_path) as storage:
        await storage.add_cloned_voice(clone_id, world.guild.id, "Zelda Clone", None, world.admin.id)
    second, second_channel, second_member = await _world_with_two_guilds(world)
    await world.discord.wait_until(lambda: world.bot.catalogue.has_server(world.guild.id), what="the clones read")

    home = await _autocomplete(world, "zelda")
    assert [choice["value"] for choice in home] == [clone_id]
    away = await _autocomplete(world, "zelda", guild=second, channel=second_channel, member=second_member)
    assert away == []
    away_all = await _autocomplete(world, "", guild=second, channel=second_channel, member=second_member)
    assert clone_id not in [choice["value"] for choice in away_all]

    used = await final(await world.say(text="Speaking with my own clone.", voice="Zelda Clone"))
    assert_audio_reply(used)
    assert tts_payloads(world.unmixr)[-1]["voice_id"] == clone_id
    requests_before = len(world.tts_requests())

    for given in ("Zelda Clone", clone_id):
        refused = await final(
            await world.discord.slash(second, second_channel, second_member, "say", {"text": "Hi.", "voice": given})
        )
        content = assert_refused_at_once(refused, "no voice")
        assert "Zelda" in content or clone_id in content  # it names what was asked for, nothing more
    assert len(world.tts_requests()) == requests_before


# Bad input: each an ephemeral one-sentence answer and no upstream request ---------------------------------


async def test_empty_whitespace_and_unspeakable_text_have_nothing_to_say(running: World) -> None:
    empty = await final(
        await running.discord.slash(
            running.guild, running.text, running.member, "say", {"text": ""}, client_checks=False
        )
    )
    assert_refused_at_once(empty, "nothing to say")
    for text in ("   ", "!!! ...", "```print('code only')```", "😀 ?!"):
        interaction = await final(await running.say(text=text))
        assert_refused_at_once(interaction, "nothing to say")
    assert running.tts_requests() == []
    assert (await usage_today(running)).requests == 0


async def test_text_over_the_servers_max_length_states_limit_and_length(running: World) -> None:
    await admin_sets(running, "max-length", {"length": 50})
    text = "This sentence is deliberately longer than fifty characters in total."
    interaction = await final(await running.say(text=text))
    assert_refused_at_once(interaction, "50", str(len(text)))
    assert running.tts_requests() == []

    fits = await final(await running.say(text="Short enough to be spoken."))
    assert_audio_reply(fits)


async def test_unknown_voice_names_up_to_three_close_names(running: World) -> None:
    interaction = await final(await running.say(text="Hello.", voice="Jeny"))
    content = assert_refused_at_once(interaction, "Jeny", "Jenny")
    suggested = re.findall(r"\*\*(.+?)\*\*", content)
    assert 1 <= len(suggested) <= 3
    known = {str(v["character"]) for v in running.unmixr.voices}
    assert set(suggested) <= known

    unknown_id = await final(await running.say(text="Hello.", voice="00000000-0000-4000-8000-000000000000"))
    assert_refused_at_once(unknown_id, "no voice")
    retired = await final(await running.say(text="Hello.", voice="Retired Voice"))
    assert_refused_at_once(retired, "no voice")
    assert running.tts_requests() == []


@pytest.mark.parametrize(
    ("option", "value", "fragments"),
    [
        ("rate", "+300%", ("-100%", "+100%", "x-slow", "x-fast")),
        ("pitch", "fast!!", ("-50%", "+50%", "x-low", "x-high")),
        ("volume", "x-loudest", ("-100%", "+100%", "silent", "x-loud")),
    ],
)
async def test_prosody_outside_the_accepted_forms_lists_them(
    running: World, option: str, value: str, fragments: tuple[str, ...]
) -> None:
    interaction = await final(await running.slash("say", {"text": "Hello there.", option: value}))
    assert_refused_at_once(interaction, option, *fragments)
    assert running.tts_requests() == []


async def test_intensity_out_of_range_or_unsupported_is_refused_with_why(running: World) -> None:
    too_much = await final(
        await running.discord.slash(
            running.guild,
            running.text,
            running.member,
            "say",
            {"text": "Hello there.", "intensity": 150},
            client_checks=False,
        )
    )
    assert_refused_at_once(too_much, "intensity", "-100", "100", "150")

    unsupported = await final(await running.say(text="Hello there.", voice="Jenny", intensity=30))
    content = assert_refused_at_once(unsupported, "Jenny", "intensity", "Brian", "Steffan (Express)")
    assert content.index("Jenny") < content.index("Brian")
    assert running.tts_requests() == []


async def test_language_the_voice_does_not_speak_lists_its_languages(running: World) -> None:
    interaction = await final(await running.say(text="Guten Tag.", voice="Amelie", language="de-DE"))
    assert_refused_at_once(interaction, "Amelie", "de-DE", "fr-FR")

    many = await final(await running.say(text="Hello.", voice="Brian", language="xx-YY"))
    content = assert_refused_at_once(many, "xx-YY", "en-US")
    assert "more" in content  # Brian speaks dozens: ten are listed, then a count
    assert running.tts_requests() == []


async def test_explicit_rate_for_a_voice_without_speech_rate_is_refused(running: World) -> None:
    interaction = await final(await running.say(text="Hello there.", voice="Steffan (Express)", rate="+20%"))
    content = assert_refused_at_once(interaction, "Steffan (Express)")
    assert "speed" in content or "rate" in content
    assert "Brian" in content  # which voices can
    assert running.tts_requests() == []


async def test_inherited_values_the_voice_cannot_use_are_dropped_and_named(running: World) -> None:
    await admin_sets(running, "rate", {"rate": "+20%"})
    await admin_sets(running, "intensity", {"intensity": 30})

    steffan = await final(await running.say(text="Inherited settings here.", voice="Steffan (Express)"))
    assert_audio_reply(steffan)
    payload = tts_payloads(running.unmixr)[-1]
    assert payload["voice_id"] == STEFFAN_ID
    assert "speaking_rate" not in payload
    assert payload["intensity"] == 30  # Steffan has intensity: that one is kept
    note = steffan.content()
    assert "+20%" in note
    assert "dropped" in note.casefold() or "not used" in note.casefold()

    jenny = await final(await running.say(text="Inherited settings again.", voice="Jenny"))
    assert_audio_reply(jenny)
    payload = tts_payloads(running.unmixr)[-1]
    assert payload["speaking_rate"] == "+20%"  # Jenny can change her speed
    assert "intensity" not in payload
    assert "intensity 30" in jenny.content()
    assert "+20%" not in jenny.content()

    # A member's own preference is inherited too, and so is the server's language.
    preference = await final(await running.slash("preferences", {"rate": "-10%"}, subcommand="rate"))
    assert preference.ephemeral
    await admin_sets(running, "language", {"language": "de-DE"})
    amelie = await final(await running.say(text="Inherited once more.", voice="Amelie"))
    assert_audio_reply(amelie)
    payload = tts_payloads(running.unmixr)[-1]
    assert payload["speaking_rate"] == "-10%"  # the member's preference wins over the server's +20%
    assert "language" not in payload  # Amelie speaks French only
    assert "de-DE" in amelie.content()
    steffan_again = await final(await running.say(text="And with Steffan once more.", voice="Steffan (Express)"))
    assert "speaking_rate" not in tts_payloads(running.unmixr)[-1]
    assert "-10%" in steffan_again.content()


# Unmixr errors surface as clear ephemeral follow-ups --------------------------------------------------------


def assert_error_followup(interaction: FakeInteraction, *fragments: str) -> str:
    """A public defer whose "thinking" message was deleted, then one ephemeral follow-up without a raw status."""
    kinds = [(r.kind, r.type) for r in interaction.responses if r.status < 300]
    assert kinds[0] == ("callback", 5), kinds  # deferred publicly first
    assert ("delete_original", None) in kinds, f"the thinking message stayed: {kinds}"
    assert kinds[-1] == ("followup", None), kinds
    assert interaction.original_id is None or interaction.original_id in interaction._fake.deleted_message_ids
    content = assert_refused(interaction, *fragments)
    assert not RAW_STATUS.search(content), f"a raw status leaked into {content!r}"
    return content


async def test_out_of_prebuilt_credits(running: World) -> None:
    running.unmixr.prebuilt_chars = 5
    interaction = await final(await running.say(text="This needs more than five characters."))
    assert_error_followup(interaction, "credits")
    assert len(running.tts_requests()) == 1  # a permanent error is not retried
    assert (await usage_today(running)).credits == 0


async def test_out_of_cloned_credits(running: World) -> None:
    clone_id = add_clone_upstream(running.unmixr, "Quill")
    await running.bot.storage.add_cloned_voice(clone_id, running.guild.id, "Quill", None, running.admin.id)
    await running.bot.catalogue.refresh()  # as after another process made it: the next refresh reads it
    running.unmixr.cloned_chars = 3
    interaction = await final(await running.say(text="A clone with no characters left.", voice="Quill"))
    assert_error_followup(interaction, "cloned", "credits")
    assert len(running.tts_requests()) == 1


@pytest.mark.parametrize(
    ("status", "fragments"),
    [(401, ("too long",)), (509, ("could not generate",))],
)
async def test_permanent_tts_errors(running: World, status: int, fragments: tuple[str, ...]) -> None:
    running.unmixr.fail_next(status, endpoint="/short-tts/")
    interaction = await final(await running.say(text="Something perfectly ordinary."))
    assert_error_followup(interaction, *fragments)
    assert len(running.tts_requests()) == 1


async def test_invalid_api_key(running: World) -> None:
    running.unmixr.api_key = "a-key-that-was-revoked"  # the bot's key no longer works
    interaction = await final(await running.say(text="Is the key still good?"))
    content = assert_error_followup(interaction, "API key")
    assert UNMIXR_KEY not in content


async def test_a_key_refused_from_the_start_is_answered_not_hung(world: World) -> None:
    world.unmixr.api_key = "a-key-the-bot-does-not-have"  # so the catalogue cannot even load
    await world.start_bot(wait_for_catalogue=False)
    assert not world.bot.catalogue.loaded

    interaction = await final(await world.say(text="Anyone there?"))
    content = assert_refused(interaction, "API key")
    assert not RAW_STATUS.search(content)
    assert UNMIXR_KEY not in content
    assert world.tts_requests() == []


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda fake: fake.fail_next(500, endpoint="/short-tts/"), id="documented-500"),
        pytest.param(lambda fake: fake.fail_next(508, endpoint="/short-tts/"), id="documented-508"),
        pytest.param(
            lambda fake: fake.fail_next(502, endpoint="/short-tts/", body="<html>502 Bad Gateway</html>"),
            id="proxy-502-html",
        ),
        pytest.param(
            lambda fake: fake.fail_next(429, endpoint="/short-tts/", headers={"Retry-After": "0"}), id="rate-limited"
        ),
        pytest.param(lambda fake: fake.reset_next(endpoint="/short-tts/"), id="connection-reset"),
    ],
)
async def test_transient_failure_is_retried_then_succeeds(running: World, inject: Any) -> None:
    inject(running.unmixr)
    interaction = await final(await running.say(text="Try, try again."))
    assert_audio_reply(interaction)
    assert len(running.tts_requests()) == 2
    assert running.tts_requests()[-1].status == 200
    assert sum(1 for r in interaction.responses if is_answer(r)) == 1
    assert reply_credits(interaction.content()) == len("Try, try again.")


async def test_transient_failures_are_retried_at_most_twice(running: World) -> None:
    running.unmixr.fail_next(500, 3, endpoint="/short-tts/")
    interaction = await final(await running.say(text="This keeps failing."))
    assert_error_followup(interaction, "try again")
    assert len(running.tts_requests()) == 3


async def test_an_error_in_a_success_status_body_wins(running: World) -> None:
    running.unmixr.fail_next(505, endpoint="/short-tts/", http_status=200)
    interaction = await final(await running.say(text="The body says otherwise."))
    assert_error_followup(interaction, "prebuilt", "credits")
    assert len(running.tts_requests()) == 1


async def test_timeout_is_answered_clearly(running: World) -> None:
    # The client's 25 s limit is private: shortened here so the test stays fast.
    running.bot.unmixr._tts_timeout = 0.5
    running.unmixr.hang_next(endpoint="/short-tts/")
    interaction = await final(await running.say(text="Nobody answers this one."))
    assert_error_followup(interaction, "too long to answer")
    assert len(running.tts_requests()) == 1  # it may have been charged: never retried


async def test_malformed_response_is_answered_clearly(running: World) -> None:
    running.unmixr.malformed_next(endpoint="/short-tts/")
    interaction = await final(await running.say(text="Garbled answers."))
    assert_error_followup(interaction, "could not understand")
    assert len(running.tts_requests()) == 1  # a 200 may have been charged: not retried


# The upload limit ----------------------------------------------------------------------------------------


async def test_audio_over_the_upload_limit_is_transcoded_to_fit(running: World) -> None:
    limit = 40 * 1024
    text = " ".join(["A longer sentence makes the audio clip bigger than the upload limit allows."] * 5)
    interaction = await final(
        await running.discord.slash(
            running.guild, running.text, running.member, "say", {"text": text}, attachment_size_limit=limit
        )
    )

    _, audio = assert_audio_reply(interaction)
    assert len(audio) <= limit
    probe = await ffprobe(audio)
    assert probe["codec"] == "mp3"
    assert probe["duration"] == pytest.approx(len(text) / running.unmixr.chars_per_second, abs=0.5)
    assert "smaller mp3" in interaction.content()
    assert len(running.tts_requests()) == 1, "nothing is synthesised twice"
    # The original was bigger than the limit: otherwise this test proves nothing.
    assert len(text) / running.unmixr.chars_per_second * 4000 > limit


async def test_wav_over_the_upload_limit_becomes_a_fitting_mp3(running: World) -> None:
    limit = 40 * 1024
    text = "Uncompressed audio is large, even for short sentences like this one."
    interaction = await final(
        await running.discord.slash(
            running.guild,
            running.text,
            running.member,
            "say",
            {"text": text, "format": "wav"},
            attachment_size_limit=limit,
        )
    )
    _, audio = assert_audio_reply(interaction, extension="mp3")
    assert len(audio) <= limit
    assert (await ffprobe(audio))["codec"] == "mp3"
    assert "smaller mp3" in interaction.content()
    (payload,) = tts_payloads(running.unmixr)
    assert payload["output_type"] == "wav"


async def test_audio_under_the_upload_limit_is_not_transcoded(running: World) -> None:
    text = "A sentence of about one hundred and twenty characters gives an mp3 that fits under forty kilobytes, barely."
    limit = 40 * 1024
    interaction = await final(
        await running.discord.slash(
            running.guild, running.text, running.member, "say", {"text": text}, attachment_size_limit=limit
        )
    )
    _, audio = assert_audio_reply(interaction)
    assert 26 * 1024 < len(audio) <= limit  # close to the limit, yet small enough to send as it is
    assert "smaller mp3" not in interaction.content()
    assert reply_seconds(interaction.content()) == pytest.approx((await ffprobe(audio))["duration"], abs=0.15)


# Mentions ------------------------------------------------------------------------------------------------


async def test_mentions_are_spoken_as_names_and_nobody_is_pinged(running: World) -> None:
    interaction = await final(await running.say(text=f"hi <@{running.other.id}> and <@!{running.admin.id}>"))
    assert_audio_reply(interaction)
    assert tts_payloads(running.unmixr)[-1]["text"] == "hi Otto Other and Ada Admin"
    answers = [r for r in interaction.responses if is_answer(r)]
    assert answers and all(mentions_allowed(r) == {"parse": []} for r in answers)
    assert f"<@{running.other.id}>" not in interaction.content()

    nickname = await final(
        await running.slash("preferences", {"nickname": "Otto"}, subcommand="nickname", member=running.other)
    )
    assert nickname.ephemeral
    await final(await running.say(text=f"hi <@{running.other.id}>"))
    assert tts_payloads(running.unmixr)[-1]["text"] == "hi Otto"


async def test_refusals_never_ping_either(running: World) -> None:
    interaction = await final(await running.say(text="Hello.", voice=f"<@{running.other.id}> @everyone"))
    assert_refused_at_once(interaction, "no voice")
    answers = [r for r in interaction.responses if is_answer(r)]
    assert answers and all(mentions_allowed(r) == {"parse": []} for r in answers)
