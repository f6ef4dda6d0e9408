"""Poison messages through the real broker and a real worker: kept in `sms-dead-letters` (a value of a
megabyte too), listed by `optouts dead-letters list`, published again fixed by `optouts dead-letters
republish`, and then folded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from streams.engine.topics import MESSAGING_EVENTS
from tests.factories import blocked, received, sent, unique, unique_phone
from tests.integration.kafka import publish
from tests.integration.processes import ROOT, ServiceProcess
from tests.integration.test_pipeline import SENDER, eventually, publish_events, senders
from tests.integration.test_replay import read_all

pytestmark = pytest.mark.integration


def dead_letters(brokers: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", "dead-letters", *args],
        cwd=ROOT,
        env={**env, "OPTOUTS_KAFKA_BROKERS": brokers, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def letters_of(brokers: str, worker: ServiceProcess, phone: str) -> list[dict[str, Any]]:
    listed = dead_letters(brokers, "list", "--key", phone, "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    return [letter for letter in letters if letter["app_id"] == worker.env["OPTOUTS_APP_ID"]]


def test_a_poison_message_is_listed_then_published_again_fixed_and_folded(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    fixed = blocked(person, phone, SENDER)
    poison = {**fixed, "error_code": "21610"}  # a string: refused
    publish(kafka_brokers, MESSAGING_EVENTS, [(phone, poison)])

    [letter] = eventually(lambda: letters_of(kafka_brokers, worker, phone))
    assert (letter["topic"], letter["key"], letter["kind"], letter["field"]) == (
        MESSAGING_EVENTS,
        phone,
        "undecodable",
        "error_code",
    )
    assert json.loads(letter["value"]) == poison
    assert senders(worker, person) == set()

    table = dead_letters(kafka_brokers, "list", "--topic", MESSAGING_EVENTS, "--key", phone)
    assert table.returncode == 0, table.stderr
    assert letter["id"] in table.stdout and "error_code" in table.stdout and phone in table.stdout
    other_topic = dead_letters(kafka_brokers, "list", "--topic", "sms-person-events", "--key", phone)
    assert "No dead letters" in other_topic.stdout

    # Still bad: refused with the decoder's reason, nothing published.
    still_bad = dead_letters(kafka_brokers, "republish", letter["id"], "--value", json.dumps(poison))
    assert still_bad.returncode == 1
    assert "refused again" in still_bad.stderr and "error_code" in still_bad.stderr
    as_it_was = dead_letters(kafka_brokers, "republish", letter["id"])  # the original: refused too
    assert as_it_was.returncode == 1

    again = dead_letters(kafka_brokers, "republish", letter["id"], "--value", json.dumps(fixed))
    assert again.returncode == 0, again.stderr
    assert f"to {MESSAGING_EVENTS}[{letter['partition']}]@" in again.stdout  # same key: same partition

    eventually(lambda: senders(worker, person) == {SENDER})
    on_the_log = [
        json.loads(v or b"") for k, v in read_all(kafka_brokers, MESSAGING_EVENTS) if k == phone.encode()
    ]
    assert on_the_log == [poison, fixed]  # the refused attempts published nothing
    assert letters_of(kafka_brokers, worker, phone) == [letter]  # the fixed one was folded, not kept


def test_a_value_of_a_megabyte_is_kept_aside_and_the_next_event_is_folded(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    huge = json.dumps({**received(phone, SENDER, "STOP"), "body": "x" * 1_000_000}).encode()
    publish(kafka_brokers, MESSAGING_EVENTS, [(phone, huge)])
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))

    eventually(lambda: senders(worker, person) == {SENDER})
    [letter] = eventually(lambda: letters_of(kafka_brokers, worker, phone))
    assert (letter["value_truncated"], letter["value_bytes"]) == (True, len(huge))
    assert "over the 65536-byte limit" in letter["reason"]
    assert worker.process is not None and worker.process.poll() is None  # still running
