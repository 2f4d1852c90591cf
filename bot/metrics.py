"""Prometheus metrics of one bot: its own registry, every metric object, and one-line ways to record events.

Each bot owns a `Metrics` (never the library's global registry), so several bots can run in one process (the
tests do). The code that knows an event records it with one call here; gauges that describe state (servers,
voice connections, queued clips, gateway latency) are read when Prometheus scrapes.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Callable, Mapping
from typing import Final, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics", "Outcome"]

Outcome = Literal["ok", "refused", "budget", "error"]
Phase = Literal["ack", "answer"]
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Unmixr answers catalogue reads in well under a second and synthesis in seconds (its timeout is 25 s).
_UPSTREAM_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
# Acknowledgements are due within 100 ms (the product's target) and must come within Discord's 3 s; answers
# take from milliseconds (from the cache) to tens of seconds (a long text, a clone).
_COMMAND_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _version() -> str:
    try:
        return importlib.metadata.version("unmixr-discord")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"  # run from a source tree that was never installed


class Metrics:
    """The bot's registry and metric objects; `exposition()` is the text Prometheus scrapes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.commands = Counter(
            "unmixr_bot_commands",
            "Application commands finished, by outcome: ok, refused (a known one-sentence answer such as bad "
            "input), budget (refused for a credit budget), error (unexpected).",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "unmixr_bot_command_seconds",
            "Time from receiving an application command to acknowledging it (phase ack: deferred or answered) and "
            "to its final answer (phase answer).",
            ["command", "phase"],
            buckets=_COMMAND_BUCKETS,
            registry=registry,
        )
        self.upstream_requests = Counter(
            "unmixr_bot_upstream_requests",
            "HTTP requests to Unmixr, every attempt, by the reference's path template and the HTTP status "
            "(or timeout, connection_error).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "unmixr_bot_upstream_seconds",
            "Time of each HTTP request to Unmixr until its body was read, by path template.",
            ["endpoint"],
            buckets=_UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.credits_spent = Counter(
            "unmixr_bot_credits_spent",
            "Credits charged by Unmixr (its credit_usage, or the estimate when it did not say), by kind.",
            ["kind"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "unmixr_bot_cache_hits", "Chunks served from the audio cache (no upstream call).", registry=registry
        )
        self.cache_misses = Counter(
            "unmixr_bot_cache_misses", "Chunks not in the audio cache, so sent to Unmixr.", registry=registry
        )
        self.audio_cache_bytes = Gauge(
            "unmixr_bot_audio_cache_bytes",
            "Bytes of audio in the audio cache, by tier: local (this process's folder), postgresql (shared by every "
            "process; as this process last read it).",
            ["tier"],
            registry=registry,
        )
        self.upstream_concurrency = Gauge(
            "unmixr_bot_upstream_concurrency",
            "The adaptive limit of concurrent /short-tts/ requests now.",
            registry=registry,
        )
        self.voice_connections = Gauge(
            "unmixr_bot_voice_connections", "Voice channels the bot is connected to.", registry=registry
        )
        self.queued_clips = Gauge(
            "unmixr_bot_queued_clips", "Clips in the voice queues, the playing ones included.", registry=registry
        )
        self.guilds = Gauge("unmixr_bot_guilds", "Servers this process holds.", registry=registry)
        self.credits_remaining = Gauge(
            "unmixr_bot_credits_remaining",
            "Characters left on the Unmixr account at the last balance read (at start, every 15 minutes and on "
            "/balance), by kind: prebuilt, voice_cloning.",
            ["kind"],
            registry=registry,
        )
        self.build = Info("unmixr_bot_build", "The bot's version.", registry=registry)
        self.build.info({"version": _version()})
        self.gateway_latency = Gauge(
            "unmixr_bot_gateway_latency_seconds",
            "Time between a gateway heartbeat and its acknowledgement, by shard.",
            ["shard"],
            registry=registry,
        )
        # Both kinds exist from the start, at 0; the children are kept, as `labels()` looks them up under a lock.
        self._spent_prebuilt = self.credits_spent.labels(kind="prebuilt")
        self._spent_cloned = self.credits_spent.labels(kind="voice_cloning")
        self._upstream_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._before_scrape: list[Callable[[], None]] = []

    def command(self, name: str, outcome: Outcome) -> None:
        """Count one finished application command."""
        self.commands.labels(command=name, outcome=outcome).inc()

    def command_time(self, name: str, phase: Phase, seconds: float) -> None:
        """Record how long a command took to be acknowledged, or to be answered."""
        self.command_seconds.labels(command=name, phase=phase).observe(seconds)

    def balance(self, *, prebuilt: int, voice_cloning: int) -> None:
        """Set the credits left, as the balance was just read."""
        self.credits_remaining.labels(kind="prebuilt").set(prebuilt)
        self.credits_remaining.labels(kind="voice_cloning").set(voice_cloning)

    def upstream(self, endpoint: str, status: str, seconds: float) -> None:
        """Count one HTTP request to Unmixr (the Unmixr client's observer)."""
        children = self._upstream_children.get((endpoint, status))
        if children is None:
            children = self._upstream_children[endpoint, status] = (
                self.upstream_requests.labels(endpoint=endpoint, status=status),
                self.upstream_seconds.labels(endpoint=endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def spent(self, *, prebuilt: int, voice_cloning: int) -> None:
        """Count credits Unmixr charged for one chunk."""
        if prebuilt > 0:
            self._spent_prebuilt.inc(prebuilt)
        if voice_cloning > 0:
            self._spent_cloned.inc(voice_cloning)

    def cache(self, *, hit: bool, chunks: int = 1) -> None:
        """Count chunks looked up in the audio cache."""
        (self.cache_hits if hit else self.cache_misses).inc(chunks)

    def latencies(self, by_shard: Mapping[int, float]) -> None:
        """Set each shard's gateway latency (a shard that has not measured one yet is left out)."""
        for shard_id, latency in by_shard.items():
            if math.isfinite(latency):
                self.gateway_latency.labels(shard=str(shard_id)).set(latency)

    def before_scrape(self, sample: Callable[[], None]) -> None:
        """Run `sample` before every exposition, to read state into gauges that need labels."""
        self._before_scrape.append(sample)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        for sample in self._before_scrape:
            sample()
        return generate_latest(self.registry)
