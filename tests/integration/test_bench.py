"""`optouts bench` runs end to end at a small size and prints every figure (their values are not
asserted: performance is measured, never tested)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import ROOT, TEST_TIMEOUTS

pytestmark = pytest.mark.integration

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


def test_bench_prints_progress_and_one_json_line_with_every_figure(output_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}  # its own broker
    env.update(TEST_TIMEOUTS, PYTHONPATH=str(ROOT))
    small = ["-n", "3000", "--persons", "1000", "--samples", "20", "--background-rate", "100"]
    result = subprocess.run(
        [sys.executable, "-m", "streams", "bench", *small, "--read-rate", "50", "--read-seconds", "1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (output_dir / "bench.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[bench] pipeline:" in result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == FIGURES
    assert figures["n"] == 3000
    assert figures["pipeline_events_per_s"] > 0 and figures["raw_consume_events_per_s"] > 0
    assert figures["replay_events_per_s"] > 0 and "[bench] replay:" in result.stderr
