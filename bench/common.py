"""Shared pieces of the benchmarks: the stand-ins with the bot in-process, statistics, and the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeInteraction, FakeMember, Response
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.harness import BotRunner
from tests.fakes.unmixr import FakeUnmixr, RecordedRequest

DISCORD_TOKEN = "bench-discord-token-0123456789"
UNMIXR_KEY = "bench-unmixr-key-abcdef123456"
MANAGE_GUILD = 1 << 5
# What @everyone gets in the stand-in: view, send, connect, speak, use commands...
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 20) | (1 << 21) | (1 << 31)
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD
# run_all finds each benchmark's figures on the line starting with this.
RESULT_PREFIX = "BENCH-RESULT "
TTS = "/short-tts/"
DOWNLOAD = "/audio/"
POLL_SECONDS = 0.005
REPOSITORY = Path(__file__).resolve().parent.parent


def configure_logging() -> None:
    """Show only warnings: the benchmarks measure the bot, not its debug logging."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("bot", "cogs", "discord", "tests"):
        logging.getLogger(name).setLevel(logging.WARNING)


# ----------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def describe_ms(values: Sequence[float]) -> str:
    """p50, p99 and max of durations given in seconds, shown in milliseconds."""
    if not values:
        return "no samples"
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms · p99 {percentile(values, 99) * 1000:.1f} ms · "
        f"max {max(values) * 1000:.1f} ms (n={len(values)})"
    )


def busy_seconds(requests: Iterable[RecordedRequest]) -> float:
    """How long at least one of the requests was being served (the union of their intervals)."""
    intervals = sorted((r.started_at, r.finished_at) for r in requests if r.finished_at is not None)
    total = 0.0
    current_start: float | None = None
    current_end = 0.0
    for start, end in intervals:
        if current_start is None or start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None:
        total += current_end - current_start
    return total


# ----------------------------------------------------------------------------- the report


@dataclass
class Figure:
    """One measured figure, with its target when it has one (met None: for information only)."""

    name: str
    value: float
    unit: str
    goal: str = ""
    met: bool | None = None
    # Shown in run_all's summary: every figure with a target, and the few others marked so.
    summary: bool = False

    def shown(self) -> str:
        """The value with its unit."""
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if isinstance(self.value, float) and not self.value.is_integer():
            return f"{self.value:.1f} {self.unit}".strip()
        return f"{self.value:,.0f} {self.unit}".strip()


@dataclass
class Report:
    """A benchmark's figures, printed as a table and as one machine-readable line for run_all."""

    bench: str
    target: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, name: str, value: float, unit: str, goal: str = "", met: bool | None = None, *, summary: bool = False
    ) -> Figure:
        """Record a figure; one without a target can still be asked into the summary."""
        figure = Figure(name, value, unit, goal, met, summary or met is not None)
        self.figures.append(figure)
        return figure

    def note(self, text: str) -> None:
        """Record a remark printed under the table."""
        self.notes.append(text)

    def print(self) -> None:
        """Print the table, the notes and the result line."""
        print()
        print(f"== {self.bench}: {self.target}")
        width = max([len(f.name) for f in self.figures] + [6])
        print(f"  {'figure':<{width}}  {'value':>12}  {'target':<12}  met")
        for figure in self.figures:
            met = "" if figure.met is None else ("yes" if figure.met else "NO")
            print(f"  {figure.name:<{width}}  {figure.shown():>12}  {figure.goal:<12}  {met}")
        for text in self.notes:
            print(f"  note: {text}")
        payload = {"bench": self.bench, "target": self.target, "figures": [asdict(f) for f in self.figures]}
        print(RESULT_PREFIX + json.dumps(payload), flush=True)


# ----------------------------------------------------------------------------- the stand-ins and the bot


def is_answer(response: Response) -> bool:
    """Whether an accepted response carries the interaction's answer (not just an acknowledgement)."""
    if response.status >= 300:
        return False
    if response.kind in ("followup", "edit_original", "edit_followup"):
        return True
    return response.kind == "callback" and response.type in (4, 7, 8, 9)


def first_answer(interaction: FakeInteraction) -> Response | None:
    """The interaction's first accepted answer, if it has one yet."""
    return next((r for r in interaction.responses if is_answer(r)), None)


