"""`optouts run` (what `make run` starts): the embedded default and a configured cluster."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.engine.broker import free_port
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import publish
from tests.integration.processes import ROOT, http_json, stop_process, worker_env
from tests.integration.test_pipeline import SENDER, eventually

pytestmark = pytest.mark.integration


def start_run(env: dict[str, str], log_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m streams run`; return the process and its banner once it says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "run", *args],
        env=env,
        cwd=ROOT,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "sms-optouts is ready" in text:
            return process, text
        assert process.poll() is None, f"run exited with {process.returncode}: see {log_path}"
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"run printed no banner in 90 s: see {log_path}")


def interrupt(process: subprocess.Popen[bytes], *others: int) -> int:
    """Ctrl-C `process` and return its exit status; if it had to be killed after 30 s, kill the
    `others` it started by PID too, so that nothing is left running."""
    status = stop_process(process, signal.SIGINT)
    if status < 0:
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return status


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_without_brokers_starts_an_embedded_broker_and_ctrl_c_stops_both(
    tmp_path: Path, output_dir: Path
) -> None:
    port = free_port()
    env = worker_env(None, tmp_path, unique("optouts-run"), port, OPTOUTS_AUTH=None)  # as `make run`
    log = output_dir / "run-embedded.log"
    process, banner = start_run(env, log)
    brokers = re.search(r"Kafka brokers\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
    broker_pid = int(re.search(r"embedded Tansu, pid (\d+)", banner).group(1))  # type: ignore[union-attr]
    try:
        assert f"http://127.0.0.1:{port}/people/{{person_id}}/sms-opt-outs" in banner
        assert f"http://127.0.0.1:{port}/metrics" in banner
        # Secure by default: a token generated at start, its login URL printed, the CLI finds it.
        login = eventually(lambda: re.search(r"operator login\s+(\S+/login\?token=(\S+))", log.read_text()))
        assert login.group(1) == f"http://127.0.0.1:{port}/login?token={login.group(2)}"
        assert (tmp_path / "embedded" / "operator-token").read_text().strip() == login.group(2)
        bearer = {"Authorization": f"Bearer {login.group(2)}"}
        assert http_json("GET", f"http://127.0.0.1:{port}/people/nobody/sms-opt-outs")[0] == 401

        person, phone = unique("person"), unique_phone()
        publish(
            brokers,
            "sms-messaging-events",
            [(phone, sent(person, phone, SENDER)), (phone, received(phone, SENDER, "STOP"))],
        )
        url = f"http://127.0.0.1:{port}/people/{person}/sms-opt-outs"
        eventually(lambda: http_json("GET", url, headers=bearer)[1]["opt_outs"])
        shown = subprocess.run(
            [sys.executable, "-m", "streams", "people", "show", person],
            cwd=ROOT,
            env=env,  # the same data dir: the CLI reads the token the worker wrote
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0 and SENDER in shown.stdout, shown.stderr
    finally:
        assert interrupt(process, broker_pid) == 0
    eventually(lambda: not alive(broker_pid), timeout=10)


def test_run_with_brokers_configured_uses_them_and_starts_no_broker(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    env = worker_env(kafka_brokers, tmp_path, unique("optouts-run"), free_port())
    process, banner = start_run(env, output_dir / "run-configured.log")
    try:
        assert re.search(rf"Kafka brokers\s+{re.escape(kafka_brokers)}\n", banner)
        assert "embedded" not in banner
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, timeout=10
        ).stdout.split()
        assert children == []
    finally:
        assert interrupt(process) == 0


def ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports (worker K listens on the first + K)."""
    while True:
        first = free_port()
        try:
            with contextlib.ExitStack() as held:
                for port in range(first + 1, first + count):
                    listener = held.enter_context(socket.socket())
                    listener.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


