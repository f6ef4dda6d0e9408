"""What the agents write, straight through the app's aiokafka producer: records to topics, and table
values as a local store write plus their changelog record.

Faust's own path for each record (`send_soon`, a FutureMessage, the producer buffer drained one
`publish_message` at a time, a callback per changelog record writing its offset to RocksDB) cost
~150-200 µs per record here, more than the fold: with every `message.sent` writing its phone's
contacts, the sends trailed the folds by tens of seconds at 200,000 events, and the person events,
a STOP's second hop among them, queued behind them. The same producer still carries everything, so
Faust's commit, which flushes it first (at-least-once), waits for these records too.

A batch's table writes go to each partition's RocksDB as one write batch when the batch is done
(`batch_done`): one WAL write instead of one per key (~7 µs a put here, ~2 µs in a batch). The agents
keep what the batch changed in memory until then, so nothing reads a key between its fold and its
write; the persisted offset is only set after both the write and the changelog's acknowledgement.

The records and their keys are the ones Faust would send: raw bytes, the table's changelog topic,
the partition of the batch the key came in. A record the brokers refuse crashes the worker, so that
nothing after it is committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import TP
from rocksdict import WriteBatch

from streams.tables import partition_store


class Sends:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        # Per changelog partition, the last record of the batch: once it is acknowledged, the
        # store is known to be in the changelog up to it (Faust's persisted offset, where a
        # restart's recovery starts reading).
        self._last: dict[TP, tuple[faust.Table, asyncio.Future[Any]]] = {}
        self._writes: dict[tuple[faust.Table, int], WriteBatch] = {}
        self._crashing: asyncio.Future[Any] | None = None

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> asyncio.Future[Any]:
        """Append to the producer's batch; None partitions by key (murmur2), as Faust does. The
        returned future is the record's delivery."""
        producer = self.app.producer._producer  # type: ignore[attr-defined]
        future: asyncio.Future[Any] = await producer.send(topic, value, key=key, partition=partition)
        future.add_done_callback(self._delivered)
        return future

    async def store(self, table: faust.Table, key: bytes, value: bytes, partition: int) -> None:
        """`table[key] = value` in `partition`: its changelog record sent now, the local store written
        with the batch's other writes in `batch_done`."""
        writes = self._writes.get((table, partition))
        if writes is None:
            writes = self._writes[table, partition] = WriteBatch(raw_mode=True)
        writes.put(key, value)
        changelog = TP(table.changelog_topic.get_topic_name(), partition)
        self._last[changelog] = (table, await self.send(changelog.topic, key, value, partition))

    def batch_done(self) -> None:
        """Write the batch's values to the local stores, and record each changelog partition's
        offset in its store once its last record is acked."""
        for (table, partition), writes in self._writes.items():
            partition_store(table, partition).write(writes)
        self._writes.clear()
        for tp, (table, future) in self._last.items():
            future.add_done_callback(lambda done, tp=tp, table=table: _persist(table, tp, done))
        self._last.clear()

    def _delivered(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            crash = self.app.crash(future.exception())  # type: ignore[arg-type]
            self._crashing = asyncio.ensure_future(crash)  # held: a task nothing holds may vanish


def _persist(table: faust.Table, tp: TP, future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        table.data.set_persisted_offset(tp, future.result().offset)