async def answered(interaction: FakeInteraction, timeout: float = 60.0) -> Response:
    """Wait for the interaction's first answer and return it (its `at` is when it reached the stand-in)."""
    await wait_all([interaction], first_answer, timeout)
    response = first_answer(interaction)
    assert response is not None
    return response


async def wait_all(
    interactions: Sequence[FakeInteraction], found: Callable[[FakeInteraction], object], timeout: float = 60.0
) -> int:
    """Poll until `found(i)` is truthy for every interaction; returns how many never got there.

    One cheap polling loop instead of a waiter per interaction: hundreds of waiters woken on every change
    of the stand-in would cost more CPU than the bot being measured.
    """
    deadline = time.monotonic() + timeout
    pending = list(interactions)
    while pending:
        pending = [i for i in pending if not found(i)]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    return len(pending)


@dataclass
class Stack:
    """Both stand-ins (and the voice one if asked), a server with channels and members, and the bot."""

    discord: FakeDiscord
    unmixr: FakeUnmixr
    guild: FakeGuild
    text: dict[str, Any]
    readout: dict[str, Any]
    voice_channel: dict[str, Any]
    admin: FakeMember
    members: list[FakeMember]
    settings: Settings
    directory: Path
    voice: FakeVoiceServer | None = None
    runner: BotRunner = field(init=False)

    def __post_init__(self) -> None:
        self.runner = BotRunner(self.discord, self.guild.id)

    @property
    def bot(self) -> Any:
        """The running bot (None when stopped)."""
        return self.runner.bot

    @property
    def member(self) -> FakeMember:
        """The first ordinary member."""
        return self.members[0]

    async def start_bot(self, **overrides: Any) -> Any:
        """Start the real bot in this process and wait until it is connected and its catalogue is loaded."""
        if overrides:
            self.settings = self.settings.model_copy(update=overrides)
        return await self.runner.start(self.settings)

    async def stop_bot(self) -> None:
        """Close the bot the way a SIGTERM does and wait for it."""
        await self.runner.stop()

    async def say(self, member: FakeMember | None = None, **options: Any) -> FakeInteraction:
        """Run /say in the text channel."""
        return await self.discord.slash(self.guild, self.text, member or self.member, "say", options)

    async def slash(
        self, name: str, options: dict[str, Any] | None = None, *, member: FakeMember | None = None, **kwargs: Any
    ) -> FakeInteraction:
        """Run any slash command in the text channel."""
        return await self.discord.slash(self.guild, self.text, member or self.member, name, options or {}, **kwargs)

    def requests_since(self, index: int, endpoint: str | None = None) -> list[RecordedRequest]:
        """The Unmixr stand-in's requests from `index` on, of one endpoint if given."""
        found = self.unmixr.requests[index:]
        return [r for r in found if endpoint is None or r.endpoint == endpoint]


