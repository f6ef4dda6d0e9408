"""Real worker processes for integration tests, each stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streams.engine.broker import free_port
from streams.web import api_client

# A consumer-group join waits for the rebalance timeout on Tansu: keep it short in tests.
TEST_TIMEOUTS = {"OPTOUTS_SESSION_TIMEOUT": "6", "OPTOUTS_REBALANCE_TIMEOUT": "6"}
ROOT = Path(__file__).resolve().parents[2]


def worker_env(
    brokers: str | None, data_dir: Path, app_id: str, port: int, **extra: str | None
) -> dict[str, str]:
    """A worker's environment. Tests about something else than operator access run the API open
    (OPTOUTS_AUTH=off) unless they set a token; `OPTOUTS_AUTH=None` leaves the service's default
    (the operator token, generated at start), and any other `None` unsets that variable too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
    env.update(TEST_TIMEOUTS)
    env.update(
        OPTOUTS_DATA_DIR=str(data_dir),
        OPTOUTS_APP_ID=app_id,
        OPTOUTS_WEB_PORT=str(port),
        OPTOUTS_WEB_HOST="127.0.0.1",
        PYTHONPATH=str(ROOT),
    )
    if "OPTOUTS_OPERATOR_TOKEN" not in extra:
        env["OPTOUTS_AUTH"] = "off"
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if brokers:
        env["OPTOUTS_KAFKA_BROKERS"] = brokers
    return env


class ServiceProcess:
    """`python -m streams <command>` with its own settings; `stop()` ends it by PID."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.port = int(env["OPTOUTS_WEB_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90.0) -> ServiceProcess:
        self.launch()
        return self.wait_ready(ready_timeout)

    def launch(self) -> ServiceProcess:
        """Start the process without waiting for it to be ready."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", self.command],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, ready_timeout: float = 90.0) -> ServiceProcess:
        assert self.process is not None
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited with {self.process.returncode}: see {self.log_path}"
                )
            status, _ = http_json("GET", f"{self.url}/ready")
            if status == 200:
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.command} not ready within {ready_timeout:.0f} s: see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        return stop_process(process, sig, timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send `sig` and wait up to `timeout` s; kill by PID what is still running then. Its exit status
    (negative when it had to be killed)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)  # SIGKILL cannot be refused: only a process stuck in the kernel outlasts it
    return process.returncode


def run_optouts(env: dict[str, str], *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`python -m streams ARGS` to its end (at most `timeout` s) with the settings in `env`."""
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def operator_headers(worker: ServiceProcess) -> dict[str, str]:
    """The Authorization a client of `worker` sends: its OPTOUTS_OPERATOR_TOKEN, else the token it
    generated into its data dir, if either."""
    token = worker.env.get("OPTOUTS_OPERATOR_TOKEN")
    generated = Path(worker.env["OPTOUTS_DATA_DIR"]) / "operator-token"
    if token is None and generated.exists():
        token = generated.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def new_worker(brokers: str, tmp: Path, app_id: str, log_path: Path, **extra: str | None) -> ServiceProcess:
    env = worker_env(brokers, tmp, app_id, free_port(), **extra)
    return ServiceProcess("worker", env, log_path)


def http_json(
    method: str, url: str, body: Any = None, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, decoded JSON or text) through the CLI's client (streams.web.api_client); (0, None)
    when nothing answers, which a test waiting for a worker reads as "not yet"."""
    try:
        return api_client.request(method, url, body=body, headers=headers, timeout=timeout)
    except api_client.NoAnswer:
        return 0, None
