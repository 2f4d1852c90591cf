"""Recordings a member might upload to /clone, honest or hostile, made cheaply at test time."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.fakes.unmixr import FakeUnmixr

# One minute of a tone as 8 kbps mono mp3 with no Xing header: repeated, it stays a valid stream whose
# length ffprobe estimates from the size, as it would for a long recording of a meeting.
_MINUTE_SECONDS = 60


@functools.cache
def _low_bitrate_minute() -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed")
    with tempfile.TemporaryDirectory(prefix="recordings-") as folder:
        target = Path(folder) / "minute.mp3"
        subprocess.run(
            [
                ffmpeg,
                *("-nostdin", "-v", "error", "-y", "-f", "lavfi"),
                *("-i", f"sine=frequency=220:sample_rate=8000:duration={_MINUTE_SECONDS}"),
                *("-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k", "-write_xing", "0", "-id3v2_version", "0"),
                *("-f", "mp3", str(target)),
            ],
            check=True,
            timeout=60,
        )
        return target.read_bytes()


def long_mp3(seconds: int) -> bytes:
    """A real mp3 of about `seconds` (whole minutes, at least one) at 8 kbps: about 1 kB a second."""
    return _low_bitrate_minute() * max(1, seconds // _MINUTE_SECONDS)


def hls_playlist(target: Path) -> bytes:
    """An HLS playlist whose one segment is the file at `target` (the classic "voice.mp3" attack)."""
    return (
        f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:60\n#EXTINF:60.0,\nfile://{target}\n#EXT-X-ENDLIST\n"
    ).encode()


def ffconcat_script(target: Path) -> bytes:
    """An ffconcat script that plays the file at `target`."""
    return f"ffconcat version 1.0\nfile '{target}'\n".encode()


class FifoTrap:
    """A FIFO that records whether any process ever opened it for reading.

    Opening a FIFO to read blocks until a writer comes, so a reader stays visible: a thread tries to open
    the write end every few milliseconds, which fails with ENXIO while no reader has it open. On the first
    success it notes the reader and closes the write end, which lets the reader go on (it reads nothing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fifo-trap", daemon=True)

    def __enter__(self) -> FifoTrap:
        os.mkfifo(self.path, 0o600)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # a reader that came at the very end
        self.path.unlink()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self._poll()

    def _poll(self) -> None:
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            return
        self.opened = True
        os.close(descriptor)


def tone_mp3(seconds: int) -> bytes:
    """`seconds` of a tone as a 32 kbps mono mp3 with no ID3 tag of its own."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed")
    completed = subprocess.run(
        [
            ffmpeg,
            *("-nostdin", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}"),
            *("-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "0", "-f", "mp3", "pipe:1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return completed.stdout


def tagged_mp3(audio: bytes, total_bytes: int) -> bytes:
    """An mp3 grown to `total_bytes` by one ID3v2.3 TXXX tag of 0x01 bytes in front of `audio` (an untagged mp3).

    The attack of the outside review: ffprobe prints such a tag as JSON with each byte escaped as `\\u0001`, six
    times its size, for a bot that asks it for every tag.
    """
    header_bytes = 10 + 10 + 3  # the tag's header, the frame's header, then encoding, description "x" and its end
    value = total_bytes - len(audio) - header_bytes
    if value < 0:
        raise ValueError("the audio alone is larger than total_bytes")
    frame_size = 3 + value
    syncsafe = bytes((frame_size + 10) >> shift & 0x7F for shift in (21, 14, 7, 0))
    frame = b"TXXX" + frame_size.to_bytes(4, "big") + b"\x00\x00" + b"\x00x\x00" + b"\x01" * value
    return b"ID3\x03\x00\x00" + syncsafe + frame + audio


class TagSkippingUploads:
    """Makes the Unmixr stand-in keep, of each uploaded mp3, its size, its sha256 and the audio after its ID3 tag
    (which the stand-in measures), not the tag itself.

    So the memory this process gains while the bot uploads a 119 MB tagged_mp3 is the bot's, not the stand-in's
    copy of the tag. `files` holds the (size, sha256) of each upload.
    """

    def __init__(self, unmixr: FakeUnmixr) -> None:
        self.files: list[tuple[int, str]] = []

        async def read_file_part(part: Any) -> tuple[bytes, int]:
            digest, size, audio = hashlib.sha256(), 0, bytearray()
            tag_end: int | None = None
            while chunk := await part.read_chunk(1 << 16):
                digest.update(chunk)
                if tag_end is None:
                    # "ID3", version, flags, then the tag's size in 4 bytes of 7 bits, after the 10-byte header.
                    size_bytes = zip(chunk[6:10], (21, 14, 7, 0), strict=True)
                    tag_end = 10 + sum((byte & 0x7F) << shift for byte, shift in size_bytes)
                audio += chunk[max(0, tag_end - size) :]
                size += len(chunk)
            self.files.append((size, digest.hexdigest()))
            return bytes(audio), size

        unmixr._read_file_part = read_file_part  # type: ignore[method-assign]
