"""A fetched batch of one partition as a unit of work (quix-streams' partition transaction): read a
key of the partition's store, put a value, send a record, set a record aside as a dead letter, and
`done` to write the puts (store and changelog) and record how far the partition is folded.

`PartitionBatch` is the worker's, over RocksDB, the table writes and the producer; `InMemoryBatch`
is a dict and lists, for the stage rules' unit tests (streams.pipeline.stages)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rocksdict import Rdict

from schemas.errors import DecodeError, FoldError
from streams.engine.batches import Fetched
from streams.engine.sends import Sends
from streams.engine.table_writes import TableWrites, folded_up_to
from streams.engine.tables import BatchReads
from streams.engine.versions import Version, headers

DeadLetterPolicy = Callable[[Any, DecodeError | FoldError], Awaitable[Any]]


class BatchUnit(Protocol):
    """One partition's batch: reads see the store as it was before the batch; puts and sends go out
    with the batch, which is committed only after `done` and the producer's flush."""

    @property
    def redelivered(self) -> bool:
        """Whether the batch reaches back into what the store already holds (a crash's redelivery:
        the store may be ahead of its changelog, so every key the batch touches is written)."""
        ...

    def get(self, key: bytes) -> bytes | None: ...

    async def put(self, key: bytes, value: bytes) -> None: ...

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    async def dead_letter(self, record: Any, error: DecodeError | FoldError) -> None: ...

    async def done(self) -> None: ...


class PartitionBatch:
    """The worker's unit: the partition's RocksDB (each key read once), its `TableWrites`, the
    producer's `Sends`, and the worker's dead-letter policy."""

    def __init__(
        self,
        store: Rdict,
        batch: Fetched,
        writes: TableWrites,
        sends: Sends,
        skip: DeadLetterPolicy,
        generation: int = 0,
    ) -> None:
        self.reads = BatchReads(store)
        self.partition = batch.partition
        # The marker never moves back: a crash's redelivery may come in smaller batches than the
        # fold it repeats, and each of them, up to the marker, still reaches into what the store holds
        # and its changelog may lack (docs/decisions/0007-folded-up-to-marker.md).
        self.folded_before = folded_up_to(store)
        self.last_offset = max(batch.records[-1].offset, self.folded_before)
        self.redelivered = batch.records[0].offset <= self.folded_before
        # What orders this batch's values and lists against any other worker's for the same keys
        # (streams.engine.versions): the store is the fold of its input up to `last_offset`.
        self.version: Version = (generation, self.last_offset)
        self.headers = headers(self.version)
        self.writes = writes
        self.sends = sends
        self.skip = skip

    def get(self, key: bytes) -> bytes | None:
        return self.reads.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        await self.writes.put(key, value, self.partition, self.version)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        await self.sends.send(topic, key, value, headers=self.headers)

    async def dead_letter(self, record: Any, error: DecodeError | FoldError) -> None:
        await self.skip(record, error)

    async def done(self) -> None:
        self.writes.folded(self.partition, self.last_offset)
        await self.writes.done()


@dataclass
class InMemoryBatch:
    """One batch over a dict (the partition's store): what it put, sent and set aside, to look at
    in a test."""

    stored: dict[bytes, bytes] = field(default_factory=dict)
    redelivered: bool = False
    puts: dict[bytes, bytes] = field(default_factory=dict)
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[Any, DecodeError | FoldError]] = field(default_factory=list)
    finished: bool = False

    def get(self, key: bytes) -> bytes | None:
        return self.stored.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        self.puts[key] = value

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, key, value))

    async def dead_letter(self, record: Any, error: DecodeError | FoldError) -> None:
        self.dead_letters.append((record, error))

    async def done(self) -> None:
        self.stored.update(self.puts)  # `puts` stays: what this batch wrote
        self.finished = True
