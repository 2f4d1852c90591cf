"""The door to ffmpeg: hostile files open nothing else, inputs are private files, lanes do not wait on each other."""

from __future__ import annotations

import asyncio
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.audio import ffmpeg, processing
from bot.audio.ffmpeg import LANE_SLOTS, Lane, Source, TooLargeError, private_copy, run
from tests.fakes.recordings import FifoTrap, ffconcat_script, hls_playlist, long_mp3


@pytest.fixture
def trap(tmp_path: Path) -> Iterator[FifoTrap]:
    """A FIFO named like a recording (HLS takes only media extensions as segments) that notices any reader."""
    with FifoTrap(tmp_path / "recording.mp4") as fifo:
        yield fifo


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every program the door starts: its arguments, and the mode of each input file and folder at that moment."""
    calls: list[dict[str, Any]] = []
    real_exec = asyncio.create_subprocess_exec

    async def spying_exec(program: str, *arguments: str, **kwargs: Any) -> asyncio.subprocess.Process:
        inputs = [arguments[index + 1] for index, value in enumerate(arguments) if value == "-i"]
        modes = []
        for name in inputs:
            path = Path(name.removeprefix("file:"))
            modes.append((stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)))
        calls.append({"program": program, "arguments": list(arguments), "inputs": inputs, "modes": modes})
        return await real_exec(program, *arguments, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spying_exec)
    return calls


@pytest.mark.parametrize(
    ("make", "plain_options"),
    [(hls_playlist, ()), (ffconcat_script, ("-safe", "0"))],
    ids=["hls playlist", "ffconcat script"],
)
def test_the_trap_catches_ffmpeg_following_a_playlist_or_a_script(
    trap: FifoTrap, tmp_path: Path, make: Any, plain_options: tuple[str, ...]
) -> None:
    # The control: without whitelists, ffprobe opens the file the playlist names (the concat demuxer
    # needs -safe 0 for an absolute path when it is chosen by its extension, as a script can be).
    attack = tmp_path / "voice.mp3"
    attack.write_bytes(make(trap.path))
    # As the bot ran it before the door; the trap lets the reader go, so it ends at once.
    subprocess.run(
        ["ffprobe", "-v", "error", *plain_options, str(attack)], capture_output=True, timeout=30, check=False
    )
    assert trap.opened


@pytest.mark.parametrize("make", [hls_playlist, ffconcat_script], ids=["hls playlist", "ffconcat script"])
async def test_a_playlist_or_script_named_mp3_opens_nothing_else(
    trap: FifoTrap, spawned: list[dict[str, Any]], make: Any
) -> None:
    attack = make(trap.path)
    result = await processing.probe(attack)
    assert result.format_name is None and not result.has_audio
    assert result.unsupported
    with pytest.raises(processing.AudioError):
        await processing.duration(attack)
    with pytest.raises(processing.AudioError):
        await processing.extract_audio(attack)
    with pytest.raises(processing.AudioError):
        await processing.to_pcm(attack)
    assert not trap.opened
    assert [call["program"] for call in spawned] == ["ffprobe", "ffmpeg", "ffmpeg", "ffmpeg"]


async def test_every_input_is_a_private_file_opened_with_both_whitelists(spawned: list[dict[str, Any]]) -> None:
    clip = long_mp3(60)
    await processing.probe(clip)
    await processing.duration(clip, stop_after=5)
    await processing.extract_audio(clip, stop_after=5)
    await processing.concat([clip, clip[:20_000] + b"\0" * 10], "mp3")
    assert len(spawned) == 4
    for call in spawned:
        arguments = call["arguments"]
        assert call["inputs"], call
        assert (call["modes"]) == [(0o600, 0o700)] * len(call["inputs"])
        start = 0
        for at in [index for index, value in enumerate(arguments) if value == "-i"]:
            # The options between the previous input and this -i are this input's.
            options = arguments[start:at]
            assert options[options.index("-format_whitelist") + 1].endswith("mp3,wav,ogg,flac,aac,mov,matroska")
            assert options[options.index("-protocol_whitelist") + 1] == "file"
            assert arguments[at + 1].startswith("file:")
            start = at + 2


async def test_joined_parts_are_read_through_the_concat_demuxer_only_from_the_private_folder(
    spawned: list[dict[str, Any]], trap: FifoTrap
) -> None:
    clip = long_mp3(60)
    # A part that is itself a script naming a file outside the folder is refused by the concat demuxer's safe mode.
    joined = await run(
        "ffmpeg", [ffmpeg.Joined([clip, ffconcat_script(trap.path)])], ["-xerror", "-f", "null", "-"], limit=10
    )
    assert joined.returncode != 0
    assert b"Unsafe file name" in joined.stderr
    assert not trap.opened
    [call] = spawned
    assert call["arguments"][call["arguments"].index("-safe") + 1] == "1"


async def test_run_takes_inputs_only_as_data() -> None:
    with pytest.raises(ValueError, match="never with -i"):
        await run("ffmpeg", [], ["-i", "/etc/hostname", "-f", "null", "-"], limit=5)


async def _slices(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_private_copy_is_written_once_read_many_times_and_removed(tmp_path: Path) -> None:
    clip = long_mp3(120)
    async with private_copy(_slices(clip, 5_000), max_bytes=len(clip)) as source:
        assert source.size == len(clip)
        assert source.path.read_bytes() == clip
        assert stat.S_IMODE(source.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(source.path.parent.stat().st_mode) == 0o700
        assert (await processing.probe(source)).duration == pytest.approx(120, abs=1)
        assert await processing.duration(source, stop_after=10) == pytest.approx(10, abs=0.1)
    assert not source.path.parent.exists()


async def test_a_private_copy_stops_reading_past_its_limit() -> None:
    received: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            received.append(1)
            yield b"x" * 1000

    source: Source | None = None
    with pytest.raises(TooLargeError) as raised:
        async with private_copy(endless(), max_bytes=10_500) as source:
            pass
    assert source is None
    assert raised.value.received == 11_000
    assert len(received) == 11


# Real time for 30 s: long enough to outlive the test, short enough to end if it fails.
_ENDLESS = ["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"]


async def test_replies_never_wait_for_the_checks_lane() -> None:
    assert LANE_SLOTS[Lane.CHECKS] == 1
    busy = asyncio.create_task(ffmpeg._spawn("ffmpeg", _ENDLESS, lane=Lane.CHECKS, limit=60))
    waiting = asyncio.create_task(ffmpeg._spawn("ffmpeg", _ENDLESS, lane=Lane.CHECKS, limit=60))
    try:
        while not ffmpeg._slots(Lane.CHECKS).locked():
            await asyncio.sleep(0.01)
        clip = long_mp3(60)
        # The checks lane is full (one running, one waiting); a join and a measurement still go through.
        joined = await asyncio.wait_for(processing.concat([clip, clip], "mp3"), timeout=30)
        assert await processing.duration(joined) == pytest.approx(120, abs=0.5)
        assert not waiting.done()
    finally:
        busy.cancel()
        waiting.cancel()
        await asyncio.gather(busy, waiting, return_exceptions=True)


class _Requests:
    """Requests for slots of a lane, each held until finished; `order` is the order in which they got a slot."""

    def __init__(self, slots: int) -> None:
        self.slots = ffmpeg._FairSlots(slots)
        self.order: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._release: dict[str, asyncio.Event] = {}

    async def start(self, *names: str) -> None:
        """Ask for a slot for each name, in order; the server is the name's letter."""
        for name in names:
            self._release[name] = asyncio.Event()
            self.tasks[name] = asyncio.create_task(self._work(name))
            await asyncio.sleep(0)

    async def finish(self, name: str) -> None:
        self._release[name].set()
        await self.tasks.pop(name)
        await asyncio.sleep(0)

    async def _work(self, name: str) -> None:
        async with self.slots.slot(name[0]):
            self.order.append(name)
            await self._release[name].wait()


