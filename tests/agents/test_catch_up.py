"""A batch that starts past the input offset the store holds the fold of is folded on top of what the
table's changelog holds beyond what the store has read (streams.engine.tables.VersionedTable.catch_up),
not on the store as it is: another worker folded the records between."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
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

FIRST, LATER = "+14155550111", "+14155550122"

# What the second worker's store holds before its batch, beyond nothing: set up by the test.
Prepare = Callable[[Service, int], Awaitable[None]]


def recipients_after_two_workers(
    kafka_brokers: str, tmp_path: Path, prepare: Prepare | None = None
) -> list[str]:
    """One worker of an app folds a phone's send from FIRST; a second worker of the same app, its store
    as `prepare` leaves it (empty by default: it never read the first worker's changelog records), is
    handed the phone's next send, from LATER. The phone's recipients in the second worker's store."""
    app_id, person, phone = unique("optouts-agent"), unique("person"), unique_phone()
    partition = expected_partition(phone.encode(), PARTITIONS)

    def records(offset: int, sender: str) -> Fetched:
        value = json.dumps(sent(person, phone, sender)).encode()
        record = ConsumerRecord(
            MESSAGING_EVENTS, partition, offset, 0, 0, phone.encode(), value, None, 12, len(value), ()
        )
        return Fetched(MESSAGING_EVENTS, partition, [record])

    async def earlier_worker(service: Service, agent: Any) -> None:
        await agent.put(records(0, FIRST), partition=partition)

    run_agent(kafka_brokers, tmp_path / "w0", "resolve", earlier_worker, app_id=app_id)
    stored: dict[str, Any] = {}

    async def later_worker(service: Service, agent: Any) -> None:
        if prepare is not None:
            await prepare(service, partition)
        await agent.put(records(1, LATER), partition=partition)
        stored.update(json.loads(partition_store(service.tables.contacts, partition).get(phone.encode())))

    run_agent(kafka_brokers, tmp_path / "w1", "resolve", later_worker, app_id=app_id)
    return sorted(stored["recipients"])


@pytest.mark.integration
def test_a_batch_past_what_the_store_holds_is_folded_on_what_the_changelog_has_beyond(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # The second worker's store never read the first worker's records (it recovered before they were
    # written, then paused): it must fold its batch on top of what the changelog holds, not on an
    # empty state.
    assert recipients_after_two_workers(kafka_brokers, tmp_path) == [FIRST, LATER]


@pytest.mark.integration
def test_a_store_that_read_a_batch_s_first_changelog_records_but_not_its_last_catches_up_first(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A batch's changelog records go out in several record batches, and a recovery may end between
    # two of them (a broker's under-reported log end, a writer still sending): the store then holds
    # the batch's marker, which lets the next batch (from the marker + 1) pass for a follower, without
    # the batch's values. The chaos soak: two records of one phone folded up to 797, the later
    # folded on a store without the recipient of 787, and equal versions keep the later.
    async def recovery_that_ended_early(service: Service, partition: int) -> None:
        table = service.tables.contacts
        changelog = TopicPartition(table.changelog_topic.get_topic_name(), partition)
        async for records in read(kafka_brokers.split(","), {changelog: Span(0, 1)}):
            table.apply_changelog_batch([ChangelogEvent(record) for record in records])

    assert recipients_after_two_workers(kafka_brokers, tmp_path, recovery_that_ended_early) == [FIRST, LATER]
