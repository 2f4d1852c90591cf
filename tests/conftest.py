"""The end-to-end harness: the real bot, in this process, against the local Discord and Unmixr stand-ins."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
from pydantic import SecretStr

from bot.outages import outages
from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeInteraction, FakeMember
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.harness import BotRunner
from tests.fakes.unmixr import FakeUnmixr

MANAGE_GUILD = 1 << 5
MOVE_MEMBERS = 1 << 24
# What @everyone gets in the stand-in: view, send, connect, speak, use commands...
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 20) | (1 << 21) | (1 << 31)
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD

DISCORD_TOKEN = "test-discord-token-0123456789"
UNMIXR_KEY = "test-unmixr-key-abcdef123456"

# PostgreSQL for the tests that need it (a throwaway cluster, a fresh database per test).
pytest_plugins = ["tests.postgres_fixtures"]


@pytest.fixture(autouse=True)
def _quiet_minute() -> None:
    # Outage reports are rate-limited per process: each test starts a fresh minute.
    outages.reset()


@pytest.fixture
async def unmixr() -> AsyncIterator[FakeUnmixr]:
    fake = FakeUnmixr(api_key=UNMIXR_KEY)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(token=DISCORD_TOKEN)
    await fake.start()
    yield fake
    await fake.close()
    # rate-limits.mdx, "Invalid Request Limit": every 401, 403 and 429 counts toward a ban of the bot's address;
    # the bot avoids them all (a test that provokes one on purpose empties the list once it has checked it).
    assert fake.wasted_requests() == [], f"the bot made requests Discord counts as invalid: {fake.wasted_requests()}"


def make_settings(tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord, **overrides: Any) -> Settings:
    """Settings pointing the bot at the stand-ins, with its files under `tmp_path`."""
    values: dict[str, Any] = {
        "discord_token": DISCORD_TOKEN,
        "unmixr_api_key": unmixr.api_key,
        "unmixr_base_url": unmixr.base_url,
        "database_path": tmp_path / "data" / "bot.sqlite3",
        "audio_cache_dir": tmp_path / "data" / "audio-cache",
        "discord_api_base": discord_fake.api_base,
        "discord_gateway_url": discord_fake.gateway_url,
        "log_level": "DEBUG",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class World:
    """A server with channels and members, the stand-ins, and the running bot."""

    discord: FakeDiscord
    unmixr: FakeUnmixr
    guild: FakeGuild
    text: dict[str, Any]
    readout: dict[str, Any]
    voice: dict[str, Any]
    admin: FakeMember
    member: FakeMember
    other: FakeMember
    settings: Settings
    tmp_path: Path
    runner: BotRunner = field(init=False)

    def __post_init__(self) -> None:
        self.runner = BotRunner(self.discord, self.guild.id)

    @property
    def bot(self) -> Any:
        """The running bot (None when stopped)."""
        return self.runner.bot

    @property
    def bots(self) -> list[Any]:
        """Every bot the last start made."""
        return self.runner.bots

    async def start_bot(self, *, wait_for_catalogue: bool = True, **overrides: Any) -> Any:
        """Start the real bot and wait until it is connected and its catalogue is loaded."""
        if overrides:
            self.settings = self.settings.model_copy(update=overrides)
        return await self.runner.start(self.settings, timeout=15, wait_for_catalogue=wait_for_catalogue)

    async def stop_bot(self) -> None:
        """Close the bot the way a SIGTERM does, and wait for it to finish."""
        await self.runner.stop(timeout=15)

    async def say(self, member: FakeMember | None = None, **options: Any) -> FakeInteraction:
        """Run /say in the text channel."""
        return await self.discord.slash(self.guild, self.text, member or self.member, "say", options)

    async def slash(
        self, name: str, options: dict[str, Any] | None = None, *, member: FakeMember | None = None, **kwargs: Any
    ) -> FakeInteraction:
        """Run any slash command in the text channel."""
        return await self.discord.slash(self.guild, self.text, member or self.member, name, options or {}, **kwargs)

    def tts_requests(self) -> list[Any]:
        """The /short-tts/ requests Unmixr received."""
        return [r for r in self.unmixr.requests if r.endpoint == "/short-tts/"]


@pytest.fixture
async def world(tmp_path: Path, unmixr: FakeUnmixr, discord_fake: FakeDiscord) -> AsyncIterator[World]:
    guild = discord_fake.add_guild(name="Test Server")
    text = guild.add_text_channel("general")
    readout = guild.add_text_channel("readouts")
    voice = guild.add_voice_channel("Lounge")
    admin = guild.add_member("Ada Admin", permissions=ADMIN_PERMISSIONS)
    member = guild.add_member("Mel Member", permissions=MEMBER_PERMISSIONS)
    other = guild.add_member("Otto Other", permissions=MEMBER_PERMISSIONS)
    settings = make_settings(tmp_path, unmixr, discord_fake, dev_guild_id=guild.id)
    state = World(discord_fake, unmixr, guild, text, readout, voice, admin, member, other, settings, tmp_path)
    yield state
    await state.stop_bot()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings that put the bot's database on each backend in turn: the SQLite file, then PostgreSQL.

    For the tests of what lives in the database across requests (the usage ledger, clone slots): pass them to
    `world.start_bot(**backend)`.
    """
    if request.param == "postgresql":
        return {"database_url": SecretStr(request.getfixturevalue("postgres_database"))}
    return {}


@pytest.fixture
async def running(world: World) -> World:
    """The world with the bot started."""
    await world.start_bot()
    return world


@pytest.fixture
async def voice_server(world: World) -> AsyncIterator[FakeVoiceServer]:
    """The voice stand-in, attached to the Discord stand-in, its certificate trusted by this process."""
    server = FakeVoiceServer()
    await server.start()
    server.attach(world.discord)
    server.trust_in_process()
    yield server
    # The bot leaves first, as it would on Discord; closing the server under it would leave its poller failing.
    await world.stop_bot()
    await server.close()


@pytest.fixture(autouse=True)
def _quiet_discord_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="cogs")
    logging.getLogger("discord").setLevel(logging.INFO)


def ephemeral(interaction: FakeInteraction) -> bool:
    """Whether the interaction's final answer is visible to its invoker only."""
    return interaction.ephemeral


__all__ = ["ADMIN_PERMISSIONS", "MANAGE_GUILD", "MEMBER_PERMISSIONS", "MOVE_MEMBERS", "World", "discord"]
