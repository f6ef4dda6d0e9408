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

from streams.devtools import replay_bench
from streams.devtools.replay_bench import (
    BenchReplayError,
    ChildRun,
    KilledReplay,
    StageProgress,
    check_failures,
    check_line,
    count_list,
    growth_line,
    kill_part_way,
    kill_point,
    last_json_line,
    parent_of,
    parse_vm_hwm_kb,
    plan,
    run_child,
    run_line,
    running_since,
    session_members,
    session_of,
    size_label,
    size_line,
    stage_progress,
    vm_hwm_kb,
)
from streams.settings import Settings


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


# A /proc/<pid>/stat text: pid 4242, parent 4200, session 4100, started 987654 ticks after boot.
STAT = "4242 (python3 -m (x)) {state} 4200 4242 4100 0 -1 4194560 1 0 0 0 5 2 0 0 20 0 3 0 987654 1 2"


def test_the_parent_is_the_fourth_field_of_proc_stat_and_the_start_time_the_twenty_second() -> None:
    assert parent_of(STAT.format(state="S")) == 4200
    assert running_since(STAT.format(state="S")) == "987654"
    assert running_since(STAT.format(state="R")) == "987654"


@pytest.mark.parametrize("state", ["Z", "X"])
def test_a_zombie_or_dead_process_is_not_running(state: str) -> None:
    assert running_since(STAT.format(state=state)) is None


STAGE_1_AT_64 = (
    "[part 0/2] stage 1, sms-messaging-events[0]: 31,840 of 50,112 events (64%), 6,270 events/s, ETA 3 s"
)


def test_a_progress_line_gives_its_stage_and_percentage_with_or_without_a_part_in_front() -> None:
    assert stage_progress(STAGE_1_AT_64) == StageProgress(1, 64)
    assert stage_progress(
        "stage 2, sms-person-events[3]: 1,000 of 2,360 events (42%), 7,477 events/s, ETA 0 s"
    ) == StageProgress(2, 42)
    assert stage_progress(
        "[part 11/12] stage 1, sms-messaging-events[10]: 0 of 0 events (100%), 0 events/s, ETA 0 s"
    ) == StageProgress(1, 100)


def test_a_partitions_last_line_is_progress_without_a_percentage() -> None:
    last = "[part 1/2] stage 2, sms-person-events[3]: 2,360 events in 0.3 s (7,477 events/s)"
    assert stage_progress(last) == StageProgress(2, None)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "replay: going on with the replay into generation 2 that was stopped part-way (generation 1 answers)",
        "[part 1/2] sms-person-events[0]: waiting for stage 1 of phone partitions 1, 3",
        "[bench-replay] producing: 50,000 of 2,000,000 events (2%), 50,000 events/s, ETA 39 s",
        "verified 200 persons of generation 2 against the log (store, sms-opt-outs): all agree",
        "  stage 1, sms-messaging-events[0]: 31,840 of 50,112 events (64%)",  # not at the line's start
        "[part 0/2] Traceback (most recent call last):",
    ],
)
def test_a_line_that_is_not_progress_gives_none(line: str) -> None:
    assert stage_progress(line) is None


def test_the_replay_is_killed_in_stage_1_from_half_way_through_a_partition() -> None:
    assert kill_point(StageProgress(1, 49)) is None
    assert kill_point(StageProgress(1, 50)) == "stage 1"
    assert kill_point(StageProgress(1, 100)) == "stage 1"
    assert kill_point(StageProgress(1, None)) is None  # a partition's last line shows no percentage
    assert kill_point(None) is None


def test_a_stage_1_too_short_for_a_line_half_way_gets_the_replay_killed_at_stage_2s_first_line() -> None:
    assert kill_point(StageProgress(2, 0)) == "stage 2"
    assert kill_point(StageProgress(2, None)) == "stage 2"


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


def check_runs(
    resumed: object = True, verify_exit: int = 0, last: str = "...: all agree"
) -> tuple[ChildRun, ChildRun]:
    resume = ChildRun(wall_s=3.456, returncode=0, peak_rss_mb=90.0, stdout=json.dumps({"resumed": resumed}))
    verified = ChildRun(wall_s=12.345, returncode=verify_exit, peak_rss_mb=88.88, stdout=f"note\n{last}\n\n")
    return resume, verified


def test_a_check_line_has_the_kill_the_resumed_replay_and_verify() -> None:
    line = check_line(2000, KilledReplay("stage 1", 64, 2, 0), *check_runs())
    assert line == {
        "n": 2000,
        "run": "check",
        "killed_at": "stage 1",
        "killed_at_percent": 64,
        "parts_at_kill": 2,
        "parts_outlived_parent": 0,
        "resumed": True,
        "resume_wall_s": 3.46,
        "verify_exit": 0,
        "verify_wall_s": 12.35,
        "verify_peak_rss_mb_observed": 88.9,
        "verify_last_line": "...: all agree",
    }
    assert check_failures(line) == []


def test_a_check_fails_for_each_of_a_part_left_running_no_resume_and_a_difference() -> None:
    killed = KilledReplay("stage 2", None, 2, 1)
    line = check_line(2000, killed, *check_runs(resumed="yes", verify_exit=1, last="...: 3 persons differ"))
    assert line["resumed"] is False  # only true is true
    assert check_failures(line) == [
        "2,000 events: 1 part(s) still ran 15 s after the replay that started them was killed",
        "2,000 events: the replay run again did not resume the one killed",
        "2,000 events: verify exited with 1: ...: 3 persons differ",
    ]


