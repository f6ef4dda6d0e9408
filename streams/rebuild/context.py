"""What one process of a rebuild works with: the settings, where its partitions' stores live, the
exchange, one producer, and what it builds into (a replay: the new generation; a verification:
nothing, its stores are the expected state it compares)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiokafka import TopicPartition

from streams.rebuild.shipper import Shipper
from streams.settings import Settings

# Records read between two commits of a partition's store: what waits in memory until then (a person
# partition's pending writes are ~4 KB a record) is bounded by it, and so is what a kill makes a
# resumed rebuild read again.
CHECKPOINT_RECORDS = 5_000


@dataclass
class RebuildContext:
    settings: Settings
    work: Path  # this rebuild's stores: contacts-<partition>, lists-<partition>
    exchange: str
    shipper: Shipper
    partitions: int  # of each topic
    # A replay: the new generation's settings (changelogs, consumer group) and the running
    # generation's committed offsets, from which misplaced records are published again. None for a
    # verification, which writes nothing but its exchange.
    target: Settings | None = None
    generation: int = 0  # a replay's: the new generation's number, which its published lists carry
    republish_from: Mapping[TopicPartition, int] | None = None
    # A verification: called with the phone partitions' ends before a person partition is read
    # (it lets the running workers fold them first).
    before_person_log: Callable[[dict[int, int]], Awaitable[None]] | None = None
    # Person partitions whose person ids are not wanted (a verification of a sample): None for all.
    wanted: Callable[[str], bool] | None = field(default=None)

    @property
    def max_ahead(self) -> timedelta:
        return timedelta(seconds=self.settings.max_ahead)

    def store_path(self, kind: str, partition: int) -> Path:
        return self.work / f"{kind}-{partition}"
