"""A record the consumer drops is fetched again by seeking back to it, never by seeking forward: a
recovery may have sought the partition further back meanwhile (streams.engine.transport)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from streams.engine.transport import seek_back
from tests.factories import unique

pytestmark = pytest.mark.integration


def test_seek_back_moves_a_position_back_never_forward(kafka_brokers: str) -> None:
    topic = unique("seek-back")

    async def scenario() -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_brokers)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "-1"})])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_brokers)
        await producer.start()
        await asyncio.gather(*[await producer.send(topic, b"x", partition=0) for _ in range(20)])
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_brokers, enable_auto_commit=False)
        await consumer.start()
        try:
            partition, tp = TopicPartition(topic, 0), TP(topic, 0)
            consumer.assign([partition])
            positions = []
            # A standby's recovery sought it to what its store holds (5); the consumer then drops a
            # record fetched before that seek (12) and seeks back to it: it must stay at 5.
            consumer.seek(partition, 5)
            await seek_back(consumer, tp, 12)
            positions.append(await consumer.position(partition))
            await seek_back(consumer, tp, 3)  # a record before the position: fetched again
            positions.append(await consumer.position(partition))
            fetched = await consumer.getmany(partition, timeout_ms=5000)
            positions.append(fetched[partition][0].offset)
            return positions
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == [5, 3, 3]
