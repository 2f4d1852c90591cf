"""Quiet, honest logs while Unmixr or Discord is down: one WARNING per kind of failure per minute.

Each line names the address and the reason ("Unmixr at https://unmixr.com/api/v1 could not be reached:
Connection refused"); repeats within the minute, and the tracebacks discord.py attaches to every reconnect attempt,
go to DEBUG. The first report after a quiet minute says how many were folded into the last one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

log = logging.getLogger("bot.outages")

# One WARNING per failure kind per this many seconds.
INTERVAL_SECONDS: Final = 60.0


def transport_reason(error: BaseException) -> str:
    """Why a connection failed, in the operating system's words where it gave them ("Connection refused")."""
    cause = getattr(error, "os_error", None) or error
    number = getattr(cause, "errno", None)
    if isinstance(cause, OSError) and number:
        return os.strerror(number)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    code = getattr(error, "code", None)
    if isinstance(code, int) and not str(error).strip():
        return f"closed with code {code}"
    text = " ".join(str(error).split())
    return text or type(error).__name__


class OutageLog:
    """Rate-limits failure reports by kind: the first in each interval at WARNING, the others at DEBUG."""

    def __init__(self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}
        # discord.py logs from the event loop; the lock only guards against a logging thread.
        self._lock = threading.Lock()

    def report(self, kind: str, message: str) -> None:
        """Log `message` at WARNING unless `kind` was reported in the last interval (then at DEBUG)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._folded[kind] = self._folded.get(kind, 0) + 1
                loud = False
            else:
                self._last[kind] = now
                folded = self._folded.pop(kind, 0)
                loud = True
        if not loud:
            log.debug("%s", message)
        elif folded:
            log.warning("%s (%d more like it in the last minute)", message, folded)
        else:
            log.warning("%s", message)

    def reset(self) -> None:
        """Forget every report (a new process, or a test)."""
        with self._lock:
            self._last.clear()
            self._folded.clear()


# One per process: every part of the bot reports into the same minute.
outages = OutageLog()
