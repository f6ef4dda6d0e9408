"""Changelog recovery reads to the log's real end, whatever high watermark the broker reports."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from streams.engine.recovery import log_end_offsets
from tests.factories import unique

pytestmark = pytest.mark.integration


def test_log_end_offsets_count_every_record_of_batched_writes(kafka_brokers: str) -> None:
    topic, sent = unique("log-end"), {0: 0, 1: 0}

    async def scenario() -> tuple[dict[TP, int], dict[TP, int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_brokers)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "-1"})])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_brokers, acks="all", linger_ms=50)
        await producer.start()
        # Many sends in flight at once go out as multi-record batches.
        futures = []
        for i in range(1000):
            partition = i % 3 % 2
            sent[partition] += 1
            futures.append(await producer.send(topic, b"x", partition=partition))
        await asyncio.gather(*futures)
        await producer.stop()
        tps = [TP(topic, 0), TP(topic, 1)]
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_brokers)
        await consumer.start()
        reported = await consumer.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
        await consumer.stop()
        reported_by_tp = {TP(tp.topic, tp.partition): offset for tp, offset in reported.items()}
        return reported_by_tp, await log_end_offsets(
            kafka_brokers.split(","), {tp: reported_by_tp[tp] for tp in tps}
        )

    reported, ends = asyncio.run(scenario())
    assert ends == {TP(topic, 0): sent[0], TP(topic, 1): sent[1]}, f"the broker reported {reported}"
