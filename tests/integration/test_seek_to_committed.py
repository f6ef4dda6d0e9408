"""After a rebalance, an input partition with nothing committed is sought to its beginning: aiokafka's
`seek_to_committed` leaves it where the last fetch left it, past batches the rebalance dropped
unfolded (streams.engine.transport, decision 13). Other topics (the changelogs) are the recovery's."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.engine.transport import seek_to_committed
from tests.factories import unique

pytestmark = pytest.mark.integration


def test_an_input_partition_with_nothing_committed_is_sought_to_its_beginning(kafka_brokers: str) -> None:
    inputs, changelog = unique("seek-committed-input"), unique("seek-committed-changelog")

    async def scenario() -> dict[str, list[int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_brokers)
        await admin.start()
        configs = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
        await admin.create_topics(
            [NewTopic(inputs, 2, 1, topic_configs=configs), NewTopic(changelog, 1, 1, topic_configs=configs)]
        )
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_brokers)
        await producer.start()
        sent = [
            await producer.send(topic, b"x", partition=p)
            for topic, p in [(inputs, 0), (inputs, 1), (changelog, 0)]
            for _ in range(20)
        ]
        await asyncio.gather(*sent)
        await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_brokers, group_id=unique("seek-committed"), enable_auto_commit=False
        )
        await consumer.start()
        try:
            committed, uncommitted, other = (
                TopicPartition(inputs, 0),
                TopicPartition(inputs, 1),
                TopicPartition(changelog, 0),
            )
            consumer.assign([committed, uncommitted, other])
            await consumer.commit({committed: 7})
            # Fetched to the end of each partition; then a rebalance dropped those records unfolded
            # (and the worker's commits for the second partition were all refused: none there).
            for tp in (committed, uncommitted, other):
                consumer.seek(tp, 20)

            async def positions() -> list[int]:
                return [await consumer.position(tp) for tp in (committed, uncommitted, other)]

            await consumer.seek_to_committed()  # aiokafka's own: the second partition stays at 20
            by_aiokafka = await positions()
            for tp in (committed, uncommitted, other):
                consumer.seek(tp, 20)
            await seek_to_committed(consumer, {inputs})
            return {"aiokafka": by_aiokafka, "ours": await positions()}
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == {"aiokafka": [7, 20, 20], "ours": [7, 0, 20]}
