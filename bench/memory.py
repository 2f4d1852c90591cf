"""Target: with 10,000 guilds connected, the bot's resident memory stays under 200 MB.

The bot runs as its own process (`python -m bot`, configured by environment variables only) against
the Discord and Unmixr stand-ins running in this process, so only the bot's memory is measured. The
Discord stand-in holds GUILDS guilds (each with a text channel, a voice channel, @everyone, the bot's
role, the bot and one member) over SHARDS shards, one per 2,500 guilds as Discord requires;
discord.py waits 5 s between shard IDENTIFYs. Once every shard got READY and its GUILD_CREATEs and the
bot's CPU time has stopped growing, VmRSS is read from /proc/<pid>/status. The same is done with one
guild and one shard for comparison, and, for information, with larger guilds (20 channels, 12 roles)
unless --small is given. Run: python -m bench.memory [guilds] [--small]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    DISCORD_TOKEN,
    MEMBER_PERMISSIONS,
    UNMIXR_KEY,
    Report,
    bot_environment,
    configure_logging,
    launch_bot,
)
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr import FakeUnmixr

GUILDS = 10_000
GUILDS_PER_SHARD = 2_500
GOAL_MB = 200.0
# The extra, informative run: guilds closer to a real community server.
LARGER_CHANNELS = 19
LARGER_ROLES = 10
# The bot is idle once its CPU time grows by at most this many clock ticks a second, this many seconds running.
IDLE_TICKS = 2
IDLE_SECONDS = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM...) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_ticks(pid: int) -> int:
    """The process's user + system CPU time in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def wait_idle(pid: int, timeout: float = 60.0) -> float:
    """Wait until the process has used (almost) no CPU for IDLE_SECONDS; returns how long that took."""
    started = time.monotonic()
    quiet = 0
    last = cpu_ticks(pid)
    while time.monotonic() - started < timeout and quiet < IDLE_SECONDS:
        await asyncio.sleep(1.0)
        now = cpu_ticks(pid)
        quiet = quiet + 1 if now - last <= IDLE_TICKS else 0
        last = now
    return time.monotonic() - started


def build_guilds(discord_fake: FakeDiscord, count: int, channels: int = 1, roles: int = 0) -> set[int]:
    """Add `count` guilds (text channels, roles, a voice channel, a member); returns the witness guilds' ids.

    The last guild of each shard (the last GUILD_CREATE it gets) shows the bot in its voice channel, as after
    a crash. The bot leaves such a channel when the guild becomes available (an op 4 to the gateway), so
    that op 4 proves the bot has processed every GUILD_CREATE of the shard.
    """
    last: dict[int, tuple[int, int]] = {}
    for number in range(count):
        guild = discord_fake.add_guild(name=f"Server {number}")
        for channel in range(channels):
            guild.add_text_channel(f"channel-{channel}")
        for role in range(roles):
            guild.add_role(f"Role {role}")
        voice = guild.add_voice_channel("Lounge")
        guild.add_member(f"Member {number}", permissions=MEMBER_PERMISSIONS)
        last[guild.shard_id] = (guild.id, int(voice["id"]))
    bot_id = int(discord_fake.bot_user["id"])
    for guild_id, channel_id in last.values():
        discord_fake.guilds[guild_id].voice_states[bot_id] = {"channel_id": str(channel_id), "session_id": "stale"}
    return {guild_id for guild_id, _ in last.values()}


def witnesses_seen(discord_fake: FakeDiscord, witnesses: set[int]) -> int:
    """How many witness guilds the bot has left voice in (so processed)."""
    left = {
        int(entry["d"]["guild_id"])
        for entry in discord_fake.gateway_log
        if entry["op"] == 4 and isinstance(entry["d"], dict) and entry["d"].get("channel_id") is None
    }
    return len(witnesses & left)