def test_run_with_two_workers_shares_the_partitions_under_one_banner_and_ctrl_c_stops_both(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    port = ports_in_a_row(2)
    env = worker_env(kafka_brokers, tmp_path, unique("optouts-run"), port, OPTOUTS_AUTH=None)
    log = output_dir / "run-two-workers.log"
    process, banner = start_run(env, log, "--workers", "2")
    workers = re.findall(r"worker (\d)\s+http://127.0.0.1:(\d+)\s+pid (\d+)\s+(\S+)", banner)
    pids = [int(pid) for _, _, pid, _ in workers]
    try:
        assert "sms-optouts is ready: 2 workers" in banner
        assert [(index, int(p), Path(data)) for index, p, _, data in workers] == [
            ("0", port, (tmp_path / "worker-0").resolve()),
            ("1", port + 1, (tmp_path / "worker-1").resolve()),
        ]
        # One token for both (generated once, where the CLI reads it), one login line in the banner.
        login = re.findall(r"operator login\s+\S+/login\?token=(\S+)", banner)
        assert login == [(tmp_path / "operator-token").read_text().strip()]
        bearer = {"Authorization": f"Bearer {login[0]}"}
        urls = {f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"}
        owners = eventually(
            lambda: set(http_json("GET", f"http://127.0.0.1:{port}/router/", headers=bearer)[1]) == urls
        )
        assert owners

        person, phone = unique("person"), unique_phone()
        publish(
            kafka_brokers,
            "sms-messaging-events",
            [(phone, sent(person, phone, SENDER)), (phone, received(phone, SENDER, "STOP"))],
        )
        for url in sorted(urls):  # either worker answers, forwarding to the owner with the token
            listed = eventually(
                lambda url=url: http_json("GET", f"{url}/people/{person}/sms-opt-outs", headers=bearer)[1][
                    "opt_outs"
                ]
            )
            assert [entry["sender"] for entry in listed] == [SENDER]
    finally:
        assert interrupt(process, *pids) == 0
    assert not any(alive(pid) for pid in pids)


def test_run_stops_every_worker_and_says_which_failed_when_one_exits(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    port = ports_in_a_row(2)
    env = worker_env(kafka_brokers, tmp_path, unique("optouts-run"), port)
    log = output_dir / "run-worker-fails.log"
    with socket.socket() as taken:  # worker 1's port, in use: it cannot start
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "run", "--workers", "2"],
            env=env,
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            status = process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text(errors="replace")
    assert status == 1, text
    failure = re.search(r"optouts run: worker 1 \(pid (\d+), port (\d+)\) exited with status \S+", text)
    assert failure is not None and int(failure.group(2)) == port + 1, text
    assert "sms-optouts is ready" not in text
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True, timeout=10)
    assert children.stdout.split() == []


def test_run_killed_with_sigkill_takes_its_workers_and_its_broker_with_it(
    tmp_path: Path, output_dir: Path
) -> None:
    # kill -9 runs no handler: the kernel stops what it started (PR_SET_PDEATHSIG), or the workers
    # would go on alone, holding their ports and data dirs, on a broker nobody stops.
    port = ports_in_a_row(2)
    env = worker_env(None, tmp_path, unique("optouts-run"), port)  # the embedded broker
    process, banner = start_run(env, output_dir / "run-sigkill.log", "--workers", "2")
    pids = [int(pid) for pid in re.findall(r"worker \d\s+\S+\s+pid (\d+)", banner)]
    pids.append(int(re.search(r"embedded Tansu, pid (\d+)", banner).group(1)))  # type: ignore[union-attr]
    try:
        assert len(pids) == 3
        process.kill()
        process.wait(10)
        eventually(lambda: not any(alive(pid) for pid in pids), timeout=40)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_run_with_workers_finds_them_on_the_interface_they_bind_to(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    # A worker bound to one address is not on 127.0.0.1: the wait for its tables, and the banner,
    # must look where it listens (127.0.0.2 is loopback too on Linux, and nothing else binds it here).
    port = ports_in_a_row(2)
    env = worker_env(kafka_brokers, tmp_path, unique("optouts-run"), port, OPTOUTS_WEB_HOST="127.0.0.2")
    process, banner = start_run(env, output_dir / "run-web-host.log", "--workers", "2")
    pids = [int(pid) for pid in re.findall(r"worker \d\s+\S+\s+pid (\d+)", banner)]
    try:
        assert re.findall(r"worker \d\s+(\S+)", banner) == [
            f"http://127.0.0.2:{port}",
            f"http://127.0.0.2:{port + 1}",
        ]
        assert http_json("GET", f"http://127.0.0.2:{port + 1}/health")[0] == 200
    finally:
        assert interrupt(process, *pids) == 0
