"""The monitoring endpoints: `GET /healthz` and `GET /metrics`, served inside the bot's own event loop.

Neither endpoint has authentication: bind them to a private address (`METRICS_HOST`, 127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# A database that takes longer than this to answer one small query is not healthy.
DATABASE_TIMEOUT: Final = 3.0
# What /healthz checks: every shard's gateway, the database, and Unmixr accepting the key.
CHECKS: Final = ("gateway", "database", "unmixr")


class StartupError(Exception):
    """Something the bot needs at start cannot be had; the message is one line for the operator."""


class _Shard(Protocol):
    def is_closed(self) -> bool: ...


class _Storage(Protocol):
    async def ping(self) -> None: ...


class _Unmixr(Protocol):
    key_rejected: bool


class Monitored(Protocol):
    """What the health check reads of the bot (an AutoShardedBot with storage)."""

    @property
    def held_shards(self) -> tuple[int, ...]: ...

    @property
    def shards(self) -> Mapping[int, _Shard]: ...

    @property
    def storage(self) -> _Storage: ...

    @property
    def unmixr(self) -> _Unmixr: ...


@dataclass(frozen=True, slots=True)
class Health:
    """The checks that fail (none when healthy) and the shards this process holds."""

    failing: list[str]
    shards: list[int]
    disconnected: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failing

    def body(self) -> dict[str, Any]:
        """The JSON answer: the checks' names only, never an error's text."""
        if self.ok:
            return {"status": "ok", "checks": list(CHECKS), "shards": self.shards}
        return {
            "status": "fail",
            "failing": self.failing,
            "shards": self.shards,
            "disconnected_shards": self.disconnected,
        }


async def check_health(bot: Monitored) -> Health:
    """Every shard's gateway connected, the database answering a small query, and Unmixr accepting the key.

    Unmixr being slow or down does not fail it (the bot answers members that it is, and recovers by itself); a
    refused key does, since nothing but the operator can fix that.
    """
    failing: list[str] = []
    held = list(bot.held_shards)
    running = bot.shards
    disconnected = [shard for shard in held if shard not in running or running[shard].is_closed()]
    if not held or disconnected:
        failing.append("gateway")
    storage = getattr(bot, "storage", None)
    try:
        if storage is None:
            raise RuntimeError("storage is not open yet")
        async with asyncio.timeout(DATABASE_TIMEOUT):
            await storage.ping()
    except Exception as error:  # any failure is the same answer: the database does not answer
        log.warning("health check: the database did not answer (%s)", type(error).__name__)
        failing.append("database")
    unmixr = getattr(bot, "unmixr", None)
    if unmixr is not None and unmixr.key_rejected:
        failing.append("unmixr")
    return Health(failing=failing, shards=held, disconnected=disconnected)


class MonitoringServer:
    """An aiohttp server for /healthz and /metrics on the bot's loop; `start` binds, `close` stops."""

    def __init__(self, bot: Monitored, metrics: Metrics, *, host: str, port: int) -> None:
        self._bot = bot
        self._metrics = metrics
        self.host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the chosen one when started with port 0)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the monitoring server is not started")
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        """The base URL, such as http://127.0.0.1:9100."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; a port that cannot be bound raises StartupError naming it."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except OSError as error:
            await runner.cleanup()
            # aiohttp rewords the error; the errno's own words are the clearest ("Address already in use").
            reason = os.strerror(error.errno) if error.errno else type(error).__name__
            raise StartupError(
                f"Cannot serve monitoring on METRICS_HOST {self.host} port {self._requested_port} ({reason}); "
                "choose a free METRICS_PORT, or leave it unset to turn monitoring off."
            ) from None
        self._runner = runner
        log.info("monitoring on %s (/healthz, /metrics)", self.url)

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        health = await check_health(self._bot)
        return web.json_response(health.body(), status=200 if health.ok else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})
