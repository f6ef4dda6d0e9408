"""The two RocksDB tables (with Kafka changelogs). Keys are the UTF-8 entity ids; values are the
folds' `to_json` forms as compact JSON bytes, encoded once by the agents and written as they are to
the store and to the changelog (Faust would encode a dict twice, once for each).

The agents read and write a partition's RocksDB directly (`partition_store`; writes in
streams.engine.table_writes): Faust's `table.get` goes through a mapping's `get`, a `__contains__` and a
`__getitem__` that each find the current event to pick the partition, ~25 µs a read where RocksDB's
own is ~1 µs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, cast

import faust
import pydantic_core
from aiokafka import TopicPartition
from faust.types import TP, EventT
from rocksdict import Rdict, WriteBatch

from streams.engine import faust_hooks
from streams.engine.log_reader import read, snapshot
from streams.engine.store_memory import process_budget
from streams.engine.topics import CONTACTS_TABLE, OPT_OUTS_TABLE
from streams.engine.versions import (
    MARKERS,
    Version,
    decode_marker,
    decode_version,
    encode_marker,
    encode_version,
    supersedes,
    version_key,
    version_of,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

# Both tables map the raw key bytes to the fold's compact JSON bytes (Faust's Table, versioned).
BytesTable: TypeAlias = "VersionedTable"


@dataclass(frozen=True)
class Tables:
    contacts: BytesTable  # per phone: projections.contacts.Contacts
    opt_outs: BytesTable  # per person: projections.opt_outs.PersonOptOuts


# Faust opens every partition's RocksDB with a 64 MiB write buffer (up to 3 of them) and a 2 GiB
# block cache of its own. With 2 tables of 8 partitions, a million phones' contacts (~300 MB) never
# filled a write buffer: the whole table stayed in memory. Smaller buffers are flushed to disk
# (on RocksDB's own thread) and reads go through the bloom filters and a small cache. The cache and
# the write buffers of every store count against one budget per process (streams.engine.store_memory),
# which replaces Faust's cache per store.
STORE_OPTIONS = {
    "driver": "rocksdict",
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
}


class VersionedTable(faust.Table):  # type: ignore[type-arg]  # Faust's Table is generic in name only
    """A table whose recovery and standby reads keep, of each key, the value of the highest version
    (streams.engine.versions), not the last in the log: a zombie's late changelog record of an older
    fold must not replace the newer value another worker wrote before it. Selected by the app's
    `Table` setting; the store's own `apply_changelog_batch` would write every record in log order.

    When the recovery of a partition this worker owns finds such a late record, the newer value is
    written again (`repair`, set by the pipeline), so that it is the last in the log once more: what a
    compacted changelog keeps, and what a reader in log order (a consumer of `sms-opt-outs`) sees."""

    # (partition, keys) -> written again; None: nothing repairs (the tests' tables).
    repair: Callable[[int, set[bytes]], Awaitable[None]] | None = None
    _repairs: set[asyncio.Future[None]] | None = None

    def _new_store(self) -> Any:
        store = super()._new_store()
        faust_hooks.bound_store_memory(store, process_budget())
        return store

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        writes: dict[int, WriteBatch] = {}
        late: dict[TP, set[bytes]] = {}  # keys whose record here is older than the store's value
        markers: dict[tuple[int, bytes], int] = {}  # (partition, marker) -> the highest seen so far
        offsets: dict[TP, int] = {}
        versions: dict[tuple[int, bytes], Version | None] = {}  # what this batch wrote so far
        for event in batch:
            message = event.message
            offsets[message.tp] = max(message.offset, offsets.get(message.tp, -1))
            key, partition = message.key, message.partition
            if key is None:
                continue
            if key in MARKERS:  # the highest, not the last: a late batch's must not lower it
                marker = markers.get((partition, key))
                if marker is None:
                    marker = decode_marker(partition_store(self, partition).get(key))
                markers[(partition, key)] = highest = max(marker, decode_marker(message.value))
                write = writes.setdefault(partition, WriteBatch(raw_mode=True))
                write.put(key, encode_marker(highest))
                continue
            incoming = version_of(message.headers)
            current = versions.get((partition, key), ...)
            if current is ...:
                current = decode_version(partition_store(self, partition).get(version_key(key)))
            if not supersedes(incoming, current):
                # Older than the value the store holds: a late write of an older fold.
                late.setdefault(message.tp, set()).add(key)
                continue
            versions[(partition, key)] = incoming
            write = writes.setdefault(partition, WriteBatch(raw_mode=True))
            if message.value is None:
                write.delete(key)
            else:
                write.put(key, message.value)
            if incoming is None:  # a value from before versions: log order again, from here on
                write.delete(version_key(key))
            else:
                write.put(version_key(key), encode_version(incoming))
        for partition, write in writes.items():
            partition_store(self, partition).write(write)
        for tp, offset in offsets.items():  # read up to here, kept or not
            self.data.set_persisted_offset(tp, offset)
        if late:
            self._repair_late(late)

    async def catch_up(self, partition: int, servers: list[str]) -> int:
        """Apply to `partition`'s store what its changelog holds past what the store has read, as the
        recovery would (the highest version of each key); the records read.

        For a batch that starts past the input offset the store is folded up to: the records between
        were folded by another worker (the store holds what they wrote only if it has read the
        changelog to its end), or by batches that wrote nothing. A worker paused while it recovered
        (a zombie) woke to a recovery that ended at the log end it had read before the pause, and
        folded from the committed offset another worker had moved meanwhile, from a store without
        that worker's values (the chaos soak: a phone's contacts folded up to 3590 without a
        recipient sent at 3224)."""
        topic: str = self.changelog_topic.get_topic_name()
        persisted = self.data.persisted_offset(TP(topic, partition))
        start = TopicPartition(topic, partition)
        since = {start: 0 if persisted is None else persisted + 1}
        spans = await snapshot(servers, [topic], since=since, only=[partition])
        read_records = 0
        async for records in read(servers, {start: spans[start]}):
            self.apply_changelog_batch(
                cast(list[EventT[Any]], [ChangelogEvent(record) for record in records])
            )
            read_records += len(records)
        return read_records

    def _repair_late(self, late: Mapping[TP, set[bytes]]) -> None:
        # Only the owner repairs: a standby's newest may be older than what the owner wrote since.
        owned = self.app.assignor.assigned_actives()
        for tp, keys in late.items():
            log.warning(
                "%s[%d]: %d keys whose later record is older than the stored value (a worker woke from"
                " a pause after its partitions moved)%s",
                tp.topic,
                tp.partition,
                len(keys),
                ": writing the newer values again" if tp in owned and self.repair else "",
            )
            if tp in owned and self.repair is not None:
                if self._repairs is None:
                    self._repairs = set()
                task = asyncio.ensure_future(self.repair(tp.partition, keys))
                self._repairs.add(task)  # held: a task nothing holds may vanish
                task.add_done_callback(self._repairs.discard)


@dataclass(frozen=True)
class ChangelogEvent:
    """A changelog record read outside Faust, as `apply_changelog_batch` takes one (an event whose
    message has the record's fields)."""

    record: Any

    @property
    def message(self) -> Any:
        return self

    def __getattr__(self, name: str) -> Any:
        if name == "tp":
            return TP(self.record.topic, self.record.partition)
        return getattr(self.record, name)


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    def table(name: str, help: str) -> BytesTable:
        declared = cast(
            BytesTable,
            app.Table(
                name,
                default=None,
                partitions=settings.partitions,
                # bytes keys are stored raw, as the topics' keys are: the partition a key hashes to is
                # then the same for the input topic, the changelog and Faust's request routing.
                key_type=bytes,
                value_type=bytes,
                options=STORE_OPTIONS,
                help=help,
            ),
        )
        # Table() takes no value_serializer (faust-streaming#556) and derives "json" from any
        # value type; the store and the changelog topic, built later, take it from here.
        declared.value_serializer = "raw"
        return declared

    return Tables(
        contacts=table(CONTACTS_TABLE, "Per phone: who received SMS from which sender."),
        opt_outs=table(OPT_OUTS_TABLE, "Per person: the SMS opt-out list and its history."),
    )


def partition_store(table: BytesTable, partition: int) -> Rdict:
    """The RocksDB of one partition of `table`, opened on first use. Faust's store keeps it behind
    a private method; every read and write of a key in its own partition may use it."""
    return faust_hooks.partition_db(table, partition)


class BatchReads:
    """A partition's stored values as one batch reads them: each key from RocksDB at most once (the
    decoder asks whether a phone is stored, and the fold then wants its value)."""

    def __init__(self, store: Rdict) -> None:
        self.store = store
        self._read: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._read:
            return self._read[key]
        value: bytes | None = self.store.get(key)
        self._read[key] = value
        return value


class StoredReads(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class KnownKeys:
    """The ids a batch may take as normalised, as text: those of the states it folded so far and
    those stored in its partition (every key was written from a decoded, normalised event)."""

    def __init__(self, folded: Mapping[bytes, Any], stored: StoredReads) -> None:
        self.folded = folded
        self.stored = stored

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        key = value.encode()
        return key in self.folded or self.stored.get(key) is not None


# pydantic-core's JSON (already here for the events) reads and writes these values ~4x faster than
# the json module: compact, UTF-8 as it is, the same values.


def stored(value: bytes | None) -> Any:
    """A table value as the fold's `from_json` reads it (None when the key has none)."""
    return None if value is None else pydantic_core.from_json(value)


def storable(state: Mapping[str, Any]) -> bytes:
    """A fold's `to_json` form as the table value."""
    return pydantic_core.to_json(state)
