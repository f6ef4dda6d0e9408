"""A batch that starts past the input offset the store holds the fold of is folded on top of what the
table's changelog holds beyond what the store has read (streams.engine.tables.VersionedTable.catch_up),
not on the store as it is: another worker folded the records between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.engine.batches import Fetched
from streams.engine.log_reader import Span, read
from streams.engine.tables import ChangelogEvent, partition_store
from streams.engine.topics import MESSAGING_EVENTS
from streams.pipeline.placement import expected_partition
from streams.worker import Service
from tests.agents.test_agents import PARTITIONS, run_agent
from tests.factories import sent, unique, unique_phone


@pytest.mark.integration
def test_a_batch_past_what_the_store_holds_is_folded_on_what_the_changelog_has_beyond(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # One worker folds a phone's first sends; a second worker of the same app, whose store never
    # read them (it recovered before they were written, then paused), is handed the next batch: it
    # must fold it on top of what the changelog holds, not on an empty state.
    app_id, person, phone = unique("optouts-agent"), unique("person"), unique_phone()
    partition = expected_partition(phone.encode(), PARTITIONS)
    first, later = "+14155550111", "+14155550122"

    def records(offset: int, sender: str) -> Fetched:
        value = json.dumps(sent(person, phone, sender)).encode()
        record = ConsumerRecord(
            MESSAGING_EVENTS, partition, offset, 0, 0, phone.encode(), value, None, 12, len(value), ()
        )
        return Fetched(MESSAGING_EVENTS, partition, [record])

    async def earlier_worker(service: Service, agent: Any) -> None:
        await agent.put(records(0, first), partition=partition)

    run_agent(kafka_brokers, tmp_path / "w0", "resolve", earlier_worker, app_id=app_id)
    stored: dict[str, Any] = {}

    async def later_worker(service: Service, agent: Any) -> None:
        await agent.put(records(1, later), partition=partition)
        stored.update(json.loads(partition_store(service.tables.contacts, partition).get(phone.encode())))

    run_agent(kafka_brokers, tmp_path / "w1", "resolve", later_worker, app_id=app_id)
    assert sorted(stored["recipients"]) == [first, later]


@pytest.mark.integration
def test_a_store_that_read_a_batch_s_first_changelog_records_but_not_its_last_catches_up_first(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A batch's changelog records go out in several record batches, and a recovery may end between
    # two of them (a broker's under-reported log end, a writer still sending): the store then holds
    # the batch's marker, which lets the next batch (from the marker + 1) pass for a follower, without
    # the batch's values. The chaos soak: two records of one phone folded up to 797, the later
    # folded on a store without the recipient of 787, and equal versions keep the later.
    app_id, person, phone = unique("optouts-agent"), unique("person"), unique_phone()
    partition = expected_partition(phone.encode(), PARTITIONS)
    first, later = "+14155550111", "+14155550122"

    def records(offset: int, sender: str) -> Fetched:
        value = json.dumps(sent(person, phone, sender)).encode()
        record = ConsumerRecord(
            MESSAGING_EVENTS, partition, offset, 0, 0, phone.encode(), value, None, 12, len(value), ()
        )
        return Fetched(MESSAGING_EVENTS, partition, [record])

    async def earlier_worker(service: Service, agent: Any) -> None:
        await agent.put(records(0, first), partition=partition)

    run_agent(kafka_brokers, tmp_path / "w0", "resolve", earlier_worker, app_id=app_id)
    stored: dict[str, Any] = {}

    async def later_worker(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        servers = kafka_brokers.split(",")
        changelog = TopicPartition(table.changelog_topic.get_topic_name(), partition)
        async for read_records in read(servers, {changelog: Span(0, 1)}):  # a recovery that ended early
            table.apply_changelog_batch([ChangelogEvent(record) for record in read_records])
        await agent.put(records(1, later), partition=partition)
        stored.update(json.loads(partition_store(table, partition).get(phone.encode())))

    run_agent(kafka_brokers, tmp_path / "w1", "resolve", later_worker, app_id=app_id)
    assert sorted(stored["recipients"]) == [first, later]
