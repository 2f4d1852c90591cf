"""End-to-end tests of /say with long text: chunking, concurrency and joining, through both stand-ins."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.cogs.test_say import (
    assert_audio_reply,
    assert_error_followup,
    assert_refused_at_once,
    every_interaction_answered,
    ffprobe,
    final,
    reply_credits,
    reply_seconds,
    tts_payloads,
    usage_today,
)
from tests.conftest import World
from tests.fakes.prose import prose

__all__ = ["every_interaction_answered"]  # the autouse check that every interaction got its answer

SENTENCE_END = re.compile(r"[.!?…][\"')\]]*$")


async def test_5000_characters_are_chunked_at_sentences_synthesised_concurrently_and_joined(running: World) -> None:
    running.unmixr.set_latency(0.3, endpoint="/short-tts/")  # long enough for the requests to overlap visibly
    text = prose(5000)

    interaction = await final(await running.say(text=text))

    _, audio = assert_audio_reply(interaction)
    requests = running.tts_requests()
    chunks = [request.json["text"] for request in requests]
    assert len(chunks) >= 3
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert all(SENTENCE_END.search(chunk) for chunk in chunks), [chunk[-30:] for chunk in chunks]
    # In order, nothing lost, nothing repeated: the chunks rebuild the text.
    assert " ".join(sorted(chunks, key=text.index)) == text
    # Concurrent: every request started before the first one finished.
    assert max(r.started_at for r in requests) < min(r.finished_at or 0.0 for r in requests)
    assert all(request.json["response_type"] == "url" for request in requests)

    probe = await ffprobe(audio)
    assert probe["codec"] == "mp3"
    reported = sum(clip.duration for clip in running.unmixr._audio.values())  # what each part said it lasts
    assert len(running.unmixr._audio) == len(chunks)
    assert probe["duration"] == pytest.approx(reported, abs=0.15)
    assert reply_seconds(interaction.content()) == pytest.approx(reported, abs=0.06)
    assert reply_credits(interaction.content()) == sum(len(chunk) for chunk in chunks)


async def test_6000_characters_the_maximum_work(running: World) -> None:
    text = prose(6000)
    interaction = await final(await running.say(text=text))

    _, audio = assert_audio_reply(interaction)
    chunks = [payload["text"] for payload in tts_payloads(running.unmixr)]
    assert len(chunks) in (3, 4)
    assert all(len(chunk) <= 2000 and SENTENCE_END.search(chunk) for chunk in chunks)
    assert " ".join(sorted(chunks, key=text.index)) == text
    reported = sum(clip.duration for clip in running.unmixr._audio.values())
    assert (await ffprobe(audio))["duration"] == pytest.approx(reported, abs=0.15)

    over = await final(
        await running.discord.slash(
            running.guild, running.text, running.member, "say", {"text": text + "!"}, client_checks=False
        )
    )
    assert_refused_at_once(over, "6,000", "6,001")
    assert len(running.tts_requests()) == len(chunks)


async def test_each_chunk_carries_only_its_own_pronunciations(running: World) -> None:
    added = await final(
        await running.slash(
            "pronounce", {"word": "lighthouse", "spoken": "light house"}, subcommand="add", member=running.admin
        )
    )
    assert added.ephemeral
    text = prose(2500) + " Then the zeppelin passed overhead."
    await final(
        await running.slash(
            "pronounce", {"word": "Zeppelin", "spoken": "zep lin"}, subcommand="add", member=running.admin
        )
    )

    interaction = await final(await running.say(text=text))

    assert_audio_reply(interaction)
    payloads = sorted(tts_payloads(running.unmixr), key=lambda payload: text.index(payload["text"]))
    assert len(payloads) == 2
    first, last = payloads
    assert first["pronunciation_dict"] == {"lighthouse": "light house"}
    assert "zeppelin" in last["text"]
    assert last.get("pronunciation_dict", {}).get("Zeppelin") == "zep lin"
    assert "Zeppelin" not in first.get("pronunciation_dict", {})


async def test_long_wav_is_one_playable_wav(running: World) -> None:
    text = prose(2600)
    interaction = await final(await running.say(text=text, format="wav"))

    _, audio = assert_audio_reply(interaction, extension="wav")
    probe = await ffprobe(audio)
    assert probe["format"] == "wav"
    payloads = tts_payloads(running.unmixr)
    assert len(payloads) == 2
    assert all(payload["output_type"] == "wav" for payload in payloads)
    reported = sum(clip.duration for clip in running.unmixr._audio.values())
    assert probe["duration"] == pytest.approx(reported, abs=0.15)


async def test_running_out_of_credits_midway_wastes_no_credits(running: World) -> None:
    text = prose(5000)
    # Enough for the last chunk only, which takes a while: the first chunk fails while it is still running.
    running.unmixr.prebuilt_chars = 1500
    running.unmixr.set_latency(0.2, endpoint="/short-tts/")  # every chunk's request is out before any answer
    running.unmixr.tts_latency_per_char = 0.0005
    failed = await final(await running.say(text=text))
    assert_error_followup(failed, "credits")
    chunks = [payload["text"] for payload in tts_payloads(running.unmixr)]
    assert len(chunks) == 3
    charged_first = 1500 - running.unmixr.prebuilt_chars
    assert charged_first > 0  # the test's premise: one chunk was charged though the request failed
    await asyncio.sleep(0.5)  # whatever the bot still had running upstream
    running.unmixr.tts_latency_per_char = 0.0
    running.unmixr.set_latency(0, endpoint="/short-tts/")

    running.unmixr.prebuilt_chars = 1_000_000  # an admin tops the account up and the member tries again
    retried = await final(await running.say(text=text))
    assert_audio_reply(retried)
    charged_second = 1_000_000 - running.unmixr.prebuilt_chars
    # Every chunk was paid for once: the one charged the first time came from the cache the second time.
    assert charged_first + charged_second == sum(len(chunk) for chunk in chunks)
    assert "credits" in retried.content()
    usage = await usage_today(running)
    assert usage.credits == charged_first + charged_second  # the ledger saw every charged chunk
