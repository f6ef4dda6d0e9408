"""The agents' bodies, driven through Faust's `test_context` with their RocksDB tables in a scratch
data dir; what they send goes to the suite's real broker and is read back from there."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from schemas.codec import encode
from schemas.events import OptOutCleared, OptOutRecorded
from streams.engine.batches import Fetched
from streams.engine.tables import partition_store, stored
from streams.engine.topics import (
    CONTACTS_TABLE,
    MESSAGING_EVENTS,
    OPT_OUTS,
    PERSON_EVENTS,
    changelog_topic,
    create_topics,
)
from streams.pipeline.person_history import read_history
from streams.pipeline.placement import expected_partition
from streams.settings import Settings
from streams.worker import Service, build_service
from tests.factories import received, recorded, sent, unique, unique_phone
from tests.integration.kafka import latest_values, raw_values
from tests.integration.test_placement import placed

pytestmark = pytest.mark.integration
SENDER = "+14155550100"
PARTITIONS = Settings.model_fields["partitions"].default  # of the input topics, as run_agent creates them

Scenario = Callable[[Service, Any], Awaitable[None]]  # (service, Faust's agent test wrapper)


def run_agent(
    brokers: str, data_dir: Path, agent_name: str, scenario: Scenario, app_id: str | None = None
) -> Service:
    """The service on `brokers` (its own app id unless `app_id`: another worker of that one),
    `scenario` run inside the agent's test context."""
    service = build_service(
        Settings(kafka_brokers=brokers, data_dir=data_dir, app_id=app_id or unique("optouts-agent"))
    )

    async def main() -> None:
        await create_topics(service.settings)  # as the worker does first: its changelogs too
        service.app.finalize()
        service.app.flow_control.resume()
        await service.app.producer.start()  # the agents buffer their sends: flushed below
        async with service.app.agents[agent_name].test_context() as agent:
            await scenario(service, agent)
        await service.app.producer.flush()
        await service.app.producer.stop()

    asyncio.run(main())
    return service


def put(agent: Any, key: str, value: dict[str, Any] | bytes) -> Awaitable[Any]:
    """Hand the agent one value and wait until it has handled it (folded or skipped)."""
    return put_batch(agent, [(key, value)])


def put_batch(
    agent: Any,
    records: list[tuple[str, dict[str, Any] | bytes | None]],
    partition: int | None = None,
    first_offset: int = 0,
) -> Awaitable[Any]:
    """Hand the agent (key, value) records as one fetched batch of one partition, as the worker's
    consumer does (streams.engine.batches), and wait until it has handled them all. The partition is the
    one murmur2 of the first key gives (`partition` to place the batch elsewhere)."""
    topic = {"resolve": MESSAGING_EVENTS, "project": PERSON_EVENTS}[agent.name]
    if partition is None:
        partition = expected_partition(records[0][0].encode(), PARTITIONS)
    batch = []
    now = int(time.time() * 1000)  # logged now, as a producer's CreateTime
    for offset, (key, value) in enumerate(records, start=first_offset):
        raw = json.dumps(value).encode() if isinstance(value, dict) else value
        size = len(raw) if raw is not None else -1
        batch.append(
            ConsumerRecord(topic, partition, offset, now, 0, key.encode(), raw, None, len(key), size, ())
        )
    return agent.put(Fetched(topic, partition, batch), partition=partition)


