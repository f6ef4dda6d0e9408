"""What the agents send, straight through the app's aiokafka producer: records to topics, and record
batches (streams.engine.table_writes, for the tables' changelogs).

Faust's own path for each record (`send_soon`, a FutureMessage, the producer buffer drained one
`publish_message` at a time) cost ~150-200 µs per record here, more than the fold: the sends
trailed the folds by tens of seconds at 200,000 events, and the person events, a STOP's second hop
among them, queued behind them. The same producer still carries everything, so Faust's commit,
which flushes it first (at-least-once), waits for these records too.

A record the brokers refuse crashes the worker, so that nothing after it is committed.

Decision record: docs/decisions/0002-direct-sends.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from streams.engine import faust_hooks


class Sends:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._crashing: asyncio.Future[Any] | None = None

    @property
    def _producer(self) -> Any:
        return faust_hooks.kafka_producer(self.app)

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Append to the producer's batch; None partitions by key (murmur2), as Faust does. The
        returned future is the record's delivery."""
        future: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, partition=partition, headers=headers
        )
        future.add_done_callback(self._delivered)
        return future

    async def partition_count(self, topic: str) -> int:
        """The partitions of `topic` in the producer's metadata (fetched first if it has none): what
        a keyed send is placed among."""
        partitions = await self._producer.partitions_for(topic)
        return len(partitions)

    def new_batch(self) -> Any:
        """An empty aiokafka record batch (`append(key=, value=, timestamp=, headers=)`; None once
        full)."""
        return self._producer.create_batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        """Send a record batch to `partition` of `topic` as it is: one request entry, one future
        (its result's `offset` is the batch's first record's)."""
        batch.close()  # complete: no linger, the sender takes it on its next round
        future: asyncio.Future[Any] = await self._producer.send_batch(batch, topic, partition=partition)
        future.add_done_callback(self._delivered)
        return future

    def _delivered(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            # Faust's crash() is typed for an Exception; a future's failure is typed BaseException.
            crash = self.app.crash(future.exception())  # type: ignore[arg-type]
            self._crashing = asyncio.ensure_future(crash)  # held: a task nothing holds may vanish
