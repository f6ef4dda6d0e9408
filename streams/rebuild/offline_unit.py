"""The workers' batch rules (streams.pipeline.stages) run offline: a fetched batch of one partition as
a `BatchUnit` over the partition's local store, so that replay and verification fold exactly as the
agents fold, with the same keys and values, and skip what the agents skip:

- what admission refuses (already kept in `sms-dead-letters` by the agents) is counted, not folded;
- what the agents forward instead of folding (streams.pipeline.forwarding: events keyed by anything but
  their entity, and events on another partition than murmur2 of their key) is counted, not folded:
  the agents fold the copy they forward, which is in the log too, where it was forwarded to; so does
  the rebuild. A replay publishes again the ones the running generation has not forwarded yet (it does
  when it reaches them, which may be after the switch): a copy made twice is folded once (same id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from pydantic import BaseModel

from schemas.codec import encode
from schemas.errors import DecodeError, FoldError, UnknownSchemaVersion
from streams.pipeline.placement import expected_partition, likely_cause
from streams.rebuild.local_store import LocalStore
from streams.rebuild.shipper import Shipper
from streams.rebuild.tally import Tally

Send = Callable[[str, bytes | None, bytes], Awaitable[None]]


class OfflineUnit:
    """A batch over a local store: puts wait for the store's next commit, sends go to `send`."""

    redelivered = False  # the store and what was sent are committed together: never ahead

    def __init__(self, store: LocalStore, send: Send, tally: Tally) -> None:
        self.store = store
        self._send = send
        self.tally = tally

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        self.store.put(key, value)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        await self._send(topic, key, value)

    async def dead_letter(self, record: Any, error: DecodeError | FoldError) -> None:
        if isinstance(error, UnknownSchemaVersion):
            self.tally.skipped["unknown schema version"] += 1
        elif isinstance(error, FoldError):
            self.tally.skipped["unfoldable"] += 1
        else:
            self.tally.skipped["undecodable"] += 1

    async def done(self) -> None:
        return None


class OfflineForward:
    """The agents' forward step, judged and counted (`elsewhere`); `placed` sees each event folded
    where it is. With `republish_from` (a replay: the running generation's committed offsets), a record
    at or past them is published again under its key."""

    def __init__(
        self,
        partitions: int,
        tally: Tally,
        shipper: Shipper | None = None,
        republish_from: Mapping[TopicPartition, int] | None = None,
        placed: Callable[[Any, BaseModel], None] | None = None,
    ) -> None:
        self.partitions = partitions
        self.tally = tally
        self.shipper = shipper
        self.republish_from = republish_from
        self.placed = placed
        self._expected: dict[bytes, int] = {}

    async def __call__(self, record: Any, key: bytes, event: BaseModel) -> bool:
        if key == record.key:
            expected = self._expected.get(key)
            if expected is None:
                if len(self._expected) >= 100_000:
                    self._expected.clear()
                expected = self._expected[key] = expected_partition(key, self.partitions)
            if record.partition == expected:
                if self.placed is not None:
                    self.placed(record, event)
                return False
            self.tally.misplaced[likely_cause(key, self.partitions, record.partition)] += 1
        else:
            self.tally.miskeyed += 1
        if self.shipper is not None and self.republish_from is not None:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset >= self.republish_from.get(tp, 0):
                await self.shipper.send(record.topic, key, encode(event))
                self.tally.republished += 1
        return True
