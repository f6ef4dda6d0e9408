"""Records an upstream producer placed by CRC32 of the key (librdkafka's default partitioner:
confluent-kafka, kcat), not by murmur2 as the contract says, through the real broker, a real worker,
STOPs posted to the signed Twilio webhook, and real HTTP: every one is forwarded to its key's
partition and folded there, and counted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.codec import encode
from schemas.events import OptOutOverridden, OptOutRecorded
from streams.engine.log_reader import read, snapshot
from streams.engine.topics import MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from streams.pipeline.placement import CRC32, expected_partition
from tests.factories import sent, unique, unique_phone
from tests.integration.kafka import latest_values, publish, run
from tests.integration.processes import ROOT, ServiceProcess, new_worker
from tests.integration.test_pipeline import SENDER, eventually, history, senders
from tests.integration.test_twilio_webhooks import PUBLIC, inbound, metric_value
from tests.twilio_standin import AUTH_TOKEN, inbound_form

pytestmark = pytest.mark.integration

MISPLACED = "optouts_misplaced_records_total"


@pytest.fixture(scope="module")
def worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-placement")
    process = new_worker(
        kafka_brokers,
        tmp_path_factory.mktemp("placement-worker"),
        app_id,
        output_dir / f"{app_id}.log",
        OPTOUTS_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        OPTOUTS_PUBLIC_BASE_URL=PUBLIC,
    )
    process.start()
    yield process
    process.stop()


def by_crc32(key: bytes, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """librdkafka's `consistent_random` for a keyed record: CRC32 of the key, modulo the partitions."""
    return all_partitions[zlib.crc32(key) % len(all_partitions)]


def publish_by_crc32(brokers: str, topic: str, records: list[tuple[str, bytes]]) -> list[int]:
    """Send (key, value) records as a producer with librdkafka's default partitioner does, and wait
    for acks=all; the partition each landed on."""

    async def send() -> list[int]:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all", partitioner=by_crc32)
        await producer.start()
        try:
            sending = [await producer.send(topic, value, key=key.encode()) for key, value in records]
            return [(await delivery).partition for delivery in sending]
        finally:
            await producer.stop()

    return run(send)


def partition_count(brokers: str, topic: str) -> int:
    async def count() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=brokers)
        await producer.start()
        try:
            return len(await producer.partitions_for(topic))
        finally:
            await producer.stop()

    return run(count)


def placed(brokers: str, topic: str, key: str) -> list[tuple[int, Any]]:
    """(partition, JSON value) of every record of `topic` keyed `key` (in each partition's order, the
    partitions in no order), reading each partition to the end it has now (not a quiet period)."""

    async def read_all() -> list[tuple[int, Any]]:
        servers = brokers.split(",")
        found: list[tuple[int, Any]] = []
        async for records in read(servers, await snapshot(servers, [topic])):
            found += [(r.partition, json.loads(r.value)) for r in records if r.key == key.encode()]
        return found

    return run(read_all)


def misplaced_by_crc32(key: str, partitions: int) -> bool:
    return zlib.crc32(key.encode()) % partitions != expected_partition(key.encode(), partitions)