def metric(service: Service, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def test_resolve_stores_the_recipient_and_emits_the_opt_out_for_the_person(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop = received(phone, SENDER, "STOP")

    async def scenario(service: Service, agent: Any) -> None:
        await put(agent, phone, send)
        await put(agent, phone, stop)
        contacts = stored(service.tables.contacts.get(phone.encode()))
        assert list(contacts["recipients"][SENDER]) == [person]
        assert {e: a[0] for e, a in contacts["applied"].items()} == {stop["event_id"]: [person]}

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    emitted = latest_values(kafka_brokers, PERSON_EVENTS, {person})[person]
    assert (emitted["type"], emitted["source_event_id"], emitted["keyword"]) == (
        "opt_out.recorded",
        stop["event_id"],
        "STOP",
    )


def test_resolve_skips_and_counts_what_it_cannot_decode_then_goes_on(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()

    async def scenario(service: Service, agent: Any) -> None:
        await put(agent, phone, b"\xff not json")
        await put(agent, phone, {"type": "message.exploded", "event_id": "x"})
        await put(agent, phone, sent(person, phone, SENDER))
        assert list(stored(service.tables.contacts.get(phone.encode()))["recipients"][SENDER]) == [person]

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    assert metric(service, "optouts_decode_failures_total", topic="sms-messaging-events") == 2
    assert metric(service, "optouts_events_folded_total", stage="resolve", type="message.sent") == 1


def test_resolve_folds_a_fetched_batch_in_order_past_poison_and_duplicates_inside_it(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop = received(phone, SENDER, "STOP")

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(phone, send), (phone, b"{"), (phone, stop), (phone, stop)])
        contacts = stored(service.tables.contacts.get(phone.encode()))
        assert list(contacts["recipients"][SENDER]) == [person]  # the STOP saw the send before it
        assert {e: a[0] for e, a in contacts["applied"].items()} == {stop["event_id"]: [person]}

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    assert metric(service, "optouts_decode_failures_total", topic="sms-messaging-events") == 1
    assert metric(service, "optouts_duplicate_events_total", stage="resolve") == 1
    emitted = latest_values(kafka_brokers, PERSON_EVENTS, {person})[person]
    assert (emitted["type"], emitted["source_event_id"]) == ("opt_out.recorded", stop["event_id"])


def test_resolve_writes_nothing_for_a_send_to_a_known_recipient_but_rewrites_what_a_redelivery_touches(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    first, again = sent(person, phone, SENDER), sent(person, phone, SENDER)

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(phone, first)], first_offset=0)  # a new recipient: written
        await put_batch(agent, [(phone, again)], first_offset=1)  # known: nothing to write
        # The first batch again, as after a crash before its commit: the store may hold what the
        # changelog lost, so what it touches is written again though it changes nothing.
        await put_batch(agent, [(phone, first)], first_offset=0)

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    changelog = changelog_topic(service.settings, CONTACTS_TABLE)
    assert len(raw_values(kafka_brokers, changelog, {phone})[phone]) == 2


def test_a_redelivery_in_smaller_batches_than_the_fold_it_repeats_rewrites_every_key_it_touched(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # Found by the crash soak (seed 249169054 in CI): after a kill, the redelivered offsets came in
    # smaller batches than the batch folded before the kill; the first marked the store as folded
    # only up to its own end, so the next, still inside what the store already held, was taken for
    # new input and wrote nothing for a send to a recipient the store knew, though the changelog
    # had never received it: a restore lost that recipient.
    phone = unique_phone()
    partition = expected_partition(phone.encode(), PARTITIONS)
    other = next(
        p for p in iter(unique_phone, None) if expected_partition(p.encode(), PARTITIONS) == partition
    )
    to_phone, to_other = sent(unique("person"), phone, SENDER), sent(unique("person"), other, SENDER)

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(phone, to_phone), (other, to_other)], first_offset=0)
        # Redelivered one record at a time, as after a crash before the commit of offsets 0-1.
        await put_batch(agent, [(phone, to_phone)], first_offset=0)
        await put_batch(agent, [(other, to_other)], first_offset=1)

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    changelog = changelog_topic(service.settings, CONTACTS_TABLE)
    written = raw_values(kafka_brokers, changelog, {phone, other})
    assert (len(written[phone]), len(written[other])) == (2, 2)


def test_resolve_keeps_a_null_value_and_times_out_of_range_aside_and_folds_the_stop_after_them(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop = received(phone, SENDER, "STOP")
    poison: list[dict[str, Any] | bytes | None] = [
        None,
        {**sent(person, phone, SENDER), "occurred_at": "0001-01-01T00:00:00+01:00"},
        {**sent(person, phone, SENDER), "occurred_at": "9999-12-31T23:59:59-05:00"},
        {**sent(person, phone, SENDER), "occurred_at": "2999-01-01T00:00:00Z"},  # far ahead of its record
    ]

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(phone, send), *((phone, p) for p in poison), (phone, stop)])

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    assert metric(service, "optouts_decode_failures_total", topic="sms-messaging-events") == len(poison)
    emitted = latest_values(kafka_brokers, PERSON_EVENTS, {person})[person]
    assert (emitted["type"], emitted["source_event_id"]) == ("opt_out.recorded", stop["event_id"])


