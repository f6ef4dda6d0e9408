"""`optouts run` (what `make run` starts): the embedded default and a configured cluster."""

from __future__ import annotations

import contextlib
import os
import re
import signal
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


def start_run(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m streams run`; return the process and its banner once it says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "run"],
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