def test_a_check_fails_when_nothing_was_killed_or_no_part_was_there_to_die() -> None:
    ended = check_line(10, KilledReplay(None, None, 0, 0), *check_runs())
    assert check_failures(ended) == ["10 events: the replay ended before it could be killed part-way"]
    alone = check_line(10, KilledReplay("stage 1", 50, 0, 0), *check_runs())
    assert check_failures(alone) == [
        "10 events: the replay had no part running when it was killed (nothing to die with it)"
    ]


def test_a_failed_check_makes_the_bench_exit_1_after_every_size_saying_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def measured(
        args: argparse.Namespace, settings: Settings, n: int, work: Path
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        verify = check_runs(verify_exit=1, last="...: 3 persons differ") if n == 1000 else check_runs()
        check = check_line(n, KilledReplay("stage 1", 60, 2, 0), *verify)
        return [run(1, 10.0, 50.0, 55.0)], check

    monkeypatch.setattr(replay_bench, "measure_size", measured)
    args = argparse.Namespace(sizes=[1000, 2000], keep=False)
    assert replay_bench.bench_replay_command(args, Settings(kafka_brokers="")) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["n"] for line in out.splitlines()[:2]] == [1000, 2000]  # both sizes ran
    assert "[bench-replay] the check failed: 1,000 events: verify exited with 1: ...: 3 persons differ" in err
    assert "2,000 events" not in err


# A stand-in for `optouts replay --processes 2`: one part that sets (or not) PR_SET_PDEATHSIG, as
# streams.rebuild.processes.die_with_parent does, then progress lines on stderr, then a long wait.
PART = (
    "import ctypes, signal, sys, time\n"
    "if sys.argv[1] == 'dies': ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
    "print('ready', flush=True); time.sleep(60)"
)


def fake_replay(part: str, *lines: str, then: str = "time.sleep(60)") -> list[str]:
    script = (
        "import subprocess, sys, time\n"
        f"part = subprocess.Popen([sys.executable, '-c', {PART!r}, {part!r}], stdout=subprocess.PIPE)\n"
        "part.stdout.readline()\n"
        "print(part.pid, flush=True)\n"
        f"for line in {list(lines)!r}:\n"
        "    print(line, file=sys.stderr, flush=True)\n"
        f"{then}\n"
    )
    return [sys.executable, "-c", script]


linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


@linux_only
def test_the_replay_alone_is_killed_half_way_through_stage_1_and_its_part_dies_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at_20 = (
        "[part 0/2] stage 1, sms-messaging-events[0]: 10,000 of 50,112 events (20%), 6,270 events/s, ETA 6 s"
    )
    command = fake_replay("dies", at_20, STAGE_1_AT_64, "[part 0/2] never read")
    killed = kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=60)
    assert killed == KilledReplay("stage 1", 64, 1, 0)
    assert f"{at_20}\n{STAGE_1_AT_64}\n" in capsys.readouterr().err  # relayed as they came


@linux_only
def test_a_part_that_outlives_the_killed_replay_is_counted_then_killed_with_its_session(
    tmp_path: Path,
) -> None:
    command = fake_replay("stays", STAGE_1_AT_64)
    started = time.monotonic()
    killed = kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=60, outlive=0.5)
    assert killed == KilledReplay("stage 1", 64, 1, 1)
    assert time.monotonic() - started < 10
    assert not alive(int((tmp_path / "out").read_text()), within=5.0)


@linux_only
def test_without_stage_1_half_way_the_replay_is_killed_at_the_first_line_of_stage_2(tmp_path: Path) -> None:
    command = fake_replay(
        "dies",
        "replay: generation 0 answers until the switch; building generation 1",
        "[part 0/2] stage 1, sms-messaging-events[0]: 800 events in 0.1 s (8,000 events/s)",
        "[part 0/2] stage 2, sms-person-events[0]: 90 events in 0.1 s (900 events/s)",
    )
    killed = kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=60)
    assert killed == KilledReplay("stage 2", None, 1, 0)


@linux_only
def test_a_replay_that_ends_before_a_point_to_kill_it_at_is_no_kill(tmp_path: Path) -> None:
    command = fake_replay(
        "dies", "stage 1, sms-messaging-events[0]: 8 events in 0.1 s (80 events/s)", then=""
    )
    assert kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=60) == KilledReplay(
        None, None, 0, 0
    )


@linux_only
def test_a_replay_that_fails_before_a_point_to_kill_it_at_fails_the_bench(tmp_path: Path) -> None:
    command = fake_replay("dies", "replay failed, nothing was switched: no brokers", then="sys.exit(1)")
    with pytest.raises(BenchReplayError, match="exited with 1 before it could be killed part-way"):
        kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=60)


@linux_only
def test_a_replay_with_no_point_to_kill_it_at_within_the_timeout_is_killed_with_its_parts(
    tmp_path: Path,
) -> None:
    command = fake_replay("stays", "[part 0/2] stage 1, sms-messaging-events[0]: 1 of 9 events (11%)")
    started = time.monotonic()
    with pytest.raises(BenchReplayError, match="not at a point to kill it at within 1 s"):
        kill_part_way(command, dict(os.environ), tmp_path / "out", timeout=1)
    assert time.monotonic() - started < 10
    assert not alive(int((tmp_path / "out").read_text()), within=5.0)
