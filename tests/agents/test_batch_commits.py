"""A fetched batch's offsets are committed only once its agent folded it, in the consumer generation
it was fetched in (streams.engine.transport), not on Faust's ack: Faust also acks batches no agent
folded, and its compiled stream iterator acks past any override of the consumer's `ack`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.engine.batches import Fetched, folded
from streams.engine.tables import partition_store
from streams.engine.topics import MESSAGING_EVENTS
from streams.pipeline.placement import expected_partition
from streams.settings import Settings
from streams.worker import Service, build_service
from tests.agents.test_agents import PARTITIONS, SENDER, run_agent
from tests.factories import sent, unique, unique_phone

TPART = TP(MESSAGING_EVENTS, 1)


def records(first: int, last: int) -> list[Any]:
    return [
        SimpleNamespace(
            topic=MESSAGING_EVENTS,
            partition=TPART.partition,
            offset=offset,
            key=b"+14155550100",
            value=b"{}",
            timestamp=1_700_000_000_000,
            timestamp_type=0,
            serialized_value_size=2,
        )
        for offset in range(first, last + 1)
    ]


def worker(tmp_path: Path) -> Service:
    """A worker's service, not started; its consumer counts the input topic's acks, as it does once
    the agent's stream subscribed it (Faust's conductor)."""
    service = build_service(Settings(kafka_brokers="127.0.0.1:1", data_dir=tmp_path))
    service.app.topics._acking_topics.add(MESSAGING_EVENTS)
    return service


def test_a_batch_faust_acks_unfolded_is_not_committed_one_folded_is(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = worker(tmp_path)
        app, topic, consumer = service.app, service.topics.messaging_events, service.app.consumer
        app.flow_control.resume()  # as a started worker's is
        stream = app.channel(maxsize=10).stream()
        iterator = stream.__aiter__()  # Faust's compiled iterator, where it is installed: the agents'
        await stream.channel.put(await topic.decode(consumer._batch_message(TPART, records(10, 19))))
        await stream.channel.put(await topic.decode(consumer._batch_message(TPART, records(20, 29))))
        first = await asyncio.wait_for(iterator.__anext__(), 5)
        # The agent did not fold it (it crashed on it; it was cancelled): Faust acks it as it hands
        # over the next batch, and had that ack counted, a commit of 20 would skip records 10-19.
        second = await asyncio.wait_for(iterator.__anext__(), 5)
        assert 19 in consumer._acked[TPART]
        assert consumer._new_offset(TPART) is None
        folded(app, second)
        assert consumer._new_offset(TPART) == 30
        assert first.records[0].offset == 10
        await iterator.aclose()

    asyncio.run(scenario())


def test_a_batch_folded_across_a_rebalance_is_not_committed(tmp_path: Path) -> None:
    service = worker(tmp_path)
    app, consumer = service.app, service.app.consumer
    fetched = consumer._batch_message(TPART, records(0, 4)).value

    app.consumer_generation_id += 1  # the partition was assigned again while the batch was folded
    folded(app, fetched)
    assert consumer._new_offset(TPART) is None  # fetched again from the committed offset

    refetched = consumer._batch_message(TPART, records(0, 9)).value
    folded(app, refetched)
    app.consumer_generation_id += 1  # folded, then a rebalance before the commit
    assert consumer._new_offset(TPART) is None

    again = consumer._batch_message(TPART, records(0, 4)).value
    folded(app, again)
    assert consumer._new_offset(TPART) == 5


@pytest.mark.integration
def test_the_agent_tells_the_consumer_a_batch_was_folded_once_its_writes_are_done(
    kafka_brokers: str, tmp_path: Path
) -> None:
    phone = unique_phone()
    partition = expected_partition(phone.encode(), PARTITIONS)
    send = json.dumps(sent(unique("person"), phone, SENDER)).encode()
    record = ConsumerRecord(
        MESSAGING_EVENTS, partition, 41, 0, 0, phone.encode(), send, None, 12, len(send), ()
    )
    tp = TP(MESSAGING_EVENTS, partition)

    async def scenario(service: Service, agent: Any) -> None:
        consumer = service.app.consumer
        assert consumer._new_offset(tp) is None
        await agent.put(Fetched(MESSAGING_EVENTS, partition, [record]), partition=partition)
        assert partition_store(service.tables.contacts, partition).get(phone.encode()) is not None
        assert consumer._new_offset(tp) == 42

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)
