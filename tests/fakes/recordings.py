"""Recordings a member might upload to /clone, honest or hostile, made cheaply at test time."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

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
