"""`optouts bench-replay` (`make bench-replay`): `optouts replay` at the log's real size (issue 19), its
wall time and peak memory per number of processes, on generated logs of several sizes. Prints progress,
then one JSON line per replay, one per size (the speedups) and one comparing the sizes (memory growth).

Each size is a log of its own (a fresh embedded broker, as `optouts bench` gives each mix), replayed by
`optouts replay --no-switch` subprocesses one after another: a first one, which appends every fact of
stage 1 to the empty person log and so does more than the others, then one per `--processes`.
Figures are printed, never asserted: the machine is shared and noisy, so compare within one run.

Then (unless `--no-check`) a check of each log, which is asserted: a replay with `--processes 2`,
SIGKILLed part-way (its parts must die with it), run again (it must resume), then `optouts verify`
(every person must agree). One JSON line of it per log; the bench exits 1 if it failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaProducer

from schemas.errors import OptOutsError
from streams.devtools.workload import generate
from streams.engine.broker import EmbeddedBroker
from streams.engine.log_reader import snapshot, total
from streams.engine.topics import MESSAGING_EVENTS, PERSON_EVENTS, create_topics
from streams.progress import Progress
from streams.settings import Settings

CHUNK = 50_000  # events generated and produced at a time: the log itself is never in the bench's memory
POLL_SECONDS = 0.2  # how often a replay's processes are read from /proc for their peak RSS
PROC = Path("/proc")
CHECK_PROCESSES = 2  # the check's replay and verify run parts: their dying with their parent is checked
KILL_AT_PERCENT = 50  # the check kills its replay once a partition's stage 1 is this far through
OUTLIVE_SECONDS = 15.0  # how long the parts of the killed replay may take to die with it
VERIFY_WAIT_SECONDS = 10  # no worker runs in the bench: the replay committed where its folds stopped
# A replay's progress line (streams.progress.Progress), with the part in front when it has parts:
# "[part 0/2] stage 1, sms-messaging-events[0]: 31,840 of 50,112 events (64%), 6,270 events/s, ETA 3 s",
# or a partition's last: "stage 2, sms-person-events[3]: 2,360 events in 0.3 s (7,477 events/s)".
PROGRESS_LINE = re.compile(
    r"(?:\[part \d+/\d+\] )?stage (?P<stage>\d+), \S+\[\d+\]: [\d,]+"
    r" (?:of [\d,]+ events \((?P<percent>\d+)%\)|events in )"
)


class BenchReplayError(OptOutsError):
    """A replay bench that could not go on: a log that is not empty, a replay that failed or hung."""


def add_bench_replay_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-replay",
        help="replay logs of several sizes with 1, 2... processes; print wall time, speedup and peak RSS",
    )
    bench.add_argument(
        "--sizes",
        type=count_list,
        default=count_list("1000000,4000000"),
        help="events in each log, comma-separated; each on a fresh log (1000000,4000000; one size on"
        " OPTOUTS_KAFKA_BROKERS, which holds one log)",
    )
    bench.add_argument(
        "--processes",
        type=count_list,
        default=count_list("1,2"),
        help="the measured replays of each log, by their --processes, in order (1,2)",
    )
    bench.add_argument("--persons", type=int, help="distinct persons in each log (a tenth of its events)")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds a log's production, or one replay or verify, may take before the bench gives up (3600)",
    )
    bench.add_argument("--keep", action="store_true", help="keep the replays' data dirs (removed otherwise)")
    bench.add_argument(
        "--no-check",
        action="store_true",
        help="skip the check after each log's measured replays (a replay killed part-way, run again to"
        " resume, then verified; exit status 1 if it fails)",
    )
    bench.set_defaults(handler=bench_replay_command)


def count_list(text: str) -> list[int]:
    """`1000000,4000000` (or `1_000_000, 4_000_000`): distinct positive integers, in the order given."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"distinct positive integers, comma-separated; not {text!r}")
    return counts


