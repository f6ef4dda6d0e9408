"""While a worker restores its tables from their changelogs, a request for a person's list answers 503
with Retry-After, never the part of the list restored so far (docs/http-api.md, "Which worker
answers")."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import produce, raw_values
from tests.integration.processes import new_worker
from tests.integration.test_pipeline import eventually, publish_events, senders

pytestmark = pytest.mark.integration

PARTITIONS = 4  # OPTOUTS_PARTITIONS' default
SENDERS = [f"+1415555{n:04d}" for n in range(201, 206)]
# Between the person's first state and their last one in the changelog: long enough to restore that
# requests land in the middle (here about 200 of them, every 20 ms, at 50,000 records).
FILLER = 50_000


def get(url: str) -> tuple[int, dict[str, str], dict[str, object] | None]:
    """(status, headers, JSON body); status 0 while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, None


def test_a_list_asked_for_during_a_restore_is_503_with_retry_after_never_part_of_it(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    app_id, person, phone = unique("optouts-restore"), unique("restored"), unique_phone()
    changelog = f"{app_id}-opt-outs-changelog"
    first = new_worker(kafka_brokers, tmp_path / "first", app_id, output_dir / f"{app_id}-first.log").start()
    try:
        publish_events(kafka_brokers, sent(person, phone, SENDERS[0]), received(phone, SENDERS[0], "STOP"))
        eventually(lambda: senders(first, person) == {SENDERS[0]})
        # The person's state with one entry is in the changelog: many other keys after it, then the
        # person's later states, so that a restore holds the one-entry state for a while.
        [one_entry] = raw_values(kafka_brokers, changelog, {person})[person][-1:]
        partition = (murmur2(person.encode()) & 0x7FFFFFFF) % PARTITIONS
        produce(kafka_brokers, changelog, ((b"filler-%d" % i, one_entry) for i in range(FILLER)), partition)
        for sender in SENDERS[1:]:
            publish_events(kafka_brokers, sent(person, phone, sender), received(phone, sender, "STOP"))
        eventually(lambda: senders(first, person) == set(SENDERS), timeout=60)
    finally:
        first.stop()

    # A second worker of the same app id on an empty data dir: it restores everything.
    second = new_worker(kafka_brokers, tmp_path / "second", app_id, output_dir / f"{app_id}-second.log")
    second.launch()
    try:
        url = f"{second.url}/people/{person}/sms-opt-outs"
        answers: list[tuple[int, str]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, headers, body = get(url)
            if status == 200:
                assert body is not None
                listed = {entry["sender"] for entry in body["opt_outs"]}  # type: ignore[attr-defined]
                assert listed == set(SENDERS), f"a partial list after {answers}"
                break
            if status == 503:
                assert headers.get("Retry-After") == "1", headers
                answers.append((status, str((body or {}).get("error"))))
            elif status != 0:
                pytest.fail(f"{status} {body}")
            time.sleep(0.02)
        else:
            pytest.fail(f"no list within 120 s: {answers[-3:]}")
        restoring = [error for _, error in answers if "being recovered" in error]
        assert restoring, f"no request landed during the restore (raise FILLER): {set(answers)}"
    finally:
        second.stop()
