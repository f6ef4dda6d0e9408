"""`optouts bench` runs end to end at a small size and prints every figure, alone and against a baseline
commit (their values are not asserted: performance is measured, never tested)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import ROOT, TEST_TIMEOUTS
from tests.integration.test_pipeline import eventually
from tests.integration.test_run import alive

pytestmark = pytest.mark.integration

THROUGHPUTS = ["raw_consume_events_per_s", "pipeline_events_per_s", "replay_events_per_s"]
LOWER_IS_BETTER = ["stop_visible_p50_ms", "stop_visible_p99_ms", "read_p99_ms", "rss_mb"]
FIGURES = {
    "n",
    "persons",
    "raw_consume_events_per_s",
    "pipeline_events_per_s",
    "stop_visible_p50_ms",
    "stop_visible_p99_ms",
    "replay_events_per_s",
    "read_p99_ms",
    "rss_mb",
    "workers",
    "standby_replicas",
    "cores",
    "broker",
}


SMALL = [
    "-n", "3000", "--persons", "1000", "--steady-persons", "300", "--samples", "20",
    "--background-rate", "100", "--read-rate", "50", "--read-seconds", "1",
]  # fmt: skip


def bench_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}  # its own brokers
    env.update(TEST_TIMEOUTS, PYTHONPATH=str(ROOT))
    return env


def bench(output_dir: Path, log: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = bench_env()
    result = subprocess.run(
        [sys.executable, "-m", "streams", "bench", *SMALL, *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (output_dir / log).write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_bench_prints_progress_and_a_json_line_with_every_figure_for_each_mix(output_dir: Path) -> None:
    result = bench(output_dir, "bench.log")
    assert "[bench] pipeline:" in result.stderr and "[bench] replay:" in result.stderr
    cold, steady = json_lines(result)
    for figures, mix, persons in [(cold, "cold", 1000), (steady, "steady", 300)]:
        assert set(figures) == FIGURES | {"mix"}
        assert (figures["mix"], figures["n"], figures["persons"]) == (mix, 3000, persons)
        assert figures["pipeline_events_per_s"] > 0 and figures["raw_consume_events_per_s"] > 0
        assert figures["replay_events_per_s"] > 0
    assert cold["broker"] != steady["broker"]  # each mix on an empty log


def test_bench_against_a_baseline_prints_both_sides_and_their_ratios(output_dir: Path) -> None:
    # HEAD against itself: a worktree of it, run with this virtualenv, back to back with this checkout.
    result = bench(output_dir, "bench-baseline.log", "--baseline", "HEAD")
    lines = json_lines(result)
    runs = [line for line in lines if line["side"] != "ratios"]
    assert [(run["mix"], run["side"]) for run in runs] == [
        ("cold", "this"),
        ("cold", "baseline"),
        ("steady", "this"),
        ("steady", "baseline"),
    ]
    for run in runs:
        assert set(run) == FIGURES | {"mix", "side", "commit", "round"}
        assert run["persons"] == (1000 if run["mix"] == "cold" else 300)
    assert len({run["broker"] for run in runs}) == len(runs)  # a fresh broker each
    ratios = {line["mix"]: line for line in lines if line["side"] == "ratios"}
    assert set(ratios) == {"cold", "steady"}
    for line in ratios.values():
        assert line["constraints"]  # "the same" unless the working tree's constraints.txt changed
        assert set(line) >= {f"{figure}_this_over_baseline" for figure in THROUGHPUTS}
        assert set(line) >= {f"{figure}_baseline_over_this" for figure in LOWER_IS_BETTER}
        assert all(line[f"{figure}_this_over_baseline"] > 0 for figure in THROUGHPUTS)
        assert line["rss_mb_baseline_over_this"] > 0
    worktree = re.search(r"the baseline's worktree: (\S+)", result.stderr)
    assert worktree and not Path(worktree[1]).exists()


def test_a_bench_killed_with_sigkill_takes_its_worker_and_its_broker_with_it(output_dir: Path) -> None:
    # No handler runs on kill -9 (nor on a plain kill, which the bench does not catch): the kernel
    # stops what it started, or its worker goes on folding on the cores the next run measures with.
    log = output_dir / "bench-sigkill.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "bench", "--mixes", "cold", *SMALL],
        env=bench_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while "the worker is folding" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True, timeout=10)
        children = [int(pid) for pid in found.stdout.split()]
        assert len(children) == 2  # the embedded broker and the worker
        process.kill()
        process.wait(10)
        eventually(lambda: not any(alive(pid) for pid in children), timeout=40)
    finally:
        process.kill()
        process.wait(10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
