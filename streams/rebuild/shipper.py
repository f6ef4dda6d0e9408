"""Sending what a rebuild writes (facts, changelog records, lists) with a bounded number of records in
flight: a replay of millions of keys holds a few thousand delivery futures at a time, not millions,
and any record the brokers refuse fails the rebuild at the next `drain`, before the store's commit
that would have recorded it as sent."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

_IN_FLIGHT = 5_000


class Shipper:
    def __init__(self, servers: list[str]) -> None:
        # acks=all: a rebuild's records are acknowledged by every in-sync replica before its store
        # records them as sent.
        self.producer = AIOKafkaProducer(
            bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=1024 * 1024
        )
        self._futures: list[asyncio.Future[Any]] = []
        self.sent = 0

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Append to the producer's batch; None partitions by key (murmur2)."""
        self._futures.append(
            await self.producer.send(topic, value, key=key, partition=partition, headers=headers)
        )
        self.sent += 1
        if len(self._futures) >= _IN_FLIGHT:
            await self.drain()

    async def drain(self) -> None:
        """Wait until every record sent so far is acknowledged (raises the first refusal)."""
        futures, self._futures = self._futures, []
        if futures:
            await asyncio.gather(*futures)

    async def partitions(self, topic: str) -> int:
        return len(await self.producer.partitions_for(topic))


async def partition_count(servers: list[str], topic: str) -> int:
    """The partitions of `topic`, as a producer sees them."""
    shipper = Shipper(servers)
    await shipper.start()
    try:
        return await shipper.partitions(topic)
    finally:
        await shipper.stop()
