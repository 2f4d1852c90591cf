"""Target: 100 servers playing in voice at once on 2 cores, p99 gap between consecutive packets under 40 ms.

Also: every frame delivered, and interactions still acknowledged within 100 ms at p99 meanwhile.

For each N, a fresh bot and fresh stand-ins: N servers, each with a text channel, a voice channel with a
listener in it, its own voice (the Unmixr stand-in's audio is a tone per voice, so no two streams carry the
same audio), and a second member. The listeners of all N servers run `/say play: true` with their own
~9 s text at (nearly) the same moment; the bot joins each voice channel and plays. Meanwhile the second
members send a trickle of `/say` (an attachment reply), one every TRICKLE_SECONDS in turn, whose
acknowledgement latency is the "acknowledged meanwhile" figure.

The bot runs as its own `python -m bot` process, configured by environment variables only (as in
`memory.py`), so that its CPU time and its ffmpeg children's are read from /proc apart from the
stand-ins', which run in this process. The voice stand-in stamps each packet with the kernel's arrival
time and decrypts it only afterwards, so neither its own CPU nor a busy moment of this process shifts the
times. Per stream: the gaps between consecutive audio packets (from the clip's first packet to its last;
the five silence frames that end a clip are not audio), the frames expected (the clip's duration in
20 ms frames) and received, and RTP sequence numbers that never arrived.

Discord has carried only end-to-end encrypted (DAVE) audio since 2026-03-01, so each N runs twice: with DAVE, where
each listener is a member of its channel's MLS group (the voice stand-in's simulated listener, its own davey
session) that decrypts every frame as it arrives and "decrypted" counts the audio frames it could read, then the
same round without DAVE (transport encryption only), for comparison.

Run: python -m bench.voice_scale [N ...] [--revision REV] [--dave-only]
  --revision REV runs the bot's code as it was at a git revision (exported with `git archive`), against
  this tree's stand-ins: `--revision main` measures the code before a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    DISCORD_TOKEN,
    MEMBER_PERMISSIONS,
    REPOSITORY,
    UNMIXR_KEY,
    Report,
    configure_logging,
    first_answer,
    percentile,
    start_bot_process,
    stop_bot_process,
    wait_all,
)
from tests.fakes.dave import DaveCall
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeInteraction, FakeMember
from tests.fakes.discord_voice import FRAME_SECONDS, FakeVoiceServer, VoiceSession
from tests.fakes.prose import prose
from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID, default_voices

SERVER_COUNTS = (10, 25, 35, 50, 100)
GOAL_SERVERS = 100
GAP_GOAL_MS = 40.0
ACK_GOAL_MS = 100.0
# 135 characters at the stand-in's 15 characters a second: a 9 s clip.
CLIP_CHARACTERS = 135
TRICKLE_SECONDS = 0.25
SILENCE_FRAMES = 5
# A stream whose packets stopped this long ago is over, whatever it received.
STALLED_SECONDS = 3.0
# A stream with all its frames is over once nothing more arrived for this long.
QUIET_SECONDS = 0.3
ROUND_TIMEOUT = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """One guild of the round, with the people and the voice it uses."""

    guild: FakeGuild
    text: dict[str, Any]
    listener: FakeMember
    asker: FakeMember
    voice_id: str
    clip_text: str
    expected_frames: int = 0
    interaction: FakeInteraction | None = None


@dataclass
class Stream:
    """What one server's voice stream looked like."""

    gaps: list[float]
    expected: int
    received: int
    decrypted: int
    sequence_gaps: int
    first_after_say: float | None
    last_at: float


