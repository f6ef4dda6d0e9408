"""Whole partitions read for replay and verification: every record once, in offset order, in batches
small enough that a rebuild's memory does not follow the size of the partitions it reads."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.engine.log_reader import BATCH_RECORDS, Span, read, snapshot
from tests.factories import unique
from tests.integration.kafka import produce

pytestmark = pytest.mark.integration


def test_a_partition_is_read_to_its_snapshotted_end_in_bounded_batches(kafka_brokers: str) -> None:
    topic, count = unique("log-reader"), 3 * BATCH_RECORDS + 123
    servers = kafka_brokers.split(",")

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_brokers)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "-1"})])
        await admin.close()

    async def scenario() -> tuple[list[int], list[int], Span]:
        tp = TopicPartition(topic, 0)
        span = (await snapshot(servers, [topic]))[tp]
        sizes: list[int] = []
        offsets: list[int] = []
        async for records in read(servers, {tp: span}):
            sizes.append(len(records))
            offsets += [record.offset for record in records]
        return sizes, offsets, span

    asyncio.run(create())
    # Small records, many to a fetch: a fetch holds more records than a batch may.
    produce(kafka_brokers, topic, ((None, b"%d" % i) for i in range(count)), partition=0)
    sizes, offsets, span = asyncio.run(scenario())
    assert span == Span(0, count)
    assert offsets == list(range(count))
    assert max(sizes) <= BATCH_RECORDS, sizes
