"""Monitoring end to end: /metrics counts what the bot did, /healthz says whether its gateway and database answer."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.cli_support import cli_env
from tests.conftest import World
from tests.fakes.discord_server import FakeDiscord

__all__ = ["cli_env"]  # a fixture a test below uses by name

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(bot: Any) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    async with aiohttp.ClientSession() as session, session.get(f"{bot.monitoring.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def health(bot: Any) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of /healthz."""
    async with aiohttp.ClientSession() as session, session.get(f"{bot.monitoring.url}/healthz") as response:
        return response.status, await response.json()


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_a_say_and_its_cached_repeat(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    text = "Counting what the bot does."
    first = await world.say(text=text, voice="Jenny")
    await first.wait_final()
    assert "credits" in first.content()
    repeat = await world.say(text=text, voice="Jenny")
    await repeat.wait_final()
    assert "from cache" in repeat.content()
    refused = await world.say(text=text, rate="fast!!")
    await refused.wait_final()

    samples = await scrape(bot)
    assert value(samples, "unmixr_bot_commands_total", command="say", outcome="ok") == 2
    assert value(samples, "unmixr_bot_commands_total", command="say", outcome="refused") == 1
    assert value(samples, "unmixr_bot_commands_total", command="say", outcome="error") == 0
    charged = sum(request.json["text"] and len(request.json["text"]) for request in world.tts_requests())
    assert charged == len(text)
    assert value(samples, "unmixr_bot_credits_spent_total", kind="prebuilt") == charged
    assert value(samples, "unmixr_bot_credits_spent_total", kind="voice_cloning") == 0
    assert value(samples, "unmixr_bot_cache_misses_total") == 1
    assert value(samples, "unmixr_bot_cache_hits_total") == 1
    assert value(samples, "unmixr_bot_upstream_requests_total", endpoint="/short-tts/", status="200") == 1
    assert value(samples, "unmixr_bot_upstream_requests_total", endpoint="{audio_url}", status="200") == 1
    assert value(samples, "unmixr_bot_upstream_requests_total", endpoint="/voice-list/", status="200") >= 1
    assert value(samples, "unmixr_bot_upstream_seconds_count", endpoint="/short-tts/") == 1
    # Endpoints are path templates only: no uuid or audio URL ever becomes a label value.
    endpoints = {dict(labels).get("endpoint") for _name, labels in samples if dict(labels).get("endpoint")}
    assert endpoints <= {
        "/voice-list/",
        "/voice/{uuid}/",
        "/cloned-voice-list/",
        "/credit-balance/",
        "/short-tts/",
        "/clone-voice/",
        "{audio_url}",
    }
    assert value(samples, "unmixr_bot_upstream_concurrency") == bot.unmixr.limiter.limit == 8
    assert value(samples, "unmixr_bot_guilds") == 1
    assert value(samples, "unmixr_bot_voice_connections") == 0
    assert value(samples, "unmixr_bot_queued_clips") == 0
    latency = value(samples, "unmixr_bot_gateway_latency_seconds", shard="0")
    assert 0 < latency < 5


async def test_metrics_operators_alert_on(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    said = await world.say(text="Timing what the bot does.")
    await said.wait_final()
    await bot.audio_cache.flush()
    balance = await world.slash("balance", member=world.admin)
    await balance.wait_final()
    budget = await world.slash("settings", {"characters": 5}, subcommand="budget", member=world.admin)
    await budget.wait_final()
    refused = await world.say(text="This is longer than five credits.")
    await refused.wait_final()
    assert "budget" in refused.content()
    wrong = await world.say(text="Wrong rate.", rate="fast!!")
    await wrong.wait_final()

    samples = await scrape(bot)
    # Acknowledgement and answer time per command, in a histogram.
    assert value(samples, "unmixr_bot_command_seconds_count", command="say", phase="ack") == 3
    assert value(samples, "unmixr_bot_command_seconds_count", command="say", phase="answer") == 3
    ack = value(samples, "unmixr_bot_command_seconds_sum", command="say", phase="ack")
    answered = value(samples, "unmixr_bot_command_seconds_sum", command="say", phase="answer")
    assert 0 < ack <= answered
    assert value(samples, "unmixr_bot_command_seconds_bucket", command="say", phase="ack", le="0.1") >= 1
    assert value(samples, "unmixr_bot_command_seconds_count", command="balance", phase="answer") == 1
    # A budget refusal is counted apart from other refusals.
    assert value(samples, "unmixr_bot_commands_total", command="say", outcome="budget") == 1
    assert value(samples, "unmixr_bot_commands_total", command="say", outcome="refused") == 1
    # The credits left, as /balance just read them.
    left = world.unmixr.prebuilt_chars
    assert f"{left:,} prebuilt characters" in balance.content()
    assert value(samples, "unmixr_bot_credits_remaining", kind="prebuilt") == left
    assert value(samples, "unmixr_bot_credits_remaining", kind="voice_cloning") == world.unmixr.cloned_chars
    # The audio cache's size, and the build.
    cached = value(samples, "unmixr_bot_audio_cache_bytes", tier="local")
    assert cached == bot.audio_cache.total_bytes > 0
    assert value(samples, "unmixr_bot_build_info", version=importlib.metadata.version("unmixr-discord")) == 1


async def test_a_second_bot_in_the_same_process_has_its_own_counters(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    said = await world.say(text="Only once.")
    await said.wait_final()
    assert value(await scrape(bot), "unmixr_bot_commands_total", command="say", outcome="ok") == 1
    await world.stop_bot()
    bot = await world.start_bot(metrics_port=0)
    assert value(await scrape(bot), "unmixr_bot_commands_total", command="say", outcome="ok") == 0


async def wait_for_health(bot: Any, wanted: int, timeout: float = 30.0) -> dict[str, Any]:
    """Poll /healthz until it answers with the wanted status; return its body."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await health(bot)
        if status == wanted:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz stayed {status}: {body}")
        await asyncio.sleep(0.05)


async def test_healthz_fails_while_the_gateway_is_down_and_recovers(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    status, body = await health(bot)
    assert status == 200
    assert body == {"status": "ok", "checks": ["gateway", "database", "unmixr"], "shards": [0]}

    world.discord.refuse_gateway = True
    await world.discord.disconnect_gateway(4000)
    body = await wait_for_health(bot, 503)
    assert body == {"status": "fail", "failing": ["gateway"], "shards": [0], "disconnected_shards": [0]}

    world.discord.refuse_gateway = False
    body = await wait_for_health(bot, 200)
    assert body["status"] == "ok"


async def test_healthz_names_the_database_when_it_does_not_answer(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    await bot.storage.close()
    status, body = await health(bot)
    assert status == 503
    assert body == {"status": "fail", "failing": ["database"], "shards": [0], "disconnected_shards": []}


async def test_healthz_names_unmixr_while_it_rejects_the_key_and_recovers(world: World) -> None:
    bot = await world.start_bot(metrics_port=0)
    assert (await health(bot))[0] == 200
    key = world.unmixr.api_key
    world.unmixr.api_key = "revoked-" + key  # the operator's key revoked on Unmixr's side
    refused = await world.slash("balance", member=world.admin)
    await refused.wait_final()
    status, body = await health(bot)
    assert status == 503
    assert body == {"status": "fail", "failing": ["unmixr"], "shards": [0], "disconnected_shards": []}
    # Unmixr merely down is not the operator's to fix: the check stays as it was.
    world.unmixr.api_key = key
    answered = await world.slash("balance", member=world.admin)
    await answered.wait_final()
    assert (await health(bot))[0] == 200
    world.unmixr.reset_next(n=10, endpoint="/credit-balance/")
    down = await world.slash("balance", member=world.admin)
    await down.wait_final()
    assert "could not reach Unmixr" in down.content()
    assert (await health(bot))[0] == 200


async def test_a_bot_process_serves_metrics_and_sees_real_heartbeat_latency(
    cli_env: dict[str, str], tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    # In another process, an ack that arrives before discord.py's keep-alive thread has noted its send time reads
    # as a whole interval late (at Discord's 41 s interval: "Can't keep up ... 41 s behind"). The stand-in answers
    # after a network-like pause, so the measured latency is that pause, not the interval.
    discord_fake.heartbeat_interval_ms = 1000
    env = {**cli_env, "METRICS_PORT": "0", "LOG_LEVEL": "INFO"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
            assert line, "".join(log)
            log.append(line)
            found = re.search(r"monitoring on (http://\S+) ", line)
            url = found.group(1) if found else None
        reader = asyncio.create_task(_collect(process.stderr, log))
        await discord_fake.wait_until_connected(timeout=20)
        latencies: list[float] = []
        async with aiohttp.ClientSession() as session:
            for _ in range(6):
                await asyncio.sleep(1.0)
                async with session.get(f"{url}/metrics") as response:
                    found = re.search(r'unmixr_bot_gateway_latency_seconds\{shard="0"\} (\S+)', await response.text())
                assert found is not None
                latencies.append(float(found.group(1)))
            async with session.get(f"{url}/healthz") as response:
                assert response.status == 200
        assert sorted(latencies)[len(latencies) // 2] < 0.5, latencies
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
    await reader
    assert process.returncode == 0, "".join(log)
    assert not any("Can't keep up" in line or "Traceback" in line for line in log), "".join(log)


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode())
