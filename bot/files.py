"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

# What a temporary file left by a process that died mid-write ends with (the audio cache clears old ones).
TEMPORARY_SUFFIX: Final = ".tmp"
# Files only this bot reads (the audio cache) are its user's alone; a file made for the operator (the CLI's
# output) gets the usual permissions, as the umask leaves them (0644 with the common umask 022).
PRIVATE_MODE: Final = 0o600
SHARED_MODE: Final = 0o666


def write_atomically(path: Path, data: bytes, *, private: bool = True) -> int:
    """Write to a temporary file beside `path`, then rename it over `path`; returns the bytes written.

    The kernel applies the umask to the new file's mode, as for any file a program creates. Blocking: call it in a
    thread from async code.
    """
    temporary = path.absolute().parent / f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
    descriptor = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
        PRIVATE_MODE if private else SHARED_MODE,
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
