"""The facts exchange of a rebuild. Stage 1 folds phones, partition by partition, but the facts it
derives belong to persons, folded in the persons' partitions, which other processes (or machines) may
hold: the facts cross over through a topic of the rebuild's own, keyed by person as `sms-person-events`
is, the way Kafka Streams repartitions. Each phone partition, once folded, writes an end marker to every
partition of the exchange: a person partition has every fact once it has read a marker from every phone
partition. Facts sent twice (a stage 1 resumed after a kill) are taken once, by id.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from streams.progress import say
from streams.rebuild.shipper import Shipper
from streams.settings import Settings

END = b"\x00optouts:end"  # no person id holds a NUL
_NOTICE_SECONDS = 15.0  # while waiting for other processes' markers, a line this often


def exchange_topic(app_id: str) -> str:
    return f"{app_id}-rebuild-facts"


async def create_exchange(settings: Settings, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.brokers)
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            return
        # Explicit configs (some brokers describe only those a topic was created with); kept until
        # the replay is done, then deleted.
        configs = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(topic, partitions, settings.replication_factor, topic_configs=configs)]
            )
    finally:
        await admin.close()


async def delete_exchange(settings: Settings, topic: str, *, quiet: bool = False) -> None:
    """Delete the exchange once every process is done with it; a broker that refuses leaves it
    (`quiet`: none may be there)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.brokers)
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            await admin.delete_topics([topic])
    except KafkaError as exc:
        if not quiet:
            say(f"the exchange topic {topic} was left behind ({exc!r}): delete it when convenient")
    finally:
        await admin.close()


async def send_end(shipper: Shipper, topic: str, partitions: int, phone_partition: int, end: int) -> None:
    """Mark, in every partition of the exchange, that `phone_partition` sent all its facts."""
    marker = json.dumps({"partition": phone_partition, "end": end}).encode()
    for partition in range(partitions):
        await shipper.send(topic, END, marker, partition=partition)
    await shipper.drain()


def end_of(record: ConsumerRecord) -> tuple[int, int] | None:
    """(phone partition, its end offset) when `record` is an end marker."""
    if record.key != END:
        return None
    marker = json.loads(record.value)
    return int(marker["partition"]), int(marker["end"])


async def follow(
    servers: list[str], tp: TopicPartition, start: int, waiting_for: WaitingFor
) -> AsyncIterator[list[ConsumerRecord]]:
    """The records of one exchange partition from `start` on, as they come; the caller stops when it
    has every marker. Says which phone partitions it waits for while none comes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=200)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        quiet_since = time.monotonic()
        while True:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records = batch.get(tp, [])
            if records:
                quiet_since = time.monotonic()
                yield records
            elif time.monotonic() - quiet_since >= _NOTICE_SECONDS:
                quiet_since = time.monotonic()
                say(f"{tp.topic}[{tp.partition}]: waiting for stage 1 of phone partitions {waiting_for()}")
    finally:
        await consumer.stop()


class WaitingFor:
    """The phone partitions whose end markers a person partition has not read yet."""

    def __init__(self, partitions: int, ends: dict[int, int]) -> None:
        self.partitions = partitions
        self.ends = ends

    def __call__(self) -> list[int]:
        return [p for p in range(self.partitions) if p not in self.ends]
