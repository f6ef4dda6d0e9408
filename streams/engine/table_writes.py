"""One agent's table writes for one fetched batch: each key's value to its partition's RocksDB and its
changelog record, the way `table[key] = value` would, without Faust's per-key costs.

Per key, Faust finds the current event to pick the partition, puts to RocksDB with its own WAL
write (~7 µs here), sends the changelog record as a FutureMessage through its producer buffer and
writes the record's offset to RocksDB in a callback: ~150-200 µs a key, more than the fold. Here a
batch's values go to each partition's RocksDB as one write batch (~2 µs a key) and to its changelog
partition as aiokafka record batches (`create_batch` / `send_batch`: one future per batch, not per
record), and the changelog offset Faust's recovery starts from (its persisted offset) is written
once per batch, once the last record is acknowledged.

The agents keep what a batch changed in memory until `done`, so nothing reads a key between its fold
and its write. The local store is written before the changelog is acknowledged, and the persisted
offset only after both: a crash in between leaves the local store ahead of the changelog, which the
redelivered batch makes good. For that the store also keeps, in the same write batch as the values,
the last input offset folded into it (`folded_up_to`): a batch that reaches back to it is a
redelivery and writes every key it touched, changed or not; any other batch writes only what changed
(a send to a known recipient writes nothing). The marker opens a batch's changelog records, so that
a store restored from any of them takes the batch again for a redelivery; a second marker
(`holds_up_to`) closes them, so that a store restored from fewer than all of them knows it must read
on before it folds past them.

Each value carries its version (streams.engine.versions: the generation and the input offset the
batch folded up to) as headers of its changelog record and, in the same write batch, next to it in
the store, so that a restore keeps the newest value of a key whatever order the log has them in.
The persisted offset advances only over changelog records that follow the ones the store already
holds: a record batch acknowledged past another worker's records (this worker woke from a pause to
find its partitions had been taken over) leaves it where it was, so that the next recovery reads
those records instead of skipping them.

Decision records: docs/decisions/0003-per-batch-table-writes.md,
docs/decisions/0007-folded-up-to-marker.md, docs/decisions/0012-versioned-values.md.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import TP
from rocksdict import Rdict, WriteBatch

from streams.engine.sends import Sends
from streams.engine.tables import BytesTable, partition_store
from streams.engine.versions import (
    FOLDED_UP_TO,
    HOLDS_UP_TO,
    MARKERS,
    Version,
    decode_marker,
    decode_version,
    encode_marker,
    encode_version,
    headers,
    supersedes,
    version_key,
)


def folded_up_to(store: Rdict) -> int:
    """The last input offset whose fold this partition's store holds; -1 for none. One not ours
    makes every batch a redelivery, which writes all it touches: the safe side."""
    return decode_marker(store.get(FOLDED_UP_TO), unreadable=sys.maxsize)


def holds_up_to(store: Rdict) -> int:
    """The last input offset whose fold's values this partition's store holds every one of; -1 for
    none, and for one not ours (the changelog is read before the next batch: the safe side)."""
    return decode_marker(store.get(HOLDS_UP_TO))


class TableWrites:
    def __init__(self, sends: Sends, table: BytesTable) -> None:
        self.sends = sends
        self.table = table
        # partition -> key -> (value, version): written to RocksDB when the batch is done
        self._stores: dict[int, dict[bytes, tuple[bytes, Version]]] = {}
        self._folded: dict[int, int] = {}  # partition -> input offset folded up to
        self._marked: dict[int, int] = {}  # partition -> the offset of this batch's first marker
        self._changelogs: dict[int, Any] = {}  # partition -> aiokafka BatchBuilder being filled
        self._shipped: dict[int, list[tuple[asyncio.Future[Any], int]]] = {}  # record batches, sizes
        self._headers: tuple[Version, list[tuple[str, bytes]]] | None = None  # the batch's, made once

    async def put(self, key: bytes, value: bytes, partition: int, version: Version) -> None:
        """`table[key] = value` in `partition`, of `version`, written when the batch is `done`."""
        self._stores.setdefault(partition, {})[key] = (value, version)
        if partition not in self._marked:
            # First of the batch's records: whoever restores any of them knows how far the fold
            # they come from went, and takes the input up to there for a redelivery. A batch
            # killed with only some of its records delivered has this one among them.
            self._marked[partition] = version[1]
            await self._append(partition, FOLDED_UP_TO, encode_marker(version[1]), None)
        if self._headers is None or self._headers[0] != version:
            self._headers = (version, headers(version))
        await self._append(partition, key, value, self._headers[1])

    def folded(self, partition: int, offset: int) -> None:
        """Record in `partition`'s store, with this batch's values, that it holds the fold of the
        input up to `offset`."""
        self._folded[partition] = offset

    async def done(self) -> None:
        """Write the batch's values to the local stores and ship the rest of their changelog records;
        advance each changelog partition's persisted offset as its record batches are acknowledged."""
        for partition, offset in self._marked.items():
            # Last of the batch's records: whoever restores it holds all the others.
            await self._append(partition, HOLDS_UP_TO, encode_marker(offset), None)
        for partition in self._stores.keys() | self._folded.keys():
            store = partition_store(self.table, partition)
            store.write(self._write_batch(store, partition))
        self._stores.clear()
        self._folded.clear()
        self._marked.clear()
        for partition in list(self._changelogs):
            await self._ship(partition)
        for partition, shipped in self._shipped.items():
            tp = TP(self._changelog_topic(), partition)
            for future, size in shipped:  # acknowledged in order: one in flight per partition
                future.add_done_callback(functools.partial(self._persist, tp, size))
        self._shipped.clear()

    def discard(self) -> None:
        """Forget what a failed batch put and did not write or ship: it is folded again from the start.
        (What was shipped stays shipped: the batch folded again writes the same values.)"""
        self._stores.clear()
        self._folded.clear()
        self._marked.clear()
        self._changelogs.clear()

    def _write_batch(self, store: Rdict, partition: int) -> WriteBatch:
        """The partition's values, each unless the store holds a newer version of its key: the
        table's recovery may have written one while this batch was folded from what it read before
        (a rebalance in the middle of the batch gave the partition back after another worker had
        folded further), and the store must not go back to the older fold, on which the next
        batches would build."""
        batch = WriteBatch(raw_mode=True)
        for key, (value, version) in self._stores.get(partition, {}).items():
            if supersedes(version, decode_version(store.get(version_key(key)))):
                batch.put(key, value)
                batch.put(version_key(key), encode_version(version))
        if partition in self._folded:
            for marker in MARKERS:  # in one write with the values: the store holds them all
                batch.put(marker, encode_marker(self._folded[partition]))
        return batch

    async def _append(
        self, partition: int, key: bytes, value: bytes, carried: list[tuple[str, bytes]] | None
    ) -> None:
        """Add a record to `partition`'s changelog record batch, shipping the batch once it is full."""
        changelog = self._changelogs.get(partition)
        if changelog is None:
            changelog = self._changelogs[partition] = self.sends.new_batch()
        if changelog.append(key=key, value=value, timestamp=None, headers=carried) is None:  # full
            await self._ship(partition)
            changelog = self._changelogs[partition] = self.sends.new_batch()
            changelog.append(key=key, value=value, timestamp=None, headers=carried)

    async def _ship(self, partition: int) -> None:
        changelog = self._changelogs.pop(partition)
        future = await self.sends.send_batch(changelog, self._changelog_topic(), partition)
        self._shipped.setdefault(partition, []).append((future, changelog.record_count()))

    def _changelog_topic(self) -> str:
        topic: str = self.table.changelog_topic.get_topic_name()
        return topic

    def _persist(self, tp: TP, size: int, future: asyncio.Future[Any]) -> None:
        # The future holds the record batch's base offset; the persisted offset becomes its last
        # record's, if the batch follows what the store holds. Records between them are another
        # worker's, written while this one did not own the partition: the store lacks them, and the
        # next recovery must read them (streams.engine.versions keeps the newer of each key).
        if future.cancelled() or future.exception() is not None:
            return
        base = future.result().offset
        persisted = self.table.data.persisted_offset(tp)
        if base == (-1 if persisted is None else persisted) + 1:
            self.table.data.set_persisted_offset(tp, base + size - 1)


async def write_again(
    table: BytesTable,
    sends: Sends,
    partition: int,
    keys: set[bytes],
    also: Callable[[bytes, bytes, Version], Awaitable[None]] | None = None,
) -> None:
    """Send each key's stored value again, with its version, to `partition` of the table's changelog
    (and to `also`): a late record of an older fold was found after it, and the newest value must be
    the last in the log again (streams.engine.tables.VersionedTable)."""
    store = partition_store(table, partition)
    topic: str = table.changelog_topic.get_topic_name()
    for key in sorted(keys):
        value, version = store.get(key), decode_version(store.get(version_key(key)))
        if value is None or version is None:
            continue
        await sends.send(topic, key, value, partition=partition, headers=headers(version))
        if also is not None:
            await also(key, value, version)
