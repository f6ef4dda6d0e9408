"""`optouts run` on its embedded broker follows a replay's switch: the process restarts itself into the
new generation and keeps the broker (and its in-memory log); Ctrl-C still stops both."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from streams.engine.broker import free_port
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import publish
from tests.integration.processes import http_json, run_optouts, worker_env
from tests.integration.test_pipeline import SENDER, eventually
from tests.integration.test_run import alive, start_run

pytestmark = pytest.mark.integration


def test_run_on_the_embedded_broker_restarts_into_the_replayed_generation_and_keeps_its_broker(
    tmp_path: Path, output_dir: Path
) -> None:
    port, app_id = free_port(), unique("optouts-run")
    log = output_dir / "run-replay.log"
    process, banner = start_run(worker_env(None, tmp_path, app_id, port), log)
    api = f"http://127.0.0.1:{port}"
    try:
        brokers = re.search(r"Kafka brokers\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        broker_pid = int(re.search(r"embedded Tansu, pid (\d+)", banner).group(1))  # type: ignore[union-attr]
        person, phone = unique("person"), unique_phone()
        publish(
            brokers,
            "sms-messaging-events",
            [(phone, sent(person, phone, SENDER)), (phone, received(phone, SENDER, "STOP"))],
        )
        listed = eventually(lambda: http_json("GET", f"{api}/people/{person}/sms-opt-outs")[1]["opt_outs"])

        tools = {**worker_env(brokers, tmp_path / "tools", app_id, port)}
        replayed = run_optouts(tools, "replay", timeout=300)
        assert replayed.returncode == 0, replayed.stderr
        assert "switched       yes" in replayed.stdout

        ready = lambda: http_json("GET", f"{api}/ready")  # noqa: E731
        eventually(lambda: ready()[0] == 200 and ready()[1]["app_id"] == f"{app_id}-g1", timeout=90)
        assert process.poll() is None and alive(broker_pid)  # the same process, the same broker
        assert http_json("GET", f"{api}/people/{person}/sms-opt-outs")[1]["opt_outs"] == listed
        assert log.read_text().count("sms-optouts is ready") == 2

        verified = run_optouts(tools, "verify", timeout=300)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "all agree" in verified.stdout
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    eventually(lambda: not alive(broker_pid), timeout=10)
