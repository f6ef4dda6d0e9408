"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

T = TypeVar("T")


def publish(brokers: str, topic: str, records: Iterable[tuple[str, Any]]) -> None:
    """Send (key, value) records in order and wait for acks=all; dict values are sent as JSON."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all")
        await producer.start()
        try:
            for key, value in records:
                raw = json.dumps(value).encode() if isinstance(value, dict) else value
                await producer.send_and_wait(topic, raw, key=key.encode())
        finally:
            await producer.stop()

    run(send)


def latest_values(brokers: str, topic: str, keys: set[str], idle_seconds: float = 2.0) -> dict[str, Any]:
    """The latest JSON value per key among `keys`, reading `topic` from the start until nothing new
    arrives for `idle_seconds` (the broker's high watermark is not trusted to mark the end)."""
    return {
        key: json.loads(values[-1]) for key, values in raw_values(brokers, topic, keys, idle_seconds).items()
    }


def raw_values(brokers: str, topic: str, keys: set[str], idle_seconds: float = 2.0) -> dict[str, list[bytes]]:
    """Every value of each key among `keys`, as bytes, in each partition's order (as `latest_values`)."""

    async def read() -> dict[str, list[bytes]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found: dict[str, list[bytes]] = {}
            idle = 0.0
            while idle < idle_seconds:
                batch = await consumer.getmany(timeout_ms=250)
                records = [record for records in batch.values() for record in records]
                idle = idle + 0.25 if not records else 0.0
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key in keys and record.value is not None:
                        found.setdefault(key, []).append(record.value)
            return found
        finally:
            await consumer.stop()

    return run(read)


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a loop of its own, in a thread of its own: the caller may be
    inside another loop (Playwright's sync API runs one)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine()).result()  # type: ignore[arg-type]
