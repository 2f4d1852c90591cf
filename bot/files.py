"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

# What a temporary file left by a process that died mid-write ends with (the audio cache clears old ones).
TEMPORARY_SUFFIX: Final = ".tmp"


def write_atomically(path: Path, data: bytes) -> int:
    """Write to a temporary file beside `path`, then rename it over `path`; returns the bytes written.

    Blocking: call it in a thread from async code.
    """
    descriptor, temporary = tempfile.mkstemp(
        dir=path.absolute().parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return len(data)
