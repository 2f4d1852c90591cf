"""The audio cache's shared tier end to end: the real bot on a real PostgreSQL, machines that come and go.

"Another machine" is the bot started again with the same database and an empty audio-cache folder, as a process
on another machine would be (tests/test_processes.py runs two at once).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from bot.audio import opus
from tests.cogs.test_voice import wait_clips
from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.discord_voice import FakeVoiceServer

MEGABYTE = 1024 * 1024


async def start_machine(world: World, database_url: str, name: str, **overrides: Any) -> Any:
    """Start the bot as the process of machine `name`: its own audio-cache folder, the shared database."""
    await world.stop_bot()
    folder: Path = world.tmp_path / name / "audio-cache"
    return await world.start_bot(database_url=SecretStr(database_url), audio_cache_dir=folder, **overrides)


async def rows(database_url: str) -> dict[str, dict[str, Any]]:
    """The shared tier's rows by key, with whether each row's audio still matches its sha256."""
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetch(
            "SELECT key, size, output_type, used_at, sha256 = sha256(audio) AS intact FROM audio_cache"
        )
    finally:
        await connection.close()
    return {row["key"]: dict(row) for row in found}


async def recorded_total(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT bytes FROM audio_cache_size"))
    finally:
        await connection.close()


async def said(world: World, text: str, *, flush: bool = True, **options: Any) -> FakeInteraction:
    """A /say answered with audio; with `flush`, once its clip is written to every tier."""
    interaction = await world.say(text=text, **options)
    await interaction.wait_final(timeout=20)
    assert interaction.files(), interaction.content()
    if flush:
        await world.bot.audio_cache.flush()
    return interaction


def metric(world: World, sample: str) -> float:
    """A sample's value in what the bot's /metrics shows."""
    for line in world.bot.metrics.exposition().decode().splitlines():
        if line.startswith(f"{sample} "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {sample}")


async def test_a_clip_is_shared_by_machines_and_the_cap_evicts_the_least_recently_used(
    world: World, postgres_database: str
) -> None:
    # About 400 KB of wav a clip: two fit in the tier's 1 MB, three do not.
    world.unmixr.chars_per_second = 4
    texts = {name: f"Clip {name} of the eviction test, eight s." for name in ("A", "B", "C")}
    await start_machine(world, postgres_database, "one", audio_cache_db_max_mb=1)
    keys: dict[str, str] = {}
    answers: dict[str, bytes] = {}
    for name in ("A", "B"):
        before = set(await rows(postgres_database))
        answers[name] = (await said(world, texts[name], format="wav")).files()[0][1]
        [keys[name]] = set(await rows(postgres_database)) - before
    stored = await rows(postgres_database)
    assert stored[keys["A"]]["size"] + stored[keys["B"]]["size"] <= MEGABYTE
    assert stored[keys["A"]]["size"] + 2 * stored[keys["B"]]["size"] > MEGABYTE
    assert metric(world, 'unmixr_bot_audio_cache_bytes{tier="postgresql"}') == await recorded_total(postgres_database)

    # A is said again here (a hit in this machine's folder, its mark kept in memory), then C is new: the mark is
    # written before C is, so B is the least recently used.
    repeat = await said(world, texts["A"], format="wav", flush=False)
    assert "from cache" in repeat.content()
    before = set(await rows(postgres_database))
    await said(world, texts["C"], format="wav")
    [keys["C"]] = set(await rows(postgres_database)) - before
    stored = await rows(postgres_database)
    assert set(stored) == {keys["A"], keys["C"]}
    total = sum(row["size"] for row in stored.values())
    assert total == await recorded_total(postgres_database) <= MEGABYTE
    assert len(world.tts_requests()) == 3

    # Another machine: A is in the shared tier (no call to Unmixr, the same audio); B was evicted, so it is paid again.
    await start_machine(world, postgres_database, "two", audio_cache_db_max_mb=1)
    again = await said(world, texts["A"], format="wav")
    assert "from cache" in again.content() and again.files()[0][1] == answers["A"]
    assert len(world.tts_requests()) == 3
    paid = await said(world, texts["B"], format="wav")
    assert "from cache" not in paid.content() and len(world.tts_requests()) == 4


async def test_a_damaged_row_is_dropped_and_the_audio_fetched_again(
    world: World, postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = "A sentence whose stored audio gets damaged."
    await start_machine(world, postgres_database, "one")
    first = (await said(world, text)).files()[0][1]
    [key] = await rows(postgres_database)
    # One byte changed behind the bot's back, the length and the recorded sha256 unchanged.
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute(
            "UPDATE audio_cache SET audio = set_byte(audio, 200, (get_byte(audio, 200) + 1) % 256) WHERE key = $1",
            key,
        )
    finally:
        await connection.close()
    assert not (await rows(postgres_database))[key]["intact"]

    await start_machine(world, postgres_database, "two")
    with caplog.at_level(logging.WARNING, logger="bot.audio.shared_tier"):
        again = await said(world, text)
    # Never the damaged audio: Unmixr was asked again, and the member got what it says.
    assert "from cache" not in again.content() and len(world.tts_requests()) == 2
    assert again.files()[0][1] == first
    assert "Dropping a damaged clip from the shared audio cache" in caplog.text
    # Stored afresh, intact, and counted once.
    stored = await rows(postgres_database)
    assert list(stored) == [key] and stored[key]["intact"]
    assert await recorded_total(postgres_database) == stored[key]["size"] == len(first)


async def test_audio_in_the_shared_tier_counts_as_cached_for_the_budget(world: World, postgres_database: str) -> None:
    text = "Forty characters of text, said just once."
    await start_machine(world, postgres_database, "one")
    budget = await world.slash("settings", {"characters": 50}, subcommand="budget", member=world.admin)
    await budget.wait_final()
    await said(world, text)

    # On another machine the audio is not in the folder, but the shared tier has it: free, so never refused.
    await start_machine(world, postgres_database, "two")
    again = await said(world, text)
    assert "from cache" in again.content() and len(world.tts_requests()) == 1
    refused = await world.say(text="Anything new is over the budget by now.")
    await refused.wait_final()
    assert refused.ephemeral and "budget" in refused.content()


async def test_voice_encodings_are_shared_too(
    world: World, postgres_database: str, voice_server: FakeVoiceServer
) -> None:
    text = "Played on one machine, then on another."
    await start_machine(world, postgres_database, "one")
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.say(text=text, play=True)).wait_final()
    await wait_clips(await voice_server.wait_for_session(world.guild.id), 1)
    await world.bot.audio_cache.flush()
    assert {row["output_type"] for row in (await rows(postgres_database)).values()} == {"mp3", opus.OUTPUT_TYPE}

    first_session = voice_server.sessions[world.guild.id]
    await start_machine(world, postgres_database, "two")
    started = opus.encodings_started()
    await (await world.say(text=text, play=True)).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    assert session is not first_session
    await wait_clips(session, 1)
    # Neither Unmixr nor an encoder: the chunk and its Opus encoding came from the shared tier.
    assert len(world.tts_requests()) == 1 and opus.encodings_started() == started
