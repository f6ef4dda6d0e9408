"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

from streams.engine.log_reader import read, snapshot

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


def produce(
    brokers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    partition: int,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send raw (key, value) records to one partition all in flight at once (multi-record batches),
    each with `headers`, and wait until every one is acknowledged by all replicas: fast, for tests
    that need many."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all", linger_ms=20)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, v, key=k, partition=partition, headers=headers) for k, v in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    run(send)


def latest_values(brokers: str, topic: str, keys: set[str]) -> dict[str, Any]:
    """The latest JSON value per key among `keys`, reading `topic` to its end (as `raw_values`)."""
    return {key: json.loads(values[-1]) for key, values in raw_values(brokers, topic, keys).items()}


def raw_values(brokers: str, topic: str, keys: set[str]) -> dict[str, list[bytes]]:
    """Every value of each key among `keys`, as bytes, in each partition's order, reading `topic` from
    its start to the end each partition has now: the end read from the log, not the brokers' high
    watermark (Tansu's can fall short), and not a quiet period (which a slow write outlasts), so that
    "nothing was appended" is a fact about the whole log."""

    async def read_all() -> dict[str, list[bytes]]:
        servers = brokers.split(",")
        found: dict[str, list[bytes]] = {}
        async for records in read(servers, await snapshot(servers, [topic])):
            for record in records:
                key = record.key.decode() if record.key else ""
                if key in keys and record.value is not None:
                    found.setdefault(key, []).append(record.value)
        return found

    return run(read_all)


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a loop of its own, in a thread of its own: the caller may be
    inside another loop (Playwright's sync API runs one)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine()).result()  # type: ignore[arg-type]