def plan(processes: list[int]) -> list[tuple[str, int]]:
    """The replays of one log, in order: the first (as parallel as the most parallel measured one, so
    that it is not the slowest part of the bench), then each measured one."""
    return [("first", max(processes)), *(("measured", count) for count in processes)]


def size_label(n: int) -> str:
    """4000000 -> "4m", 2000 -> "2k", 1500 -> "1500": a size as part of a JSON key."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def progress(message: str) -> None:
    print(f"[bench-replay] {message}", file=sys.stderr, flush=True)


def bench_replay_command(args: argparse.Namespace, settings: Settings) -> int:
    if settings.brokers and len(args.sizes) > 1:
        raise BenchReplayError(
            "OPTOUTS_KAFKA_BROKERS holds one log: pass one size (--sizes N), or unset it for an"
            " embedded broker per size"
        )
    work = Path(tempfile.mkdtemp(prefix="optouts-bench-replay-"))
    sizes: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        for n in args.sizes:
            runs, check = measure_size(args, settings, n, work / size_label(n))
            if check is not None:
                failures += check_failures(check)
            sizes.append(size_line(n, runs))
            print(json.dumps(sizes[-1]), flush=True)
        growth = growth_line(sizes)
        if growth is not None:
            print(json.dumps(growth), flush=True)
    finally:
        if args.keep:
            progress(f"kept the replays' data dirs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        progress(f"the check failed: {failure}")
    return 1 if failures else 0


def measure_size(
    args: argparse.Namespace, settings: Settings, n: int, work: Path
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every replay of one log of `n` events, then its check (None with --no-check): on a fresh embedded
    broker of its own unless one is configured (the topic names are fixed, so a broker holds one log)."""
    persons = args.persons or max(1, n // 10)
    work.mkdir(parents=True)
    broker = None if settings.brokers else EmbeddedBroker().start()
    try:
        if broker is not None:
            settings = settings.model_copy(update={"kafka_brokers": broker.address})
        settings = settings.model_copy(update={"app_id": f"optouts-replay-bench-{secrets.token_hex(4)}"})
        progress(f"{n:,} events for {persons:,} persons on {','.join(settings.brokers)} ({settings.app_id})")
        asyncio.run(asyncio.wait_for(prepare_log(settings, n, persons, args.seed), args.timeout))
        runs = []
        for index, (run, processes) in enumerate(plan(args.processes)):
            progress(f"{n:,} events: the {run} replay, --processes {processes}")
            data_dir = work / f"{index}-{run}-p{processes}"
            child = replay_once(settings, processes, data_dir, args.timeout)
            runs.append(run_line(n, persons, run, processes, child))
            reported, observed = runs[-1]["peak_rss_mb"], runs[-1]["peak_rss_mb_observed"]
            progress(
                f"{n:,} events, --processes {processes}: {child.wall_s:.1f} s, peak RSS"
                f" {'?' if reported is None else reported} MB as reported,"
                f" {'?' if observed is None else observed} MB observed"
            )
            print(json.dumps(runs[-1]), flush=True)
        check = None if args.no_check else check_size(settings, n, work, args.timeout)
        return runs, check
    finally:
        if broker is not None:
            broker.stop()


async def prepare_log(settings: Settings, n: int, persons: int, seed: int) -> None:
    await create_topics(settings)
    servers = settings.brokers
    if total(await snapshot(servers, [MESSAGING_EVENTS, PERSON_EVENTS])):
        raise BenchReplayError(
            f"{MESSAGING_EVENTS} or {PERSON_EVENTS} already holds events: run the bench on an empty cluster"
        )
    await produce(servers, n, persons, seed)


async def produce(servers: list[str], n: int, persons: int, seed: int) -> None:
    """`generate(n, persons, seed)` to the messaging log, keyed by phone, CHUNK events at a time."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    shown = Progress("[bench-replay] producing", n, interval=10.0)
    try:
        events = generate(n, persons, seed)
        while chunk := list(islice(events, CHUNK)):
            sent = [
                await producer.send(MESSAGING_EVENTS, json.dumps(event).encode(), key=event["phone"].encode())
                for event in chunk
            ]
            await asyncio.gather(*sent)
            shown.advance(len(chunk))
    finally:
        shown.finish()
        await producer.stop()


@dataclass(frozen=True)
class ChildRun:
    """A finished subprocess, measured from the outside."""

    wall_s: float
    returncode: int
    peak_rss_mb: float | None  # the largest VmHWM of any process of its session; None: never read
    stdout: str


def replay_once(settings: Settings, processes: int, data_dir: Path, timeout: float) -> ChildRun:
    data_dir.mkdir(parents=True)
    command = optouts_argv("replay", "--no-switch", "--json", "--processes", str(processes))
    child = run_child(command, child_env(settings, data_dir), data_dir.with_suffix(".stdout"), timeout)
    if child.returncode != 0:
        raise BenchReplayError(
            f"the replay with --processes {processes} exited with {child.returncode} after"
            f" {child.wall_s:.0f} s (its stderr is above)"
        )
    return child


def optouts_argv(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "streams", *arguments]


def child_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The environment of a replay or verify the bench runs: this log's broker and app id, `data_dir`."""
    return {
        **os.environ,
        "OPTOUTS_KAFKA_BROKERS": ",".join(settings.brokers),
        "OPTOUTS_APP_ID": settings.app_id,
        "OPTOUTS_DATA_DIR": str(data_dir),
    }


def run_child(command: list[str], env: Mapping[str, str], stdout: Path, timeout: float) -> ChildRun:
    """Run `command` in a session of its own, its stdout to the file `stdout`, its stderr to ours.
    Every POLL_SECONDS, the peak RSS of each of the session's processes is read (VmHWM: a peak the
    kernel keeps, so a process's last look counts all it reached before; only a process that lives
    and dies between two looks is missed). Past `timeout` seconds the whole session is killed."""
    peaks: dict[int, int] = {}  # pid -> the highest VmHWM read, in kB
    with stdout.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=dict(env), stdout=out, start_new_session=True)
        try:
            while True:
                for pid in session_members(process.pid):
                    peak = vm_hwm_kb(pid)
                    if peak is not None:
                        peaks[pid] = max(peak, peaks.get(pid, 0))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(POLL_SECONDS)
                    break
                if time.perf_counter() - started > timeout:
                    raise BenchReplayError(f"{' '.join(command[1:])} did not finish within {timeout:.0f} s")
            wall = time.perf_counter() - started
        finally:
            # A child that hangs, or workers its exit left behind: none outlives its run.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(60)
    return ChildRun(
        wall_s=wall,
        returncode=process.returncode,
        peak_rss_mb=max(peaks.values()) / 1024 if peaks else None,
        stdout=stdout.read_text(errors="replace"),
    )


