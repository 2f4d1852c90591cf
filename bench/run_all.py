"""Run every benchmark in turn, each in its own process, then print one table of figures against targets.

Run: python -m bench.run_all [name ...]   (names: ack_latency say_overhead say_cost long_text cache memory
                                          readout upstream_load queued_credits autocomplete clone_checks
                                          fitted_audio database voice_scale)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import RESULT_PREFIX

BENCHMARKS = (
    "ack_latency",
    "say_overhead",
    "say_cost",
    "long_text",
    "cache",
    "memory",
    "readout",
    "upstream_load",
    "queued_credits",
    "autocomplete",
    "clone_checks",
    "fitted_audio",
    "database",
    "voice_scale",
)
TIMEOUT_SECONDS = 240
# voice_scale runs five rounds, each with its own bot process (about 3 minutes on a loaded machine); say_cost three
# rounds of both bots (about 4 minutes).
LONGER_TIMEOUTS = {"voice_scale": 600, "say_cost": 600}
REPOSITORY = Path(__file__).resolve().parent.parent


def run_one(name: str) -> tuple[dict[str, Any] | None, float, str]:
    """Run one benchmark, echoing its output; returns its result line's payload, its time and any failure."""
    print(f"\n##### python -m bench.{name}", flush=True)
    started = time.monotonic()
    timeout = LONGER_TIMEOUTS.get(name, TIMEOUT_SECONDS)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout if isinstance(error.stdout, str) else ""
        print(output)
        return None, time.monotonic() - started, f"timed out after {timeout} s"
    elapsed = time.monotonic() - started
    result: dict[str, Any] | None = None
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line)
    if completed.returncode != 0 or result is None:
        print(completed.stderr[-4000:], file=sys.stderr)
        return result, elapsed, f"exit status {completed.returncode}"
    return result, elapsed, ""


def shown(figure: dict[str, Any]) -> str:
    """A figure's value with its unit, as the benchmark printed it."""
    value, unit = figure["value"], figure["unit"]
    if unit == "x":
        return f"{value:.2f}x"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f} {unit}".strip()
    return f"{value:,.0f} {unit}".strip()


def main() -> None:
    """Run the chosen (default: all) benchmarks and print the summary."""
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        sys.exit(2)
    rows: list[tuple[str, str, str, str, str]] = []
    timings: list[str] = []
    for name in names:
        result, elapsed, failure = run_one(name)
        timings.append(f"{name} {elapsed:.0f} s")
        if result is None:
            rows.append((name, "(no figures)", "", "", f"FAILED: {failure}"))
            continue
        for figure in result["figures"]:
            if not figure.get("summary"):
                continue
            met = figure["met"]
            verdict = "info" if met is None else ("met" if met else "NOT MET")
            rows.append((name, figure["name"], shown(figure), figure["goal"], verdict))
        if failure:
            rows.append((name, "(run)", "", "", f"FAILED: {failure}"))
    header = ("benchmark", "figure", "value", "target", "result")
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]
    print("\n===== summary: figures against PRODUCT.md's targets (2-core machine, local stand-ins)")
    for row in [header, tuple("-" * width for width in widths), *rows]:
        cells = [
            cell.rjust(width) if index == 2 else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    print("time: " + ", ".join(timings))


if __name__ == "__main__":
    main()
