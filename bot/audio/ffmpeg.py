"""The one door through which audio bytes reach ffmpeg and ffprobe, whoever sent them.

`run` opens each input from a private temporary file (written by `run` from bytes, or earlier by
`private_copy` from a stream) with a format and a protocol whitelist, so a file can never make ffmpeg open
another file or a URL (an HLS playlist or an ffconcat script named `voice.mp3` is the classic attack); it
runs the program in a lane with its own bounded slots, shared fairly between servers, with a deadline and a
cap on what it may print, off the event loop; and it removes its files afterwards (waiting for any thread
still writing them, even when cancelled). Callers pass only output options: there is no other way to give
ffmpeg an input. (Synthesised audio for voice is encoded to Opus from a pipe by `bot.audio.opus`, with the
same format whitelist.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Hashable, Sequence
from pathlib import Path
from typing import BinaryIO, Final, Literal, ParamSpec, TypeVar

from bot.i18n.text import _

__all__ = [
    "SUPPORTED_DEMUXERS",
    "SUPPORTED_FORMATS",
    "AudioError",
    "FFmpegMissingError",
    "Joined",
    "Lane",
    "Outcome",
    "OutputTooLargeError",
    "Source",
    "TooLargeError",
    "private_copy",
    "run",
]

log = logging.getLogger(__name__)

_Parameters = ParamSpec("_Parameters")
_Result = TypeVar("_Result")

# ffmpeg's demuxer names for mp3, wav, ogg/opus, flac, aac, mp4/m4a/mov and webm/mkv.
SUPPORTED_DEMUXERS: Final = ("mp3", "wav", "ogg", "flac", "aac", "mov", "matroska")
# The same list as members know it, for answers.
SUPPORTED_FORMATS: Final = _("mp3, wav, ogg, opus, flac, aac, m4a, mp4, mov, webm or mkv")
# "file" allows any path (a protocol whitelist cannot name one file, and ffmpeg 5.1 has no fd:); that is enough
# because no demuxer on the format whitelist opens another resource: hls, concat, image2 and dash are off it,
# and mov follows external references (drefs) only with enable_drefs, off by default.
_INPUT_OPTIONS: Final = ("-format_whitelist", ",".join(SUPPORTED_DEMUXERS), "-protocol_whitelist", "file")
# A Joined input adds the concat demuxer, which the parts inherit with the list; its safe mode (the default)
# confines what they name to plain relative names, i.e. to the private folder holding only this call's files.
_JOINED_OPTIONS: Final = (
    "-format_whitelist",
    ",".join(("concat", *SUPPORTED_DEMUXERS)),
    "-protocol_whitelist",
    "file",
    "-f",
    "concat",
    "-safe",
    "1",
)
_FFMPEG_HEAD: Final = ("-nostdin", "-hide_banner", "-v", "error", "-y")
_PRIVATE_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
# A streamed copy is written a slice at a time from a thread: few hand-offs, and never a whole file in memory.
_COPY_SLICE_BYTES: Final = 1 << 20
# What is kept of a program's error output: its first lines say what went wrong, and a hostile file can make
# ffmpeg print without end.
_STDERR_KEPT_BYTES: Final = 64 * 1024
_READ_BYTES: Final = 64 * 1024


class AudioError(Exception):
    """Audio could not be read or converted; the message is one plain sentence fit for a user."""


class FFmpegMissingError(AudioError):
    """The ffmpeg or ffprobe program is not installed."""


class TooLargeError(AudioError):
    """A streamed input passed its size limit; `received` is how many bytes had arrived by then."""

    def __init__(self, received: int) -> None:
        super().__init__(f"The file is larger than allowed ({received:,} bytes received so far).")
        self.received = received


class OutputTooLargeError(AudioError):
    """The program printed more than its caller allows (the process is killed at once)."""


class Lane(enum.Enum):
    """Work that must not wait behind other work gets its own lane, each with its own process slots."""

    # Replies: joining chunks, converting and measuring synthesised audio.
    REPLIES = "replies"
    # Checking files members upload (/clone): however many arrive, replies never queue behind them.
    CHECKS = "checks"


LANE_SLOTS: Final = {Lane.REPLIES: 4, Lane.CHECKS: 1}
# Checks run at a lower CPU priority, so on a busy machine replies get the cores first.
_CHECKS_NICENESS: Final = 10


@dataclasses.dataclass(frozen=True, slots=True)
class Joined:
    """Clips read one after the other as one input (ffmpeg's concat demuxer over files the door writes)."""

    parts: Sequence[bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    """A private copy of untrusted bytes on disk, made by `private_copy`, that `run` can open any number of times."""

    path: Path
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What the program did: its exit status, what it printed, and the output file's bytes if it asked for one."""

    returncode: int
    stdout: bytes
    stderr: bytes
    output: bytes | None = None


class _FairSlots:
    """A lane's process slots, shared fairly: a freed slot goes to the oldest waiting request of a server that
    holds no slot of the lane, if there is one, else to the oldest waiting request.

    So one server sending many requests at once (free repeats of cached audio, say) takes the free slots but
    never makes another server wait for all of its queue.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._held: collections.Counter[Hashable] = collections.Counter()
        self._waiting: list[tuple[Hashable, asyncio.Future[None]]] = []  # oldest first

    def locked(self) -> bool:
        """Whether every slot is taken (as asyncio.Semaphore says it)."""
        return self._free == 0

    @contextlib.asynccontextmanager
    async def slot(self, server: Hashable) -> AsyncIterator[None]:
        """Hold one slot for `server` (None: work no server asked for, counted as one more server)."""
        await self._acquire(server)
        try:
            yield
        finally:
            self._release(server)

    async def _acquire(self, server: Hashable) -> None:
        if self._free > 0 and not self._waiting:
            self._take(server)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (server, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(entry)
            else:
                self._release(server)  # given a slot just as it was cancelled: pass the slot on
            raise

    def _take(self, server: Hashable) -> None:
        self._free -= 1
        self._held[server] += 1

    def _release(self, server: Hashable) -> None:
        self._held[server] -= 1
        if self._held[server] <= 0:
            del self._held[server]
        self._free += 1
        while self._free > 0 and self._waiting:
            index = next((i for i, (waiting, _) in enumerate(self._waiting) if waiting not in self._held), 0)
            waiting, turn = self._waiting.pop(index)
            if turn.done():
                continue  # cancelled while waiting
            self._take(waiting)
            turn.set_result(None)


# One set of slots per event loop: asyncio futures must not be shared across loops (tests run several).
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Lane, _FairSlots]] = (
    weakref.WeakKeyDictionary()
)


def _slots(lane: Lane) -> _FairSlots:
    loop = asyncio.get_running_loop()
    lanes = _slots_by_loop.get(loop)
    if lanes is None:
        lanes = {each: _FairSlots(LANE_SLOTS[each]) for each in Lane}
        _slots_by_loop[loop] = lanes
    return lanes[lane]


async def _in_thread(
    function: Callable[_Parameters, _Result], /, *args: _Parameters.args, **kwargs: _Parameters.kwargs
) -> _Result:
    """Run a blocking call in a thread and wait for its end, even when cancelled (then re-raised after it).

    A thread cannot be stopped: a caller cancelled while one writes into its folder must not remove the folder
    until the writing is over, or the files written after the removal would stay behind.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
    cancelled = False
    while not work.done():
        try:
            await asyncio.wait([work])  # never cancels `work`
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not work.cancelled() and work.exception() is not None:
            log.debug("a call cancelled while in a thread also failed: %s", work.exception())
        raise asyncio.CancelledError
    return work.result()


@contextlib.asynccontextmanager
async def private_copy(chunks: AsyncIterable[bytes], *, max_bytes: int) -> AsyncIterator[Source]:
    """Write a stream to a private temporary file (raising TooLargeError past max_bytes); removed on exit."""
    workspace = Path(tempfile.mkdtemp(prefix="unmixr-audio-"))
    try:
        path = workspace / "input"
        file = await _in_thread(_open_private, path)
        size = 0
        try:
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLargeError(size)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _COPY_SLICE_BYTES:
                    await _in_thread(file.writelines, pending)
                    pending, pending_size = [], 0
            await _in_thread(file.writelines, pending)
        finally:
            await _in_thread(file.close)
        yield Source(path, size)
    finally:
        await _in_thread(shutil.rmtree, workspace, ignore_errors=True)


async def run(
    program: Literal["ffmpeg", "ffprobe"],
    inputs: Sequence[bytes | Joined | Source],
    arguments: Sequence[str],
    *,
    output: str | None = None,
    lane: Lane = Lane.REPLIES,
    server: Hashable = None,
    limit: float,
    max_stdout: int | None = None,
) -> Outcome:
    """Run ffmpeg or ffprobe on `inputs` (each opened safely from a private file) with `arguments` after them.

    `output` names the suffix of an output file that ffmpeg writes after `arguments` and that is returned
    when the program succeeds. The program runs in a slot of `lane` taken for `server` (the server the work is
    for, so the lane is shared fairly). It is killed after `limit` seconds, when the caller is cancelled, or
    when it prints more than `max_stdout` bytes to its standard output (OutputTooLargeError).
    """
    if "-i" in arguments:
        raise ValueError("inputs are passed as data in `inputs`, never with -i")
    if program == "ffprobe" and (len(inputs) != 1 or output is not None):
        raise ValueError("ffprobe reads exactly one input and writes no file")
    # mkdtemp makes a folder only this user can enter; its name is known at once, even if the caller is cancelled.
    workspace = Path(tempfile.mkdtemp(prefix="unmixr-audio-"))
    try:
        input_arguments = await _in_thread(_write_inputs, workspace, inputs)
        target = workspace / f"output.{output}" if output is not None else None
        if program == "ffprobe":
            command = ["-v", "error", *input_arguments[:-2], *arguments, *input_arguments[-2:]]
        else:
            command = [*_FFMPEG_HEAD, *input_arguments, *arguments]
            if target is not None:
                command.append(f"file:{target}")
        completed = await _spawn(program, command, lane=lane, server=server, limit=limit, max_stdout=max_stdout)
        if target is not None and completed.returncode == 0:
            data = await asyncio.to_thread(target.read_bytes)
            completed = dataclasses.replace(completed, output=data)
        return completed
    finally:
        await _in_thread(shutil.rmtree, workspace, ignore_errors=True)


def _write_inputs(workspace: Path, inputs: Sequence[bytes | Joined | Source]) -> list[str]:
    """Write every input given as bytes to a private file in the workspace; return ffmpeg's options to open them."""
    arguments: list[str] = []
    for index, item in enumerate(inputs):
        if isinstance(item, Source):
            arguments += [*_INPUT_OPTIONS, "-i", f"file:{item.path}"]
        elif isinstance(item, Joined):
            names = [f"input{index}-part{number}" for number in range(len(item.parts))]
            for name, part in zip(names, item.parts, strict=True):
                _write_private(workspace / name, part)
            listing = workspace / f"input{index}.ffconcat"
            _write_private(listing, ("ffconcat version 1.0\n" + "".join(f"file {n}\n" for n in names)).encode())
            arguments += [*_JOINED_OPTIONS, "-i", f"file:{listing}"]
        else:
            path = workspace / f"input{index}"
            _write_private(path, item)
            arguments += [*_INPUT_OPTIONS, "-i", f"file:{path}"]
    return arguments


def _open_private(path: Path) -> BinaryIO:
    """Create a new file that only this user can read (0600), refusing to follow or reuse an existing name."""
    return open(os.open(path, _PRIVATE_FILE_FLAGS, 0o600), "wb")


def _write_private(path: Path, data: bytes) -> None:
    with _open_private(path) as file:
        file.write(data)


async def _spawn(
    program: str,
    arguments: Sequence[str],
    *,
    lane: Lane,
    limit: float,
    server: Hashable = None,
    max_stdout: int | None = None,
) -> Outcome:
    """Run a program in a slot of its lane, killing it after `limit` seconds, on cancellation, or past `max_stdout`."""
    async with _slots(lane).slot(server):
        try:
            process = await asyncio.create_subprocess_exec(
                program,
                *arguments,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as error:
            raise FFmpegMissingError(
                f"{program} is not installed, so audio cannot be processed; install ffmpeg and restart."
            ) from error
        assert process.stdout is not None and process.stderr is not None
        errors = asyncio.ensure_future(_head_of(process.stderr, _STDERR_KEPT_BYTES))
        try:
            if lane is Lane.CHECKS:
                _lower_priority(process.pid)
            async with asyncio.timeout(limit):
                stdout = await _read_at_most(process.stdout, max_stdout, program)
                stderr = await errors
                returncode = await process.wait()
        except TimeoutError:
            raise AudioError(f"Processing the audio took longer than {limit:g} seconds.") from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            errors.cancel()
    if returncode != 0:
        log.debug("%s exited with %s: %s", program, returncode, stderr[-2000:].decode(errors="replace"))
    return Outcome(returncode, stdout, stderr)


async def _read_at_most(stream: asyncio.StreamReader, limit: int | None, program: str) -> bytes:
    """Everything a stream gives until its end, raising OutputTooLargeError past `limit` bytes (None: no limit)."""
    if limit is None:
        return await stream.read()
    received = bytearray()
    while block := await stream.read(_READ_BYTES):
        received += block
        if len(received) > limit:
            raise OutputTooLargeError(f"{program} printed more than {limit:,} bytes about the file.")
    return bytes(received)


async def _head_of(stream: asyncio.StreamReader, keep: int) -> bytes:
    """The first `keep` bytes of a stream, reading (and dropping) the rest until its end so the writer never blocks."""
    kept = bytearray()
    while block := await stream.read(_READ_BYTES):
        if len(kept) < keep:
            kept += block[: keep - len(kept)]
    return bytes(kept)


def _lower_priority(pid: int) -> None:
    """Lower a process's CPU priority; it may already have exited, which is fine."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, _CHECKS_NICENESS)
    except OSError:
        pass
