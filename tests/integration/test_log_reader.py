"""Whole partitions read for replay and verification: every record once, in offset order, in batches
small enough that a rebuild's memory does not follow the size of the partitions it reads."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.engine.log_reader import BATCH_RECORDS, Span, latest_values, read, snapshot
from streams.engine.versions import headers
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


def test_the_latest_value_of_a_key_is_its_highest_versions_not_the_last_in_the_log(
    kafka_brokers: str,
) -> None:
    # A zombie's late write of an older fold comes after the newer value in the log; readers of a
    # changelog or of sms-opt-outs keep the newer (streams.engine.versions). A value without a
    # version (written before versions were) is taken in log order.
    topic, servers = unique("versions"), kafka_brokers.split(",")
    asyncio.run(create_topic(kafka_brokers, topic))
    produce(kafka_brokers, topic, [(b"k", b"newer"), (b"j", b"j-first")], 0, headers=headers((0, 20)))
    produce(kafka_brokers, topic, [(b"k", b"zombie's")], 0, headers=headers((0, 10)))
    produce(kafka_brokers, topic, [(b"j", b"j-from-before-versions")], 0)
    produce(kafka_brokers, topic, [(b"n", b"gen 0")], 0, headers=headers((0, 99)))
    produce(kafka_brokers, topic, [(b"n", b"gen 1")], 0, headers=headers((1, 5)))

    async def latest() -> dict[bytes, tuple[int, bytes | None]]:
        return await latest_values(servers, await snapshot(servers, [topic]))

    assert asyncio.run(latest()) == {
        b"k": (0, b"newer"),
        b"j": (0, b"j-from-before-versions"),
        b"n": (0, b"gen 1"),  # a later generation's list replaces any of the one before
    }


async def create_topic(brokers: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "-1"})])
    await admin.close()


def test_a_snapshot_of_some_partitions_holds_only_those(kafka_brokers: str) -> None:
    # A table's catch_up reads one changelog partition: it snapshots that one, not every partition.
    topic = unique("log-reader-only")
    servers = kafka_brokers.split(",")

    async def scenario() -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_brokers)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"retention.ms": "-1"})])
        await admin.close()
        return sorted(await snapshot(servers, [topic], only=[1]))

    assert asyncio.run(scenario()) == [TopicPartition(topic, 1)]
