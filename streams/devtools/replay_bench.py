"""`optouts bench-replay` (`make bench-replay`): `optouts replay` at the log's real size (issue 19), its
wall time and peak memory per number of processes, on generated logs of several sizes. Prints progress,
then one JSON line per replay, one per size (the speedups) and one comparing the sizes (memory growth).

Each size is a log of its own (a fresh embedded broker, as `optouts bench` gives each mix), replayed by
`optouts replay --no-switch` subprocesses one after another: a first one, which appends every fact of
stage 1 to the empty person log and so does more than the others, then one per `--processes`.
Figures are printed, never asserted: the machine is shared and noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

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
        help="seconds a log's production, or one replay, may take before the bench gives up (3600)",
    )
    bench.add_argument("--keep", action="store_true", help="keep the replays' data dirs (removed otherwise)")
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
    try:
        for n in args.sizes:
            runs = measure_size(args, settings, n, work / size_label(n))
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
    return 0


def measure_size(args: argparse.Namespace, settings: Settings, n: int, work: Path) -> list[dict[str, Any]]:
    """Every replay of one log of `n` events: on a fresh embedded broker of its own unless one is
    configured (the topic names are fixed, so a broker holds one log)."""
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
        return runs
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
    command = [
        sys.executable,
        "-m",
        "streams",
        "replay",
        "--no-switch",
        "--json",
        "--processes",
        str(processes),
    ]
    env = {
        **os.environ,
        "OPTOUTS_KAFKA_BROKERS": ",".join(settings.brokers),
        "OPTOUTS_APP_ID": settings.app_id,
        "OPTOUTS_DATA_DIR": str(data_dir),
    }
    data_dir.mkdir(parents=True)
    child = run_child(command, env, data_dir.with_suffix(".stdout"), timeout)
    if child.returncode != 0:
        raise BenchReplayError(
            f"the replay with --processes {processes} exited with {child.returncode} after"
            f" {child.wall_s:.0f} s (its stderr is above)"
        )
    return child


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
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended since the listing
            continue
        if session_of(stat) == session:
            members.append(int(entry.name))
    return members


def session_of(stat: str) -> int:
    """The session id in the text of /proc/<pid>/stat: the 6th field, counted after the command name
    (in parentheses, which may hold spaces and parentheses itself)."""
    return int(stat[stat.rindex(")") + 1 :].split()[3])


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
