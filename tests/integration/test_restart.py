"""A worker restarted on the same data dir, after a clean stop or a SIGKILL, keeps every list and
applies no event twice; one started on an empty data dir recovers the same lists from the changelogs."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.factories import received, sent, unique, unique_phone
from tests.integration.processes import ServiceProcess, new_worker
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, eventually, history, publish_events, senders

pytestmark = pytest.mark.integration


def assert_kept_and_not_applied_twice(
    worker: ServiceProcess, brokers: str, stop: dict[str, Any], stays: str, leaves: str
) -> None:
    assert senders(worker, stays) == {SENDER}
    assert senders(worker, leaves) == set()
    # The first STOP delivered again (same event id), then a marker on the same phone: a phone's
    # events are folded in order, so once the marker shows, the repeat was folded too.
    phone, marker = stop["phone"], unique("marker")
    publish_events(brokers, stop, sent(marker, phone, OTHER_SENDER), received(phone, OTHER_SENDER, "STOP"))
    eventually(lambda: senders(worker, marker) == {OTHER_SENDER})
    changes = history(worker, stays)
    assert [change["type"] for change in changes] == [
        "opt_out.recorded",
        "opt_out.cleared",
        "opt_out.recorded",
    ]
    assert changes[0]["source_event_id"] == stop["event_id"]


def test_a_restarted_worker_keeps_the_lists_and_applies_no_event_twice(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    app_id = unique("optouts-restart")
    log = output_dir / f"{app_id}.log"
    stays, leaves, phone = unique("stays"), unique("leaves"), unique_phone()
    sends = [sent(stays, phone, SENDER), sent(leaves, unique_phone(), SENDER)]
    stop = received(phone, SENDER, "STOP")
    publish_events(
        kafka_brokers,
        *sends,
        stop,
        received(phone, SENDER, "START"),
        received(phone, SENDER, "STOP"),
    )
    worker = new_worker(kafka_brokers, tmp_path, app_id, log).start()
    try:
        eventually(lambda: len(history(worker, stays)) == 3)
    finally:
        worker.stop(signal.SIGTERM)

    for how in (signal.SIGTERM, signal.SIGKILL):
        worker = new_worker(kafka_brokers, tmp_path, app_id, log).start()
        try:
            assert_kept_and_not_applied_twice(worker, kafka_brokers, stop, stays, leaves)
        finally:
            worker.stop(how)

    # A lost disk: the tables come back from their changelogs, read to the log's real end.
    worker = new_worker(kafka_brokers, tmp_path / "empty", app_id, log).start()
    try:
        assert_kept_and_not_applied_twice(worker, kafka_brokers, stop, stays, leaves)
    finally:
        worker.stop()
