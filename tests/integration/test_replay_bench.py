"""`optouts bench-replay` runs end to end on a small log and prints every figure (their values are not
asserted beyond being measured: performance is measured, never tested)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import ROOT

pytestmark = pytest.mark.integration

RUN_FIGURES = {
    "n",
    "persons",
    "run",
    "processes",
    "wall_s",
    "replay_s",
    "events_per_s",
    "messaging_events",
    "person_events",
    "appended",
    "peak_rss_mb",
    "peak_rss_mb_observed",
    "parts",
    "cores",
}


def test_bench_replay_prints_a_line_per_replay_and_one_for_the_log(output_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}  # its own broker
    env.update(PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "streams", "bench-replay", "--sizes", "2000", "--processes", "1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (output_dir / "bench-replay.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    first, measured, size = [json.loads(line) for line in result.stdout.splitlines()]
    for run, kind in [(first, "first"), (measured, "measured")]:
        assert set(run) == RUN_FIGURES
        assert (run["n"], run["persons"], run["run"], run["processes"]) == (2000, 200, kind, 1)
        assert run["messaging_events"] == 2000
        assert run["wall_s"] > 0 and run["peak_rss_mb_observed"] > 0
    # The first replay appends what stage 1 derives to the empty person log; the next finds it there.
    assert first["appended"] > 0 and measured["appended"] == 0
    assert size["n"] == 2000 and size["peak_rss_mb_observed_max"] > 0
    assert "speedup_2_vs_1" not in size  # one process measured: nothing to compare it with
    assert "[bench-replay] 2,000 events: the measured replay, --processes 1" in result.stderr
