"""`optouts run --workers N`: N worker processes of one app id on this machine, sharing the partitions,
each with its own data dir and port, under one banner; Ctrl-C stops them all.

One Python process folds on one core; the second core nearly doubles the pipeline
(docs/performance.md). The workers are the same `optouts worker` processes a cluster runs, so they
share the partitions through the consumer group, keep standbys, and forward a person's request to
the worker that owns the person, as they would on several machines. This process only starts them,
says where they are, and stops them: it folds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from schemas.errors import OptOutsError
from streams.engine.broker import stopped_with_this_process
from streams.settings import Settings
from streams.web.operator_auth import Access, open_access

READY_TIMEOUT = 180.0  # seconds for every worker to restore its tables, from an empty data dir too
STOP_TIMEOUT = 30.0  # seconds a worker has to stop on SIGTERM before it is killed


class WorkerFailed(OptOutsError):
    """A worker process exited while the others ran: all of them are stopped."""


def worker_count(value: str) -> int:
    """`--workers`: a number, or `auto` for the cores this process may run on."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a number or auto, not {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"takes 1 or more, not {count}")
    return count


@dataclass(frozen=True)
class WorkerPlan:
    """Where worker `index` runs: its own data dir and port, the app id and token of all of them."""

    index: int
    data_dir: Path
    port: int

    def environment(self, settings: Settings, access: Access) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            OPTOUTS_KAFKA_BROKERS=",".join(settings.brokers),
            OPTOUTS_APP_ID=settings.app_id,
            OPTOUTS_DATA_DIR=str(self.data_dir),
            OPTOUTS_WEB_PORT=str(self.port),
        )
        env.pop("OPTOUTS_EMBEDDED_BROKER_PID", None)  # the broker is this process's to stop
        if access.token is not None:
            # One token for every worker: a request forwarded to the owner is checked there again.
            env["OPTOUTS_OPERATOR_TOKEN"] = access.token
        return env


def plan(settings: Settings, count: int) -> list[WorkerPlan]:
    """Worker K on port OPTOUTS_WEB_PORT + K, in the data dir's `worker-K`."""
    return [WorkerPlan(k, settings.data_dir / f"worker-{k}", settings.web_port + k) for k in range(count)]


def run_workers(settings: Settings, count: int, broker_pid: int | None) -> int:
    """Start `count` workers, print the banner once each has restored its tables, and wait: until
    SIGINT or SIGTERM (stop them all, 0) or until one exits by itself (stop the others, fail)."""
    access = open_access(settings)  # in the data dir the CLI reads, as one worker's would be
    plans = plan(settings, count)
    processes: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for each in plans:
            each.data_dir.mkdir(parents=True, exist_ok=True)
            # Their own lines on stderr, as one worker's; the banner (stdout) is this process's.
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "streams", "worker"],
                    env=each.environment(settings, access),
                    stdout=subprocess.DEVNULL,
                    preexec_fn=stopped_with_this_process,
                )
            )
        if not _wait_until_recovered(_host(settings), plans, processes, stopping):
            return 0
        announce_workers(settings, plans, processes, access, broker_pid)
        while not stopping:
            for each, process in zip(plans, processes, strict=True):
                if process.poll() is not None:
                    raise WorkerFailed(
                        f"worker {each.index} (pid {process.pid}, port {each.port}) exited with status"
                        f" {process.returncode}: stopping the others"
                    )
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _host(settings: Settings) -> str:
    """Where this machine reaches its workers, as a URL names it: the interface they bind to, loopback
    when they bind to all of them."""
    host = settings.local_web_host
    return f"[{host}]" if ":" in host else host


def _wait_until_recovered(
    host: str, plans: list[WorkerPlan], processes: list[subprocess.Popen[bytes]], stopping: list[int]
) -> bool:
    """Whether every worker restored its tables (its /ready says so) before a signal came."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(zip(plans, processes, strict=True))
    while waiting:
        if stopping:
            return False
        if time.monotonic() > deadline:
            names = ", ".join(f"worker {each.index} (port {each.port})" for each, _ in waiting)
            raise WorkerFailed(f"{names}: tables not restored after {READY_TIMEOUT:.0f} s")
        for each, process in list(waiting):
            if process.poll() is not None:
                raise WorkerFailed(
                    f"worker {each.index} (pid {process.pid}, port {each.port}) exited with status"
                    f" {process.returncode} while starting: stopping the others"
                )
            if _recovered(host, each.port):
                waiting.remove((each, process))
        time.sleep(0.2)
    return True


def _recovered(host: str, port: int) -> bool:
    # /ready answers 503 while the worker lags behind its input: its tables may be restored already.
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ready", timeout=2) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    except OSError:  # not listening yet
        return False
    try:
        return bool(json.loads(body).get("tables_recovered"))
    except (ValueError, AttributeError):
        return False


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each worker still running (Ctrl-C in a terminal reached them already), then wait;
    SIGKILL to any still running after STOP_TIMEOUT."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def announce_workers(
    settings: Settings,
    plans: list[WorkerPlan],
    processes: list[subprocess.Popen[bytes]],
    access: Access,
    broker_pid: int | None,
) -> None:
    host = _host(settings)
    first = f"http://{host}:{plans[0].port}"
    lines = [
        "",
        f"sms-optouts is ready: {len(plans)} workers",
        f"  Kafka brokers  {','.join(settings.brokers)}",
    ]
    if broker_pid is not None:
        lines.append(
            f"                 (embedded Tansu, pid {broker_pid}, in memory only: gone when this stops;"
            " set OPTOUTS_KAFKA_BROKERS for a real cluster)"
        )
    for each, process in zip(plans, processes, strict=True):
        url, data_dir = f"http://{host}:{each.port}", each.data_dir.resolve()
        lines.append(f"  worker {each.index}       {url}  pid {process.pid}  {data_dir}")
    if len(plans) > settings.partitions:
        idle = len(plans) - settings.partitions
        lines.append(
            f"  (only {settings.partitions} partitions (OPTOUTS_PARTITIONS): {idle} workers stand by)"
        )
    lines += [
        f"  opt-out lists  {first}/people/{{person_id}}/sms-opt-outs  (any worker answers for every person)",
        f"  health, ready  {first}/health  {first}/ready  (each worker's own)",
        f"  metrics        {first}/metrics  (each worker's own)",
        *access.banner(first),
        "  publish events to sms-messaging-events; Ctrl-C stops everything",
        "",
    ]
    print("\n".join(lines), flush=True)