@dataclass
class RoundResult:
    """The figures of one N."""

    servers: int
    dave: bool
    streams: list[Stream]
    bot_cpu: float
    ffmpeg_cpu: float
    standin_cpu: float
    trickle_acks: list[float]
    burst_trickle_acks: list[float]
    burst_acks: list[float]
    joined_in: float
    load_before: float
    load_after: float
    unfinished: int
    gaps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gaps = [gap for stream in self.streams for gap in stream.gaps]

    @property
    def lost(self) -> int:
        """Frames the bot should have sent and the stand-in never got (a last partial frame aside)."""
        return sum(max(0, stream.expected - stream.received - 1) for stream in self.streams) + sum(
            stream.sequence_gaps for stream in self.streams
        )

    @property
    def undecrypted(self) -> int:
        """Audio frames that arrived and the channel's listener could not decrypt (DAVE rounds)."""
        return sum(stream.received - stream.decrypted for stream in self.streams) if self.dave else 0

    @property
    def gap_p99_ms(self) -> float:
        """The p99 gap over every stream's gaps, in milliseconds."""
        return percentile(self.gaps, 99) * 1000


def bench_voices(count: int) -> list[dict[str, Any]]:
    """The stand-in's catalogue plus `count` English voices, one per server (each gets its own tone)."""
    voices = default_voices()
    brian = next(voice for voice in voices if voice["uuid"] == BRIAN_ID)
    for number in range(count):
        extra = dict(brian)
        extra["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-voice-scale/{number}"))
        extra["character"] = f"Bench Voice {number}"
        voices.append(extra)
    return voices


