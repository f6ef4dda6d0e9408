"""How `optouts bench-replay` reads its lists, plans its replays, measures a subprocess from the outside
and turns the replays' figures into its comparison lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams.devtools.replay_bench import (
    BenchReplayError,
    ChildRun,
    count_list,
    growth_line,
    last_json_line,
    parse_vm_hwm_kb,
    plan,
    run_child,
    run_line,
    session_members,
    session_of,
    size_label,
    size_line,
    vm_hwm_kb,
)


def test_a_count_list_is_the_integers_in_the_order_given() -> None:
    assert count_list("1000000,4000000") == [1_000_000, 4_000_000]
    assert count_list(" 2, 1 ,") == [2, 1]
    assert count_list("1_000_000") == [1_000_000]


@pytest.mark.parametrize("text", ["", ",", "1,x", "0", "2,-1", "1,1", "1.5"])
def test_a_count_list_refuses_what_is_not_distinct_positive_integers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        count_list(text)


def test_the_first_replay_is_as_parallel_as_the_most_parallel_measured_one() -> None:
    assert plan([1, 2]) == [("first", 2), ("measured", 1), ("measured", 2)]
    assert plan([4, 1, 2]) == [("first", 4), ("measured", 4), ("measured", 1), ("measured", 2)]


def test_a_size_is_labelled_in_millions_or_thousands_when_it_is_a_whole_number_of_them() -> None:
    assert [size_label(n) for n in (4_000_000, 1_000_000, 2000, 1500, 2_500_000)] == [
        "4m", "1m", "2k", "1500", "2500k",
    ]  # fmt: skip


def run(
    processes: int, wall: float, rss: float | None, observed: float, kind: str = "measured"
) -> dict[str, Any]:
    return {
        "run": kind,
        "processes": processes,
        "wall_s": wall,
        "peak_rss_mb": rss,
        "peak_rss_mb_observed": observed,
    }


def test_the_speedup_of_p_processes_is_the_wall_time_of_one_over_that_of_p() -> None:
    runs = [run(4, 99.0, 500.0, 510.0, "first"), run(1, 60.0, 300.0, 310.0), run(2, 40.0, 200.0, 205.0)]
    runs.append(run(4, 24.0, 150.0, 160.0))
    line = size_line(1000, runs)
    assert line["speedup_2_vs_1"] == 1.5
    assert line["speedup_4_vs_1"] == 2.5
    assert "speedup_1_vs_1" not in line
    # The first replay's memory counts: it is a replay of that log as any other.
    assert line["peak_rss_mb_max"] == 500.0
    assert line["peak_rss_mb_observed_max"] == 510.0


def test_without_a_measured_single_process_there_is_no_speedup_and_a_missing_rss_is_left_out() -> None:
    line = size_line(1000, [run(2, 99.0, None, 80.0, "first"), run(2, 40.0, 70.0, 75.0)])
    assert line == {"n": 1000, "peak_rss_mb_max": 70.0, "peak_rss_mb_observed_max": 80.0}


def test_the_growth_compares_the_largest_log_with_the_smallest_whatever_their_order() -> None:
    sizes = [
        {"n": 4_000_000, "peak_rss_mb_max": 330.0, "peak_rss_mb_observed_max": 340.0},
        {"n": 1_000_000, "peak_rss_mb_max": 300.0, "peak_rss_mb_observed_max": 200.0},
    ]
    assert growth_line(sizes) == {
        "events_growth_4m_vs_1m": 4.0,
        "rss_growth_4m_vs_1m": 1.1,
        "rss_growth_observed_4m_vs_1m": 1.7,
    }


def test_one_size_has_no_growth_and_an_unknown_rss_has_no_ratio() -> None:
    assert growth_line([{"n": 2000, "peak_rss_mb_max": 50.0}]) is None
    line = growth_line([{"n": 2000, "peak_rss_mb_max": None}, {"n": 4000, "peak_rss_mb_max": 60.0}])
    assert line is not None
    assert line["rss_growth_4k_vs_2k"] is None


def test_a_run_line_takes_the_wall_time_and_observed_rss_from_outside_and_the_rest_from_the_summary() -> None:
    summary = {
        "seconds": 9.876,
        "events_per_s": 101_234.56,
        "messaging_events": 1000,
        "person_events": 950,
        "appended": 900,
        "processes": 2,
        "peak_rss_mb": 123.456,
        "parts": [{"part": "0/2", "peak_rss_mb": 100.0, "seconds": 9.0, "other": 1}],
    }
    stdout = "a line of something else\n" + json.dumps(summary) + "\n\n"
    child = ChildRun(wall_s=11.111, returncode=0, peak_rss_mb=130.04, stdout=stdout)
    line = run_line(1000, 100, "measured", 2, child)
    assert line == {
        "n": 1000,
        "persons": 100,
        "run": "measured",
        "processes": 2,
        "wall_s": 11.11,
        "replay_s": 9.88,
        "events_per_s": 101_235,
        "messaging_events": 1000,
        "person_events": 950,
        "appended": 900,
        "peak_rss_mb": 123.5,
        "peak_rss_mb_observed": 130.0,
        "parts": [{"part": "0/2", "peak_rss_mb": 100.0, "seconds": 9.0}],
        "cores": os.cpu_count(),
    }


def test_a_summary_without_the_newer_fields_gives_nulls() -> None:
    child = ChildRun(wall_s=1.0, returncode=0, peak_rss_mb=None, stdout='{"seconds": 1}\n')
    line = run_line(10, 1, "first", 1, child)
    assert line["peak_rss_mb"] is None
    assert line["peak_rss_mb_observed"] is None
    assert line["parts"] == []


@pytest.mark.parametrize(
    "stdout", ["", "replayed into generation 1\n", "[1, 2]\n", '{"seconds": 1}\nnot json\n']
)
def test_a_replay_whose_last_line_is_not_a_json_object_fails_the_bench(stdout: str) -> None:
    with pytest.raises(BenchReplayError):
        last_json_line(stdout)


def test_the_session_is_the_sixth_field_of_proc_stat_even_with_parentheses_in_the_name() -> None:
    assert session_of("1234 (python3) S 1 1234 1230 0 -1 4194560 1000") == 1230
    assert session_of("77 (a) b (c)) R 5 6 7 8") == 7


def test_the_peak_rss_is_read_from_vm_hwm() -> None:
    status = "Name:\tpython3\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n"
    assert parse_vm_hwm_kb(status) == 51234
    assert parse_vm_hwm_kb("Name:\tzombie\nState:\tZ (zombie)\n") is None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_this_process_is_a_member_of_its_session_with_a_peak_rss() -> None:
    assert os.getpid() in session_members(os.getsid(0))
    assert (vm_hwm_kb(os.getpid()) or 0) > 1000


GRANDCHILD = "x = bytearray(150 << 20); x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(1)"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_the_observed_peak_is_the_largest_of_the_child_and_what_it_started(tmp_path: Path) -> None:
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}]); print('{{}}')"
    child = run_child([sys.executable, "-c", parent], dict(os.environ), tmp_path / "out", timeout=60)
    assert child.returncode == 0
    assert child.stdout == "{}\n"
    assert child.peak_rss_mb is not None
    assert 150 < child.peak_rss_mb < 400  # the grandchild's; the parent alone is some 10 MB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_child_past_its_timeout_is_killed_with_all_it_started(tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(60)"
    parent = (
        f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {sleeper!r}]);"
        " print(p.pid, flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(BenchReplayError, match="did not finish within 1 s"):
        run_child([sys.executable, "-c", parent], dict(os.environ), tmp_path / "out", timeout=1)
    assert time.monotonic() - started < 10
    grandchild = int((tmp_path / "out").read_text())
    assert not alive(grandchild, within=5.0)


def alive(pid: int, within: float) -> bool:
    """Whether `pid` still runs after `within` seconds (a zombie waiting for init to reap it does not)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True