def test_project_keeps_a_null_value_and_a_time_out_of_range_aside_and_folds_what_follows(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person = unique("person")
    value = recorded(person, unique_phone(), SENDER)

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(
            agent,
            [
                (person, None),
                (person, {**value, "event_id": "x1", "occurred_at": "9999-12-31T23:59:59-05:00"}),
                (person, value),
            ],
        )

    service = run_agent(kafka_brokers, tmp_path, "project", scenario)
    assert metric(service, "optouts_decode_failures_total", topic="sms-person-events") == 2
    listed = latest_values(kafka_brokers, OPT_OUTS, {person})[person]
    assert [entry["sender"] for entry in listed["opt_outs"]] == [SENDER]


def test_resolve_rekeys_an_event_keyed_by_another_form_of_the_phone(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()

    async def scenario(service: Service, agent: Any) -> None:
        await put(agent, "(415) 555-0123", sent(person, "(415) 555-0123", SENDER))
        await put(agent, phone, sent(person, phone, SENDER))  # folded after the one above
        assert service.tables.contacts.get(b"+14155550123") is None  # not folded under the wrong key

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    assert metric(service, "optouts_rekeyed_events_total", topic="sms-messaging-events") == 1


def test_resolve_forwards_an_event_on_another_partition_than_its_phones_and_does_not_fold_it_there(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    home = expected_partition(phone.encode(), PARTITIONS)
    landed = (home + 1) % PARTITIONS  # as a producer with another partitioner placed it
    send = sent(person, phone, SENDER)

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(phone, send)], partition=landed)
        assert partition_store(service.tables.contacts, landed).get(phone.encode()) is None

    service = run_agent(kafka_brokers, tmp_path, "resolve", scenario)
    assert metric(service, "optouts_misplaced_records_total", topic="sms-messaging-events") == 1
    assert metric(service, "optouts_rekeyed_events_total", topic="sms-messaging-events") == 0
    # The copy is on the phone's own partition, under its key, where the workers fold it.
    [(partition, copy)] = placed(kafka_brokers, MESSAGING_EVENTS, phone)
    assert (partition, copy["event_id"]) == (home, send["event_id"])


def test_project_forwards_an_event_on_another_partition_than_its_persons(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person = unique("person")
    home = expected_partition(person.encode(), PARTITIONS)
    landed = (home + 1) % PARTITIONS
    recorded = OptOutRecorded(
        event_id=unique("evt"),
        occurred_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        person_id=person,
        sender=SENDER,
        phone=unique_phone(),
        cause="send_blocked",
        source_event_id=unique("SM"),
    )

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(person, encode(recorded))], partition=landed)
        assert partition_store(service.tables.opt_outs, landed).get(person.encode()) is None

    service = run_agent(kafka_brokers, tmp_path, "project", scenario)
    assert metric(service, "optouts_misplaced_records_total", topic="sms-person-events") == 1
    [(partition, copy)] = placed(kafka_brokers, PERSON_EVENTS, person)
    assert (partition, copy["event_id"]) == (home, recorded.event_id)


def test_project_folds_the_person_log_and_publishes_the_whole_list(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    recorded = OptOutRecorded(
        event_id=unique("evt"),
        occurred_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        person_id=person,
        sender=SENDER,
        phone=phone,
        cause="keyword",
        keyword="STOP",
        source_event_id=unique("SM"),
    )

    async def scenario(service: Service, agent: Any) -> None:
        await put(agent, person, encode(recorded))
        await put(agent, person, encode(recorded))  # redelivered
        state = stored(service.tables.opt_outs.get(person.encode()))
        assert state["history_length"] == 1
        history = read_history(person, 1, service.tables.opt_outs.get)
        assert [change.event_id for change in history] == [recorded.event_id]

    service = run_agent(kafka_brokers, tmp_path, "project", scenario)
    assert metric(service, "optouts_duplicate_events_total", stage="project") == 1
    published = latest_values(kafka_brokers, OPT_OUTS, {person})[person]
    assert [(e["sender"], e["phone"], e["keyword"]) for e in published["opt_outs"]] == [
        (SENDER, phone, "STOP")
    ]


def test_project_publishes_a_list_whose_entry_came_and_went_within_one_batch(
    kafka_brokers: str, tmp_path: Path
) -> None:
    person, phone = unique("person"), unique_phone()
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    common = {"person_id": person, "sender": SENDER, "phone": phone}
    recorded = OptOutRecorded(
        event_id=unique("evt"),
        occurred_at=at,
        cause="keyword",
        keyword="STOP",
        source_event_id=unique("SM"),
        **common,
    )
    cleared = OptOutCleared(
        event_id=unique("evt"), occurred_at=at, keyword="START", source_event_id=unique("SM"), **common
    )

    async def scenario(service: Service, agent: Any) -> None:
        await put_batch(agent, [(person, encode(recorded)), (person, encode(cleared))])

    run_agent(kafka_brokers, tmp_path, "project", scenario)
    # The entries are as before the batch (none), the list is not: it has a history now.
    published = latest_values(kafka_brokers, OPT_OUTS, {person})[person]
    assert published["opt_outs"] == [] and published["updated_at"] is not None