def process_ticks(pid: int) -> tuple[int, int]:
    """A process's own CPU time (user + system) and its waited-for children's, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def own_cpu_seconds() -> float:
    """This process's CPU time (the stand-ins)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def export_revision(revision: str, destination: Path) -> Path:
    """Write the repository's tree at `revision` into `destination` and return it."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPOSITORY, capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True, timeout=60)
    return destination


def build_servers(discord_fake: FakeDiscord, voices: list[dict[str, Any]], count: int) -> list[Server]:
    """Add `count` guilds, each with its listener already in its voice channel."""
    servers = []
    for number in range(count):
        guild = discord_fake.add_guild(name=f"Voice Server {number}")
        text = guild.add_text_channel("general")
        voice_channel = guild.add_voice_channel("Lounge")
        listener = guild.add_member(f"Listener {number}", permissions=MEMBER_PERMISSIONS)
        asker = guild.add_member(f"Asker {number}", permissions=MEMBER_PERMISSIONS)
        guild.voice_states[listener.id] = {"channel_id": str(voice_channel["id"]), "session_id": secrets.token_hex(16)}
        prefix = f"Server {number} speaks. "
        clip_text = prefix + prose(CLIP_CHARACTERS - len(prefix), salt=number)
        servers.append(Server(guild, text, listener, asker, voices[-count + number]["uuid"], clip_text))
    return servers


async def warm_tones(unmixr: FakeUnmixr, servers: list[Server]) -> None:
    """Ask the stand-in for each server's clip once, so its tone is made before the round and its length known."""
    headers = {"Authorization": f"Bearer {UNMIXR_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def one(server: Server) -> None:
            body = {"text": server.clip_text, "voice_id": server.voice_id, "response_type": "url", "output_type": "mp3"}
            async with http.post(f"{unmixr.base_url}/short-tts/", json=body) as response:
                payload = await response.json()
            server.expected_frames = round(float(payload["duration"]) / FRAME_SECONDS)

        gate = asyncio.Semaphore(8)

        async def bounded(server: Server) -> None:
            async with gate:
                await one(server)

        await asyncio.gather(*(bounded(server) for server in servers))


def stream_of(server: Server, session: VoiceSession | None, dispatched_at: float) -> Stream:
    """The figures of one server's stream, from the packets its voice session received."""
    if session is None:
        return Stream([], server.expected_frames, 0, 0, 0, None, dispatched_at)
    packets = session.packets
    audio = [packet for packet in packets if not packet.is_silence]
    gaps = [later.received_at - earlier.received_at for earlier, later in itertools.pairwise(audio)]
    missing = 0
    for earlier, later in itertools.pairwise(packets):
        missing += max(0, (later.sequence - earlier.sequence) % 65_536 - 1)
    first = audio[0].received_at - dispatched_at if audio else None
    last = packets[-1].received_at if packets else dispatched_at
    decrypted = sum(packet.heard for packet in audio)
    return Stream(gaps, server.expected_frames, len(audio), decrypted, missing, first, last)


def settled(call: DaveCall) -> bool:
    """Whether a call's group exists and no transition is under way."""
    return call.established and call.transition is None


def stream_done(server: Server, session: VoiceSession | None, now: float) -> bool:
    """Whether a server's stream is over: all its frames and the silence arrived, or it stalled."""
    if session is None or session.last_received_at is None:
        return False
    quiet = now - session.last_received_at
    if session.datagrams >= server.expected_frames + SILENCE_FRAMES - 1 and quiet > QUIET_SECONDS:
        return True
    return quiet > STALLED_SECONDS


async def join_all(discord_fake: FakeDiscord, voice: FakeVoiceServer, servers: list[Server]) -> float:
    """Have every listener run /join, so the round measures playing, not connecting; returns how long it took."""
    started = time.monotonic()
    joins = [await discord_fake.slash(s.guild, s.text, s.listener, "join") for s in servers]
    # discord.py sends at most 110 gateway commands a minute (Discord's limit), one per join.
    if await wait_all(joins, first_answer, timeout=90):
        raise RuntimeError("a /join got no answer")
    for server in servers:
        session = await voice.wait_for_session(server.guild.id, timeout=30)
        if voice.dave:
            # The bot and the listener form their channel's group before the round, as they would have by then.
            call = voice.call(server.guild.id)
            await call.wait_until(partial(settled, call), timeout=30)
            assert session.call is call
    return time.monotonic() - started


async def trickle(discord_fake: FakeDiscord, servers: list[Server], stop: asyncio.Event) -> list[FakeInteraction]:
    """Send a /say (attachment reply) every TRICKLE_SECONDS, in turn in each server, until stopped."""
    sent: list[FakeInteraction] = []
    number = 0
    next_at = time.monotonic()
    while not stop.is_set():
        server = servers[number % len(servers)]
        text = f"Trickle number {number} here."
        sent.append(await discord_fake.slash(server.guild, server.text, server.asker, "say", {"text": text}))
        number += 1
        next_at += TRICKLE_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
    return sent


def print_timeline(
    servers: list[Server],
    unmixr: FakeUnmixr,
    voice: FakeVoiceServer,
    extras: list[FakeInteraction],
    dispatched_at: float,
) -> None:
    """Print when each step of the servers' /say happened, and the trickle's acknowledgements second by second."""
    by_text = {
        r.json.get("text"): r for r in unmixr.requests if isinstance(r.json, dict) and r.endpoint == "/short-tts/"
    }
    rows = []
    for server in servers:
        interaction = server.interaction
        request = by_text.get(server.clip_text)
        session = voice.sessions.get(server.guild.id)
        first = next((p.received_at for p in session.packets if not p.is_silence), None) if session else None
        marks = [
            interaction.acknowledged_at if interaction else None,
            request.started_at if request else None,
            request.finished_at if request else None,
            first,
        ]
        rows.append([None if mark is None else mark - dispatched_at for mark in marks])
    names = ("/say acknowledged", "/short-tts/ sent", "/short-tts/ answered", "first packet")
    for index, name in enumerate(names):
        values = sorted(value for row in rows if (value := row[index]) is not None)
        if values:
            print(f"  {name:>20}: first {values[0]:6.2f}  p50 {percentile(values, 50):6.2f}  last {values[-1]:6.2f} s")
    for second in range(int(time.monotonic() - dispatched_at) + 1):
        acks = [
            (i.acknowledged_at - i.created_at) * 1000
            for i in extras
            if i.acknowledged_at is not None and second <= i.created_at - dispatched_at < second + 1
        ]
        if acks:
            print(f"  trickle /say sent at {second:3d} s: acknowledged within {max(acks):7.1f} ms ({len(acks)})")


def ack_latencies(interactions: list[FakeInteraction]) -> list[float]:
    """Seconds from dispatch to acknowledgement of each acknowledged interaction."""
    return [
        interaction.acknowledged_at - interaction.created_at
        for interaction in interactions
        if interaction.acknowledged_at is not None
    ]


async def measure(count: int, code: Path, *, dave: bool = True, verbose: bool = False) -> RoundResult:
    """Run one round with `count` servers playing at once (DAVE on or off) and return its figures."""
    directory = Path(tempfile.mkdtemp(prefix="unmixr-bench-voice-"))
    voices = bench_voices(count)
    unmixr = FakeUnmixr(api_key=UNMIXR_KEY, prebuilt_chars=100_000_000, voices=voices)
    discord_fake = FakeDiscord(token=DISCORD_TOKEN)
    voice = FakeVoiceServer(dave=dave)
    process: asyncio.subprocess.Process | None = None
    try:
        servers = build_servers(discord_fake, voices, count)
        await unmixr.start()
        await discord_fake.start()
        await voice.start()
        voice.attach(discord_fake)
        await warm_tones(unmixr, servers)
        process = await start_bot_process(directory, discord_fake, unmixr, servers[0].guild, code=code, voice=voice)
        # One /say through the whole path first: the catalogue is loaded and the first-use costs are paid.
        warm = await discord_fake.slash(servers[0].guild, servers[0].text, servers[0].asker, "say", {"text": "Hi."})
        if await wait_all([warm], first_answer, timeout=60):
            raise RuntimeError("the warm-up /say got no answer")
        joined_in = await join_all(discord_fake, voice, servers)
        await asyncio.sleep(1.0)

        load_before = os.getloadavg()[0]
        bot_before, children_before = process_ticks(process.pid)
        standin_before = own_cpu_seconds()
        dispatched_at = time.monotonic()
        for server in servers:
            options = {"text": server.clip_text, "voice": server.voice_id, "play": True}
            server.interaction = await discord_fake.slash(server.guild, server.text, server.listener, "say", options)
        stop = asyncio.Event()
        trickling = asyncio.create_task(trickle(discord_fake, servers, stop))
        deadline = dispatched_at + ROUND_TIMEOUT
        while time.monotonic() < deadline:
            now = time.monotonic()
            if all(stream_done(s, voice.sessions.get(s.guild.id), now) for s in servers):
                break
            await asyncio.sleep(0.1)
        measured_at = time.monotonic()
        bot_after, _ = process_ticks(process.pid)
        standin_after = own_cpu_seconds()
        stop.set()
        extras = await trickling
        now = time.monotonic()
        unfinished = sum(not stream_done(s, voice.sessions.get(s.guild.id), now) for s in servers)
        # ffmpeg children count once the bot has waited for them: they end with their clip.
        await asyncio.sleep(1.0)
        _, children_after = process_ticks(process.pid)
        load_after = os.getloadavg()[0]
        await wait_all(extras, lambda i: i.acknowledged_at is not None, timeout=10)
        if verbose:
            print_timeline(servers, unmixr, voice, extras, dispatched_at)
        burst = [s.interaction for s in servers if s.interaction is not None]
        # The burst itself (N /say arriving within a few ms) is the /say path's stress case (see ack_latency);
        # "while they play" starts once the bot has acknowledged all of it.
        burst_done = max((i.acknowledged_at or measured_at) for i in burst)

        streams = [stream_of(s, voice.sessions.get(s.guild.id), dispatched_at) for s in servers]
        last_packet = max(stream.last_at for stream in streams)
        window = max(last_packet, dispatched_at + 1.0) - dispatched_at
        if measured_at - last_packet > STALLED_SECONDS + 1:
            window = measured_at - dispatched_at
        return RoundResult(
            servers=count,
            dave=dave,
            streams=streams,
            bot_cpu=(bot_after - bot_before) / CLOCK_TICKS / window * 100,
            ffmpeg_cpu=(children_after - children_before) / CLOCK_TICKS / window * 100,
            standin_cpu=(standin_after - standin_before) / window * 100,
            trickle_acks=ack_latencies([i for i in extras if i.created_at >= burst_done]),
            burst_trickle_acks=ack_latencies([i for i in extras if i.created_at < burst_done]),
            burst_acks=ack_latencies(burst),
            joined_in=joined_in,
            load_before=load_before,
            load_after=load_after,
            unfinished=unfinished,
        )
    finally:
        if process is not None:
            # Leaving 100 voice channels waits on discord.py's gateway rate limit: no need to watch that.
            await stop_bot_process(process, directory)
        await voice.close()
        await discord_fake.close()
        await unmixr.close()
        await asyncio.to_thread(shutil.rmtree, directory, True)


def milliseconds(values: list[float], q: float) -> str:
    """A percentile of durations in seconds, in milliseconds (q 100: the max)."""
    if not values:
        return "-"
    return f"{percentile(values, q) * 1000:.1f}"


# The table's columns: a title and a unit line, right-aligned to the wider of the two.
COLUMNS = (
    ("servers", ""),
    ("DAVE", ""),
    ("gap p50", "ms"),
    ("gap p99", "ms"),
    ("gap max", "ms"),
    ("frames", "expected"),
    ("frames", "received"),
    ("frames", "lost"),
    ("frames", "decrypted"),
    ("1st packet", "p50 ms"),
    ("1st packet", "max ms"),
    ("bot", "% core"),
    ("ffmpeg", "% core"),
    ("stand-ins", "% core"),
    ("ack playing", "p99 ms"),
    ("acks", "n"),
    ("burst ack", "p99 ms"),
    ("burst trickle", "max ms"),
    ("/join all", "s"),
    ("load", "avg"),
)
WIDTHS = [max(len(title), len(unit)) for title, unit in COLUMNS]


def table_line(cells: list[str]) -> str:
    """One line of the table, each cell right-aligned in its column."""
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, WIDTHS, strict=True))