async def measure(guilds: int, shards: int, channels: int = 1, roles: int = 0) -> dict[str, float]:
    """Run the bot in a subprocess against `guilds` guilds on `shards` shards; return its memory figures."""
    directory = Path(tempfile.mkdtemp(prefix="unmixr-bench-memory-"))
    unmixr = FakeUnmixr(api_key=UNMIXR_KEY)
    discord_fake = FakeDiscord(token=DISCORD_TOKEN, shard_count=shards)
    process: asyncio.subprocess.Process | None = None
    log_file = directory / "bot.log"
    try:
        started = time.monotonic()
        witnesses = build_guilds(discord_fake, guilds, channels, roles)
        built = time.monotonic() - started
        await unmixr.start()
        await discord_fake.start()
        environment = bot_environment(directory, discord_fake, unmixr, log_level="INFO")
        process = await launch_bot(directory, environment)
        launched = time.monotonic()
        await discord_fake.wait_until_connected(timeout=30 + 10 * shards)
        connected = time.monotonic() - launched
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        deadline = time.monotonic() + 60
        while witnesses_seen(discord_fake, witnesses) < len(witnesses) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        settled = await wait_idle(process.pid)
        rss = status_kb(process.pid, "VmRSS")
        peak = status_kb(process.pid, "VmHWM")
        sent = sum(1 for entry in discord_fake.gateway_log if entry["op"] == 2)
        processed = witnesses_seen(discord_fake, witnesses)
        if processed != len(witnesses):
            raise RuntimeError(f"the bot processed the last GUILD_CREATE of {processed} of {shards} shards only")
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        print(
            f"{guilds:,} guild(s) of {channels + 1} channels and {roles + 2} roles on {shards} shard(s): "
            f"built in {built:.1f} s, all shards connected {connected:.1f} s after launch ({sent} IDENTIFYs), "
            f"idle {settled:.0f} s later, "
            f"last GUILD_CREATE processed on {processed} of {shards} shards; "
            f"VmRSS {rss / 1024:.1f} MB, VmHWM (peak) {peak / 1024:.1f} MB"
        )
        return {"rss_mb": rss / 1024, "peak_mb": peak / 1024, "connected_s": connected}
    finally:
        if process is not None and process.returncode is None:
            process.terminate()  # SIGTERM: the bot closes its connections and exits
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if process is not None and process.returncode not in (0, -15, None):
            print(f"the bot exited with {process.returncode}; its log:\n{log_file.read_text()[-3000:]}")
        await discord_fake.close()
        await unmixr.close()
        await asyncio.to_thread(shutil.rmtree, directory, True)


async def run(guilds: int = GUILDS, *, small: bool = False) -> Report:
    """Measure and return the report."""
    report = Report("memory", f"{guilds:,} guilds connected: resident memory under 200 MB")
    configure_logging()
    shards = max(1, -(-guilds // GUILDS_PER_SHARD))
    one = await measure(1, 1)
    many = await measure(guilds, shards)
    per_guild_kb = (many["rss_mb"] - one["rss_mb"]) * 1024 / max(1, guilds - 1)
    report.add(f"RSS with {guilds:,} guilds", many["rss_mb"], "MB", "< 200 MB", many["rss_mb"] < GOAL_MB)
    report.add(f"peak RSS with {guilds:,} guilds", many["peak_mb"], "MB")
    report.add("RSS with 1 guild", one["rss_mb"], "MB")
    report.add("RSS per extra guild", per_guild_kb, "kB")
    if not small:
        larger = await measure(guilds, shards, LARGER_CHANNELS, LARGER_ROLES)
        report.add(f"RSS, {guilds:,} larger guilds (20 channels)", larger["rss_mb"], "MB", summary=True)
    report.note(
        "Each guild: a text and a voice channel, @everyone and the bot's role, the bot and one member (without "
        "the members or presences intents Discord sends only the bot and members in voice). The bot is a "
        "separate `python -m bot` process; RSS is read once it has processed the last GUILD_CREATE of every "
        f"shard and is idle. 'Larger guilds' have {LARGER_CHANNELS + 1} channels and {LARGER_ROLES + 2} roles each."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    arguments = [argument for argument in sys.argv[1:] if argument != "--small"]
    guilds = int(arguments[0]) if arguments else GUILDS
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(guilds, small="--small" in sys.argv)).print()


if __name__ == "__main__":
    main()