def session_members(session: int) -> list[int]:
    """The processes of a session: a subprocess started with start_new_session and all it started
    (unless one of them starts a session of its own), whoever their parent is by now."""
    return [pid for pid, stat in process_stats() if session_of(stat) == session]


def process_stats() -> Iterator[tuple[int, str]]:
    """Every running process's pid and `/proc/PID/stat` line."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield int(entry.name), (entry / "stat").read_text()
        except OSError:  # it ended since the listing
            continue


def session_of(stat: str) -> int:
    """The session id in the text of /proc/<pid>/stat: its 6th field."""
    return int(_stat_fields(stat)[3])


def parent_of(stat: str) -> int:
    """The parent's pid in the text of /proc/<pid>/stat: its 4th field."""
    return int(_stat_fields(stat)[1])


def running_since(stat: str) -> str | None:
    """When the process of a /proc/<pid>/stat text started (its 22nd field, in clock ticks since boot:
    a pid used again later is another process); None once it has ended (a zombie, a dead one)."""
    fields = _stat_fields(stat)
    return None if fields[0] in ("Z", "X", "x") else fields[19]


def _stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/<pid>/stat text from the 3rd on: those after the command name, which is in
    parentheses and may hold spaces and parentheses itself."""
    return stat[stat.rindex(")") + 1 :].split()


def vm_hwm_kb(pid: int) -> int | None:
    """A process's peak resident set in kB; None once it has ended (or as a zombie, which has none)."""
    try:
        return parse_vm_hwm_kb((PROC / str(pid) / "status").read_text())
    except OSError:
        return None


