"""`optouts people ...` against a running worker: clear output, non-zero exit on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from streams.engine.broker import free_port
from tests.integration.processes import ROOT, ServiceProcess, http_json
from tests.integration.test_overrides import opted_out
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, history, senders

pytestmark = pytest.mark.integration


def optouts(*args: str, api: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", "people", "--api", api, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_json_prints_what_the_api_answers_for_show_history_and_remove(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER)

    def as_json(*args: str) -> Any:
        done = optouts("--json", *args, api=worker.url)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert as_json("show", person) == http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs")[1]
    assert [c["type"] for c in as_json("history", person)["history"]] == ["opt_out.recorded"]
    removed = as_json("remove", person, SENDER, "--actor", "ops@example.com", "--reason", "ticket 4711")
    assert (removed["type"], removed["phone"]) == ("opt_out.overridden", phone)
    assert as_json("show", person)["opt_outs"] == []


def test_show_and_history_print_the_list_and_its_changes(worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER)

    shown = optouts("show", person, api=worker.url)
    assert shown.returncode == 0, shown.stderr
    assert SENDER in shown.stdout and phone in shown.stdout and "replied STOP" in shown.stdout

    changes = optouts("history", person, api=worker.url)
    assert changes.returncode == 0, changes.stderr
    assert "recorded" in changes.stdout and SENDER in changes.stdout

    assert "has no SMS opt-outs" in optouts("show", "nobody-here", api=worker.url).stdout


def test_remove_appends_an_audited_override_and_a_second_remove_fails_clearly(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER, OTHER_SENDER)
    args = ("remove", person, SENDER, "--actor", "ops@example.com", "--reason", "wrong number")

    removed = optouts(*args, api=worker.url)
    assert removed.returncode == 0, removed.stderr
    assert f"Removed {SENDER}" in removed.stdout
    assert senders(worker, person) == {OTHER_SENDER}
    assert (history(worker, person)[-1]["actor"], history(worker, person)[-1]["reason"]) == (
        "ops@example.com",
        "wrong number",
    )

    again = optouts(*args, api=worker.url)
    assert again.returncode == 1
    assert "error (404)" in again.stderr and "not on the SMS opt-out list" in again.stderr


def test_remove_without_a_reason_is_a_usage_error_and_changes_nothing(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)
    missing = optouts("remove", person, SENDER, "--actor", "ops", api=worker.url)
    assert missing.returncode == 2
    assert "--reason" in missing.stderr
    blank = optouts("remove", person, SENDER, "--actor", "ops", "--reason", " ", api=worker.url)
    assert blank.returncode == 1
    assert "reason" in blank.stderr
    assert senders(worker, person) == {SENDER}


def test_no_service_at_the_address_is_a_clear_error() -> None:
    nothing = optouts("show", "p1", api=f"http://127.0.0.1:{free_port()}")
    assert nothing.returncode == 3
    assert "no answer from the service" in nothing.stderr