def print_header() -> None:
    """The table's two title lines."""
    print(table_line([title for title, _ in COLUMNS]))
    print(table_line([unit for _, unit in COLUMNS]))


def print_row(result: RoundResult) -> None:
    """One line of the table."""
    starts = [s.first_after_say for s in result.streams if s.first_after_say is not None]
    cells = [
        str(result.servers),
        "on" if result.dave else "off",
        milliseconds(result.gaps, 50),
        milliseconds(result.gaps, 99),
        milliseconds(result.gaps, 100),
        str(sum(s.expected for s in result.streams)),
        str(sum(s.received for s in result.streams)),
        str(result.lost),
        str(sum(s.decrypted for s in result.streams)) if result.dave else "-",
        milliseconds(starts, 50),
        milliseconds(starts, 100),
        f"{result.bot_cpu:.0f}",
        f"{result.ffmpeg_cpu:.0f}",
        f"{result.standin_cpu:.0f}",
        milliseconds(result.trickle_acks, 99),
        str(len(result.trickle_acks)),
        milliseconds(result.burst_acks, 99),
        milliseconds(result.burst_trickle_acks, 100),
        f"{result.joined_in:.1f}",
        f"{result.load_before:.1f}-{result.load_after:.1f}",
    ]
    print(table_line(cells), flush=True)


