"""`optouts bench-replay` runs end to end on a small log and prints every figure (their values are not
asserted beyond being measured: performance is measured, never tested), then its check passes: a replay
killed part-way, resumed, then verified."""

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
CHECK_FIGURES = {
    "n",
    "run",
    "killed_at",
    "killed_at_percent",
    "parts_at_kill",
    "parts_outlived_parent",
    "resumed",
    "resume_wall_s",
    "verify_exit",
    "verify_wall_s",
    "verify_peak_rss_mb_observed",
    "verify_last_line",
}


def test_bench_replay_prints_a_line_per_replay_then_passes_its_check_and_prints_one_for_the_log(
    output_dir: Path,
) -> None:
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
    first, measured, check, size = [json.loads(line) for line in result.stdout.splitlines()]
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
    # The check: its replay was killed part-way (at 2,000 events most likely at stage 2's first line,
    # stage 1 being too short for a line half-way), its parts died with it, and it resumed. (A part may
    # just have ended when the other's first line of stage 2 gets the replay killed: 1 or 2 parts.)
    assert set(check) == CHECK_FIGURES
    assert check["run"] == "check" and check["killed_at"] in ("stage 1", "stage 2")
    assert check["parts_at_kill"] in (1, 2) and check["parts_outlived_parent"] == 0
    assert check["resumed"] is True and check["resume_wall_s"] > 0
    assert check["verify_exit"] == 0, check["verify_last_line"]
    assert check["verify_last_line"].startswith("verified ") and check["verify_last_line"].endswith(
        ": all agree"
    )
    assert check["verify_peak_rss_mb_observed"] > 0
    # The first and the measured replay built generations 1 and 2 (--no-switch); the check's is 3.
    assert "going on with the replay into generation 3 (" in result.stderr