async def test_a_freed_slot_goes_to_the_oldest_waiting_server_without_one() -> None:
    requests = _Requests(2)
    await requests.start("a1", "a2", "a3", "a4", "b1", "c1")  # both slots are A's; the others wait in this order
    assert requests.order == ["a1", "a2"]
    requests.tasks.pop("a3").cancel()  # a request that gives up while waiting takes no slot
    await requests.finish("a1")
    assert requests.order[-1] == "b1"  # B holds no slot: before a4, which waited longer
    await requests.finish("b1")
    assert requests.order[-1] == "c1"  # A still holds one
    await requests.finish("a2")
    assert requests.order[-1] == "a4"
    await requests.finish("c1")
    await requests.finish("a4")
    assert requests.order == ["a1", "a2", "b1", "c1", "a4"]
    assert not requests.slots.locked()


async def test_a_freed_slot_goes_to_the_oldest_waiting_when_every_waiting_server_holds_one() -> None:
    requests = _Requests(3)
    await requests.start("a1", "b1", "c1", "b2", "a2")
    await requests.finish("c1")
    assert requests.order[-1] == "b2"
    for name in ("a1", "b1", "b2", "a2"):
        await requests.finish(name)
    assert requests.order == ["a1", "b1", "c1", "b2", "a2"]