def test_stops_after_sends_placed_by_crc32_are_all_on_the_lists_and_the_misplaced_sends_counted(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    partitions = partition_count(kafka_brokers, MESSAGING_EVENTS)
    people = [(unique("crc32"), unique_phone()) for _ in range(20)]
    misplaced = [phone for _, phone in people if misplaced_by_crc32(phone, partitions)]
    assert partitions > 1 and len(misplaced) >= 5, "too few phones CRC32 places elsewhere: nothing tested"
    counted = metric_value(worker, MISPLACED, topic=MESSAGING_EVENTS)

    landed = publish_by_crc32(
        kafka_brokers,
        MESSAGING_EVENTS,
        [(phone, encode_dict(sent(person, phone, SENDER))) for person, phone in people],
    )
    assert landed == [zlib.crc32(phone.encode()) % partitions for _, phone in people]
    time.sleep(2)  # the people answer a little later, through Twilio
    for _, phone in people:
        assert inbound(worker, inbound_form(from_=phone, to=SENDER, body="STOP")).status == 200

    eventually(lambda: all(senders(worker, person) == {SENDER} for person, _ in people), timeout=30)
    lists = latest_values(kafka_brokers, OPT_OUTS, {person for person, _ in people})
    assert {person: [e["sender"] for e in lists[person]["opt_outs"]] for person, _ in people} == {
        person: [SENDER] for person, _ in people
    }
    assert metric_value(worker, MISPLACED, topic=MESSAGING_EVENTS) - counted == len(misplaced)
    # Each misplaced send is in the log twice: where CRC32 put it, and its copy where murmur2 does.
    phone = misplaced[0]
    records = placed(kafka_brokers, MESSAGING_EVENTS, phone)
    assert sorted(partition for partition, value in records if value["type"] == "message.sent") == sorted(
        [zlib.crc32(phone.encode()) % partitions, expected_partition(phone.encode(), partitions)]
    )


def test_an_override_placed_by_crc32_is_folded_after_the_opt_out_it_removes(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    partitions = partition_count(kafka_brokers, PERSON_EVENTS)
    person = next(p for p in (unique("person") for _ in range(100)) if misplaced_by_crc32(p, partitions))
    common = {"person_id": person, "sender": SENDER, "phone": unique_phone()}
    blocked = OptOutRecorded(
        event_id=unique("evt"),
        occurred_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        cause="send_blocked",
        source_event_id=unique("SM"),
        **common,
    )
    override_id = unique("override")
    override = OptOutOverridden(
        event_id=override_id,
        occurred_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        source_event_id=override_id,
        actor="ops@example.com",
        reason="opted in by hand in the Twilio console",
        **common,
    )
    publish(kafka_brokers, PERSON_EVENTS, [(person, encode(blocked))])  # by murmur2, as the contract says
    eventually(lambda: senders(worker, person) == {SENDER})
    counted = metric_value(worker, MISPLACED, topic=PERSON_EVENTS)

    publish_by_crc32(kafka_brokers, PERSON_EVENTS, [(person, encode(override))])

    # One store holds the person's whole history: folded where CRC32 put it, the override would
    # have been applied to an empty list, and the opt-out would have stayed.
    eventually(lambda: len(history(worker, person)) == 2)
    assert [change["type"] for change in history(worker, person)] == [
        "opt_out.recorded",
        "opt_out.overridden",
    ]
    assert senders(worker, person) == set()
    assert metric_value(worker, MISPLACED, topic=PERSON_EVENTS) - counted == 1


def test_verify_names_the_misplaced_records_and_their_likely_cause_and_agrees(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    while not misplaced_by_crc32(phone, partition_count(kafka_brokers, MESSAGING_EVENTS)):
        phone = unique_phone()
    publish_by_crc32(kafka_brokers, MESSAGING_EVENTS, [(phone, encode_dict(sent(person, phone, SENDER)))])
    assert inbound(worker, inbound_form(from_=phone, to=SENDER, body="STOP")).status == 200
    eventually(lambda: senders(worker, person) == {SENDER})

    done = subprocess.run(
        [sys.executable, "-m", "streams", "verify", "--wait", "20", person],
        env=worker.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    [note] = [line for line in done.stdout.splitlines() if f"records of {MESSAGING_EVENTS}" in line]
    assert "on another partition than murmur2 of their key" in note and CRC32 in note


def test_replay_folds_the_forwarded_copy_on_its_phones_partition_and_counts_the_misplaced_record(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    partitions = partition_count(kafka_brokers, MESSAGING_EVENTS)
    person, phone = unique("person"), unique_phone()
    while not misplaced_by_crc32(phone, partitions):
        phone = unique_phone()
    publish_by_crc32(kafka_brokers, MESSAGING_EVENTS, [(phone, encode_dict(sent(person, phone, SENDER)))])
    assert inbound(worker, inbound_form(from_=phone, to=SENDER, body="STOP")).status == 200
    eventually(lambda: senders(worker, person) == {SENDER})

    done = subprocess.run(
        [sys.executable, "-m", "streams", "replay", "--no-switch", "--json"],
        env=worker.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["misplaced"].get(CRC32, 0) >= 1
    # The phone's contacts, written to the new generation's store on murmur2's partition, know the
    # send: the copy was folded there, the record where CRC32 put it was not folded at all.
    [(partition, contacts)] = placed(kafka_brokers, f"{summary['app_id']}-contacts-changelog", phone)
    assert partition == expected_partition(phone.encode(), partitions)
    assert person in contacts["recipients"][SENDER]


def encode_dict(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()
