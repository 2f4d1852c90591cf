"""End-to-end tests of the bot's core: extension loading, command sync, graceful shutdown, the intent fallback."""

from __future__ import annotations

import asyncio
import logging
import pkgutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord.ext import commands

import cogs
from bot.cli import MESSAGE_CONTENT_HELP
from bot.storage import StorageClosedError
from bot.tree import SHUTTING_DOWN
from tests.conftest import ADMIN_PERMISSIONS, DISCORD_TOKEN, MEMBER_PERMISSIONS, World, make_settings
from tests.fakes.discord_server import ChannelOption, FakeDiscord, Response
from tests.fakes.unmixr import FakeUnmixr

EXPECTED_EXTENSIONS = {
    "cogs.balance",
    "cogs.clone",
    "cogs.preferences",
    "cogs.pronounce",
    "cogs.readouts",
    "cogs.say",
    "cogs.settings",
    "cogs.voice",
    "cogs.voice_events",
    "cogs.voices",
}


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def test_every_extension_in_cogs_is_loaded_and_only_the_dev_server_is_synced(running: World) -> None:
    found = {f"cogs.{m.name}" for m in pkgutil.iter_modules(cogs.__path__) if not m.name.startswith("_")}
    assert EXPECTED_EXTENSIONS <= found
    assert set(running.bot.extensions) == found
    assert running.bot.failed_extensions == {}
    assert isinstance(running.bot, commands.AutoShardedBot)
    names = {command["name"] for command in running.discord.commands[running.guild.id]}
    assert {"say", "voices", "clone", "balance", "settings", "preferences", "pronounce", "Read aloud"} <= names
    # Global sync is explicit (`python -m bot sync`), never at start.
    assert running.discord.commands["global"] == []
    assert not [
        r
        for r in running.discord.requests
        if r.method == "PUT" and r.path.endswith("/commands") and "/guilds/" not in r.path
    ]


async def test_an_extension_that_fails_to_load_is_logged_and_the_others_load(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    extra = tmp_path / "extra_cogs"
    extra.mkdir()
    (extra / "zz_core_test_broken.py").write_text('raise RuntimeError("broken on purpose")\n')
    (extra / "zz_core_test_no_setup.py").write_text('"""An extension without a setup function."""\n')
    (extra / "_zz_core_test_private.py").write_text('raise RuntimeError("private modules are not extensions")\n')
    monkeypatch.setattr(cogs, "__path__", [*cogs.__path__, str(extra)])
    for name in ("cogs.zz_core_test_broken", "cogs.zz_core_test_no_setup", "cogs._zz_core_test_private"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    bot = await world.start_bot()
    assert set(bot.failed_extensions) == {"cogs.zz_core_test_broken", "cogs.zz_core_test_no_setup"}
    assert EXPECTED_EXTENSIONS <= set(bot.extensions)
    failures = [
        r for r in caplog.records if r.levelno == logging.ERROR and "could not load extension" in r.getMessage()
    ]
    assert {r.getMessage().rsplit(" ", 1)[-1] for r in failures} == set(bot.failed_extensions)
    broken = next(r for r in failures if r.getMessage().endswith("zz_core_test_broken"))
    assert broken.exc_info is not None and "broken on purpose" in str(broken.exc_info[1])

    # The rest of the bot works.
    shown = await world.slash("settings", {}, subcommand="show", member=world.admin)
    await shown.wait_for(is_answer)
    assert shown.embeds()
    said = await world.say(text="Still talking.")
    await said.wait_for(is_answer)
    assert said.files()


async def test_shutdown_lets_an_answer_in_flight_finish_then_closes_the_database(running: World) -> None:
    bot = running.bot
    running.unmixr.set_latency(1.0, endpoint="/short-tts/")
    in_flight = await running.say(text="Finish me before you go.")
    await running.discord.wait_until(lambda: len(running.tts_requests()) == 1, what="the /short-tts/ request")

    closing = asyncio.create_task(bot.close())
    await running.discord.wait_until(lambda: bot.shutting_down, what="the shutdown")
    # New work is turned away politely while the last answers are finished.
    late = await running.slash("settings", {}, subcommand="show", member=running.admin)
    await late.wait_for(is_answer)
    assert late.content() == str(SHUTTING_DOWN)
    assert late.ephemeral

    await in_flight.wait_for(is_answer, timeout=10)
    assert in_flight.files(), in_flight.responses
    assert not in_flight.ephemeral
    await asyncio.wait_for(closing, 15)
    assert bot.is_closed()
    with pytest.raises(StorageClosedError):
        await bot.storage.list_cloned_voices(running.guild.id)
    assert bot.session.closed


@pytest.fixture
async def no_intent_world(tmp_path: Path, unmixr: FakeUnmixr) -> AsyncIterator[World]:
    """A world whose Discord application lacks the Message Content intent."""
    fake = FakeDiscord(token=DISCORD_TOKEN, message_content_allowed=False)
    await fake.start()
    guild = fake.add_guild(name="No Intent Server")
    text = guild.add_text_channel("general")
    readout = guild.add_text_channel("readouts")
    voice = guild.add_voice_channel("Lounge")
    admin = guild.add_member("Ada Admin", permissions=ADMIN_PERMISSIONS)
    member = guild.add_member("Mel Member", permissions=MEMBER_PERMISSIONS)
    other = guild.add_member("Otto Other", permissions=MEMBER_PERMISSIONS)
    settings = make_settings(tmp_path, unmixr, fake, dev_guild_id=guild.id)
    world = World(fake, unmixr, guild, text, readout, voice, admin, member, other, settings, tmp_path)
    try:
        yield world
    finally:
        await world.stop_bot()
        await fake.close()


async def test_without_the_message_content_intent_the_bot_says_how_to_enable_it_and_runs_on(
    no_intent_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = no_intent_world
    bot = await world.start_bot()
    assert bot.readouts_enabled is False
    assert [code for _shard, code in world.discord.close_codes] == [4014]
    assert any(r.getMessage() == MESSAGE_CONTENT_HELP for r in caplog.records if r.levelno >= logging.WARNING)
    assert "discord.com/developers/applications" in MESSAGE_CONTENT_HELP
    assert "Message Content Intent" in MESSAGE_CONTENT_HELP
    # The first attempt's resources were released before the bot ran on without the intent.
    first = world.bots[0]
    assert first is not bot and first.is_closed()
    with pytest.raises(StorageClosedError):
        await first.storage.list_cloned_voices(world.guild.id)

    shown = await world.slash("settings", {}, subcommand="show", member=world.admin)
    await shown.wait_for(is_answer)
    assert "Readouts are off" in shown.embeds()[0]["footer"]["text"]
    # An admin choosing a readout channel is told why nothing will be read, and what to do.
    chosen = await world.slash(
        "settings",
        {"channel": ChannelOption(int(world.readout["id"]))},
        subcommand="readout-channel",
        member=world.admin,
    )
    await chosen.wait_for(is_answer)
    assert "Readouts are off" in chosen.content() and "Message Content" in chosen.content()
    said = await world.say(text="Commands still work.")
    await said.wait_for(is_answer)
    assert said.files()