def parse_vm_hwm_kb(status: str) -> int | None:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def last_json_line(output: str) -> dict[str, Any]:
    """The summary a replay prints last on its stdout as one JSON object."""
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        summary = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        summary = None
    if not isinstance(summary, dict):
        tail = lines[-1][:200] if lines else "nothing"
        raise BenchReplayError(f"the replay printed no JSON summary as its last line (it printed {tail!r})")
    return summary


def run_line(n: int, persons: int, run: str, processes: int, child: ChildRun) -> dict[str, Any]:
    """One replay's figures: the wall time and peak RSS measured here, the rest from its summary
    (read with .get: a summary without a field gives null, not a failed bench)."""
    summary = last_json_line(child.stdout)
    parts = summary.get("parts")
    return {
        "n": n,
        "persons": persons,
        "run": run,
        "processes": processes,
        "wall_s": round(child.wall_s, 2),
        "replay_s": _rounded(summary.get("seconds"), 2),
        "events_per_s": _rounded(summary.get("events_per_s"), None),
        "messaging_events": summary.get("messaging_events"),
        "person_events": summary.get("person_events"),
        "appended": summary.get("appended"),
        "peak_rss_mb": _rounded(summary.get("peak_rss_mb"), 1),
        "peak_rss_mb_observed": _rounded(child.peak_rss_mb, 1),
        "parts": [
            {key: part.get(key) for key in ("part", "peak_rss_mb", "seconds")}
            for part in (parts if isinstance(parts, list) else [])
            if isinstance(part, dict)
        ],
        "cores": os.cpu_count(),
    }