@contextlib.asynccontextmanager
async def stack(
    *,
    members: int = 3,
    voice: bool = False,
    start: bool = True,
    prepare: Callable[[FakeDiscord, FakeUnmixr], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """Start the stand-ins and (unless `start` is false) the bot; everything is closed and removed after.

    `prepare` gets the stand-ins before they start serving (to wrap a handler, say); `overrides` are settings.
    """
    configure_logging()
    directory = Path(tempfile.mkdtemp(prefix="unmixr-bench-"))
    unmixr = FakeUnmixr(api_key=UNMIXR_KEY, prebuilt_chars=100_000_000)
    # The benchmarks time the bot from the moment it receives an interaction (`created_at`): no delivery delay.
    discord_fake = FakeDiscord(token=DISCORD_TOKEN, delivery_delay=0.0)
    voice_server: FakeVoiceServer | None = None
    state: Stack | None = None
    try:
        if prepare is not None:
            prepare(discord_fake, unmixr)
        await unmixr.start()
        await discord_fake.start()
        if voice:
            voice_server = FakeVoiceServer()
            await voice_server.start()
            voice_server.attach(discord_fake)
            voice_server.trust_in_process()
        guild = discord_fake.add_guild(name="Bench Server")
        text = guild.add_text_channel("general")
        readout = guild.add_text_channel("readouts")
        voice_channel = guild.add_voice_channel("Lounge")
        admin = guild.add_member("Ada Admin", permissions=ADMIN_PERMISSIONS)
        people = [guild.add_member(f"Member {n}", permissions=MEMBER_PERMISSIONS) for n in range(members)]
        values: dict[str, Any] = {
            "discord_token": DISCORD_TOKEN,
            "unmixr_api_key": UNMIXR_KEY,
            "unmixr_base_url": unmixr.base_url,
            "database_path": directory / "data" / "bot.sqlite3",
            "audio_cache_dir": directory / "data" / "audio-cache",
            "discord_api_base": discord_fake.api_base,
            "discord_gateway_url": discord_fake.gateway_url,
            "log_level": "WARNING",
            "dev_guild_id": guild.id,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        state = Stack(
            discord_fake, unmixr, guild, text, readout, voice_channel, admin, people, settings, directory, voice_server
        )
        if start:
            await state.start_bot()
        yield state
    finally:
        if state is not None:
            await state.stop_bot()
        if voice_server is not None:
            await voice_server.close()
        await discord_fake.close()
        await unmixr.close()
        await asyncio.to_thread(shutil.rmtree, directory, True)


def bot_environment(
    directory: Path,
    discord_fake: FakeDiscord,
    unmixr: FakeUnmixr,
    *,
    code: Path = REPOSITORY,
    log_level: str = "WARNING",
    **settings: str,
) -> dict[str, str]:
    """The whole configuration of a `python -m bot` run from `code` against the stand-ins, its data in `directory`.

    `settings` are more environment variables (`DEV_GUILD_ID`, `SSL_CERT_FILE`...).
    """
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(directory)),
        "PYTHONPATH": str(code),
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "UNMIXR_API_KEY": UNMIXR_KEY,
        "UNMIXR_BASE_URL": unmixr.base_url,
        "DISCORD_API_BASE": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DATABASE_PATH": str(directory / "data" / "bot.sqlite3"),
        "AUDIO_CACHE_DIR": str(directory / "data" / "audio-cache"),
        "LOG_LEVEL": log_level,
        **settings,
    }


async def launch_bot(
    directory: Path, environment: dict[str, str], *, module: str = "bot"
) -> asyncio.subprocess.Process:
    """Start `python -m bot` (or another module) in `directory` (which has no .env: `environment` is its whole
    configuration).

    Its output goes to `directory / "bot.log"`.
    """
    with (directory / "bot.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, cwd=directory, env=environment, stdout=log, stderr=log
        )


async def start_bot_process(
    directory: Path,
    discord_fake: FakeDiscord,
    unmixr: FakeUnmixr,
    dev_guild: FakeGuild,
    *,
    code: Path = REPOSITORY,
    voice: FakeVoiceServer | None = None,
) -> asyncio.subprocess.Process:
    """Start the bot in its own process; returns once it is connected and has synced its commands."""
    extra = {"DEV_GUILD_ID": str(dev_guild.id)}
    if voice is not None:
        # The voice stand-in's self-signed certificate is the only one the bot needs to trust.
        extra["SSL_CERT_FILE"] = str(voice.cert_path)
    process = await launch_bot(directory, bot_environment(directory, discord_fake, unmixr, code=code, **extra))
    await discord_fake.wait_until_connected(timeout=60)
    await discord_fake.wait_until(lambda: bool(discord_fake.commands.get(dev_guild.id)), timeout=30, what="sync")
    # The bot synced its commands to one server; the others see the same commands as global ones.
    discord_fake.commands["global"] = list(discord_fake.commands[dev_guild.id])
    return process


async def stop_bot_process(process: asyncio.subprocess.Process, directory: Path, *, timeout: float = 5.0) -> None:
    """SIGTERM the bot and wait for it (killing it after `timeout`); show its log if it failed."""
    killed = False
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            killed = True
            await process.wait()
    if process.returncode not in (0, -15) and not killed:
        log = (directory / "bot.log").read_text(errors="replace")
        print(f"the bot exited with {process.returncode}; its log:\n{log[-3000:]}")