async def run(
    counts: tuple[int, ...], revision: str | None, *, verbose: bool = False, dave_only: bool = False
) -> Report:
    """Measure each N in turn and return the report."""
    configure_logging()
    label = f"the bot at {revision}" if revision else "this tree's bot"
    report = Report("voice_scale", f"{GOAL_SERVERS} servers playing at once: p99 packet gap under 40 ms ({label})")
    code = REPOSITORY
    exported: Path | None = None
    if revision is not None:
        exported = Path(tempfile.mkdtemp(prefix="unmixr-bench-revision-"))
        code = await asyncio.to_thread(export_revision, revision, exported)
    results: list[RoundResult] = []
    try:
        print(f"voice playback at scale, {label}; CPU in % of one core over the round")
        print_header()
        for count in counts:
            for dave in (True,) if dave_only else (True, False):
                result = await measure(count, code, dave=dave, verbose=verbose)
                results.append(result)
                print_row(result)
    finally:
        if exported is not None:
            await asyncio.to_thread(shutil.rmtree, exported, True)
    with_dave = [r for r in results if r.dave]
    meeting = [r.servers for r in with_dave if r.gap_p99_ms < GAP_GOAL_MS and r.lost == 0 and not r.unfinished]
    meeting = [n for n in meeting if all(r.undecrypted == 0 for r in with_dave if r.servers == n)]
    failing = [r.servers for r in with_dave if r.servers not in meeting]
    largest = max((n for n in meeting if all(f > n for f in failing)), default=0)
    print(
        f"largest N measured with DAVE, p99 gap < {GAP_GOAL_MS:.0f} ms, no frame lost or undecrypted: "
        f"{largest or 'none'}"
    )
    for result in results:
        n = result.servers
        if not result.dave:
            report.add(f"{n} servers without DAVE: packet gap p99", result.gap_p99_ms, "ms")
            report.add(f"{n} servers without DAVE: frames lost", result.lost, "")
            report.add(f"{n} servers without DAVE: bot CPU", result.bot_cpu, "%")
            continue
        goal = result.servers == GOAL_SERVERS
        undecrypted = result.undecrypted
        report.add(
            f"{n} servers: frames not decrypted by the listener",
            undecrypted,
            "",
            "0" if goal else "",
            undecrypted == 0 if goal else None,
        )
        gap_met = result.gap_p99_ms < GAP_GOAL_MS if goal else None
        report.add(f"{n} servers: packet gap p99", result.gap_p99_ms, "ms", "< 40 ms" if goal else "", gap_met)
        report.add(f"{n} servers: packet gap max", percentile(result.gaps, 100) * 1000, "ms")
        lost = result.lost
        report.add(f"{n} servers: frames lost", lost, "", "0" if goal else "", lost == 0 if goal else None)
        ack = percentile(result.trickle_acks, 99) * 1000
        report.add(
            f"{n} servers: /say ack p99 while playing",
            ack,
            "ms",
            "< 100 ms" if goal else "",
            ack < ACK_GOAL_MS if goal else None,
        )
        report.add(f"{n} servers: ack p99 of the {n} /say at once", percentile(result.burst_acks, 99) * 1000, "ms")
        report.add(f"{n} servers: bot CPU", result.bot_cpu, "%", summary=goal)
        report.add(f"{n} servers: its ffmpeg CPU", result.ffmpeg_cpu, "%", summary=goal)
    report.add("largest N with DAVE, p99 gap < 40 ms, no frame lost or undecrypted", largest, "servers", summary=True)
    report.note(
        "Each server plays its own ~9 s clip (135 characters); frames lost counts frames short of the clip's "
        "length (beyond a last partial frame) and RTP sequence numbers that never arrived. The load average "
        "is the machine's (other work shares it)."
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    arguments = sys.argv[1:]
    revision: str | None = None
    if "--revision" in arguments:
        index = arguments.index("--revision")
        revision = arguments[index + 1]
        del arguments[index : index + 2]
    verbose = "--verbose" in arguments
    dave_only = "--dave-only" in arguments
    flags = ("--verbose", "--dave-only")
    counts = tuple(int(argument) for argument in arguments if argument not in flags) or SERVER_COUNTS
    asyncio.run(run(counts, revision, verbose=verbose, dave_only=dave_only)).print()


if __name__ == "__main__":
    main()