def size_line(n: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One log's comparison: for each measured P > 1, wall(P=1) / wall(P) (with P=1 measured), and the
    largest peak RSS of all its replays, the first included."""
    walls = {run["processes"]: run["wall_s"] for run in runs if run["run"] == "measured"}
    line: dict[str, Any] = {"n": n}
    if 1 in walls:
        for processes, wall in walls.items():
            if processes > 1:
                line[f"speedup_{processes}_vs_1"] = ratio(walls[1], wall)
    line["peak_rss_mb_max"] = _max(run.get("peak_rss_mb") for run in runs)
    line["peak_rss_mb_observed_max"] = _max(run.get("peak_rss_mb_observed") for run in runs)
    return line


def growth_line(sizes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The largest log's peak RSS over the smallest's, next to how much larger the log is: bounded
    memory is a ratio near 1 where the events' is 4. None with one size (nothing to compare)."""
    if not sizes:
        return None
    small = min(sizes, key=lambda line: int(line["n"]))
    large = max(sizes, key=lambda line: int(line["n"]))
    if small["n"] == large["n"]:
        return None
    label = f"{size_label(large['n'])}_vs_{size_label(small['n'])}"
    return {
        f"events_growth_{label}": ratio(large["n"], small["n"]),
        f"rss_growth_{label}": ratio(large.get("peak_rss_mb_max"), small.get("peak_rss_mb_max")),
        f"rss_growth_observed_{label}": ratio(
            large.get("peak_rss_mb_observed_max"), small.get("peak_rss_mb_observed_max")
        ),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def _max(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _rounded(value: object, digits: int | None) -> float | None:
    """A number of a summary, rounded; None for one that is missing or not a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return round(value) if digits is None else round(value, digits)


def check_size(settings: Settings, n: int, work: Path, timeout: float) -> dict[str, Any]:
    """The check of one log, after its measured replays: a replay SIGKILLed part-way, the same replay
    run again on the same data dir (where its stores are), then verify; its JSON line, printed."""
    data_dir = work / f"check-p{CHECK_PROCESSES}"
    data_dir.mkdir(parents=True)
    # With the switch: no worker runs here, so switching only writes the control topic, and verify
    # then compares the generation the replay built.
    replay = optouts_argv("replay", "--json", "--processes", str(CHECK_PROCESSES))
    env = child_env(settings, data_dir)
    progress(f"{n:,} events: the check, a replay with --processes {CHECK_PROCESSES} killed part-way")
    killed = kill_part_way(replay, env, work / "check-killed.stdout", timeout)
    if killed.at is None:
        progress(f"{n:,} events: the check's replay ended before it could be killed")
    else:
        at = killed.at if killed.percent is None else f"{killed.at} at {killed.percent}%"
        progress(
            f"{n:,} events: the replay killed in {at}; {killed.outlived} of its {killed.parts} parts"
            f" outlived it by {OUTLIVE_SECONDS:.0f} s"
        )
    progress(f"{n:,} events: the check, the same replay run again")
    resume = run_child(replay, env, work / "check-resumed.stdout", timeout)
    if resume.returncode != 0:
        raise BenchReplayError(
            f"the check's replay run again exited with {resume.returncode} after {resume.wall_s:.0f} s"
            " (its stderr is above)"
        )
    progress(f"{n:,} events: the check, verify --processes {CHECK_PROCESSES}")
    verify_dir = work / "check-verify"
    verify_dir.mkdir()
    verify = optouts_argv(
        "verify", "--no-api", "--processes", str(CHECK_PROCESSES), "--wait", str(VERIFY_WAIT_SECONDS)
    )
    verified = run_child(verify, child_env(settings, verify_dir), work / "check-verify.stdout", timeout)
    line = check_line(n, killed, resume, verified)
    print(json.dumps(line), flush=True)
    return line


@dataclass(frozen=True)
class StageProgress:
    """What a progress line of a replay says: the stage, and how far through its partition it is."""

    stage: int
    percent: int | None  # None on a partition's last line, which says how long it took instead


def stage_progress(line: str) -> StageProgress | None:
    """The progress in a line of a replay's stderr; None for a line that is not progress."""
    match = PROGRESS_LINE.match(line)
    if match is None:
        return None
    percent = match["percent"]
    return StageProgress(int(match["stage"]), None if percent is None else int(percent))


def kill_point(seen: StageProgress | None) -> str | None:
    """Where the check kills its replay: in stage 1, once a partition is KILL_AT_PERCENT% through; at the
    first line of stage 2 if stage 1 ended before printing that (a log too small for a line of it)."""
    if seen is None:
        return None
    if seen.stage == 1 and seen.percent is not None and seen.percent >= KILL_AT_PERCENT:
        return "stage 1"
    if seen.stage == 2:
        return "stage 2"
    return None


@dataclass(frozen=True)
class KilledReplay:
    at: str | None  # the kill_point; None: the replay ended by itself first
    percent: int | None  # what the line it was killed at showed (None: a partition's last line)
    parts: int  # the processes it had started when it was killed
    outlived: int  # of those, the ones still running OUTLIVE_SECONDS later


def kill_part_way(
    command: list[str], env: Mapping[str, str], stdout: Path, timeout: float, outlive: float = OUTLIVE_SECONDS
) -> KilledReplay:
    """Run the replay `command` in a session of its own, its stderr relayed to ours line by line, and
    SIGKILL it (it alone: its parts are to die with it by themselves) at the first line that is a
    kill_point; then count its children that still run `outlive` seconds later. Past `timeout`
    seconds without such a line, the whole session is killed."""
    lines: queue.Queue[str | None] = queue.Queue()
    deadline = time.perf_counter() + timeout
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            command, env=dict(env), stdout=out, stderr=subprocess.PIPE, start_new_session=True
        )
        assert process.stderr is not None
        relay = threading.Thread(target=relay_lines, args=(process.stderr, lines), daemon=True)
        relay.start()
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    raise BenchReplayError(
                        f"{' '.join(command[1:])} was not at a point to kill it at within {timeout:.0f} s"
                    ) from None
                if line is None:  # its stderr closed: it ended by itself
                    break
                seen = stage_progress(line)
                at = kill_point(seen)
                if seen is not None and at is not None:
                    parts = children_of(process.pid)
                    os.kill(process.pid, signal.SIGKILL)
                    if process.wait(60) != -signal.SIGKILL:
                        break  # it had ended by itself, just before
                    return KilledReplay(at, seen.percent, len(parts), survivors(parts, outlive))
            status = process.wait(max(1.0, deadline - time.perf_counter()))
            if status != 0:
                raise BenchReplayError(
                    f"{' '.join(command[1:])} exited with {status} before it could be killed part-way"
                    " (its stderr is above)"
                )
            return KilledReplay(None, None, 0, 0)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # what outlived it, or all of it on a timeout
            process.wait(60)
            relay.join(10)


def relay_lines(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Each line of `stream` to our stderr and to `lines` as it comes; None once it ends."""
    try:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            print(line, file=sys.stderr, flush=True)
            lines.put(line)
    finally:
        lines.put(None)


def children_of(parent: int) -> dict[int, str]:
    """The running processes whose parent is `parent`, each with when it started."""
    found = {}
    for pid, stat in process_stats():
        since = running_since(stat)
        if since is not None and parent_of(stat) == parent:
            found[pid] = since
    return found


def survivors(processes: Mapping[int, str], within: float) -> int:
    """How many of `processes` (pid -> when it started) still run after `within` seconds; sooner once
    none does."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid, since in processes.items() if still_running(pid, since)]
        if not left or time.monotonic() >= deadline:
            return len(left)
        time.sleep(POLL_SECONDS)


def still_running(pid: int, since: str) -> bool:
    try:
        return running_since((PROC / str(pid) / "stat").read_text()) == since
    except OSError:
        return False


def check_line(n: int, killed: KilledReplay, resume: ChildRun, verified: ChildRun) -> dict[str, Any]:
    """The check's figures: the kill, the replay run again (its summary's "resumed"), then verify."""
    return {
        "n": n,
        "run": "check",
        "killed_at": killed.at,
        "killed_at_percent": killed.percent,
        "parts_at_kill": killed.parts,
        "parts_outlived_parent": killed.outlived,
        "resumed": last_json_line(resume.stdout).get("resumed") is True,
        "resume_wall_s": round(resume.wall_s, 2),
        "verify_exit": verified.returncode,
        "verify_wall_s": round(verified.wall_s, 2),
        "verify_peak_rss_mb_observed": _rounded(verified.peak_rss_mb, 1),
        "verify_last_line": last_line(verified.stdout),
    }


def check_failures(line: dict[str, Any]) -> list[str]:
    """Why a check line is a failure, one reason each; none when it passed."""
    n = f"{line['n']:,} events"
    failures = []
    if line["killed_at"] is None:
        failures.append(f"{n}: the replay ended before it could be killed part-way")
    elif not line["parts_at_kill"]:
        failures.append(f"{n}: the replay had no part running when it was killed (nothing to die with it)")
    if line["parts_outlived_parent"]:
        failures.append(
            f"{n}: {line['parts_outlived_parent']} part(s) still ran {OUTLIVE_SECONDS:.0f} s after the"
            " replay that started them was killed"
        )
    if not line["resumed"]:
        failures.append(f"{n}: the replay run again did not resume the one killed")
    if line["verify_exit"] != 0:
        failures.append(f"{n}: verify exited with {line['verify_exit']}: {line['verify_last_line']}")
    return failures


def last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""
