"""Where the contract puts a keyed record, what most likely put one elsewhere, and how often to say so.

The contract places a record by murmur2 of its key, as Kafka's Java client and aiokafka do: the
tables are per partition, so a phone's (or a person's) events must all be folded in one. Many other
clients place by CRC32 unless told otherwise. Pure: the agents and the offline fold bring the
partition counts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from aiokafka.partitioner import DefaultPartitioner

# Kafka's default partitioner for a keyed record: murmur2 of the key, & 0x7fffffff, % partitions.
# aiokafka's own, so that this is where the service's producers put a key, by construction.
_MURMUR2 = DefaultPartitioner()

CRC32 = (
    "placed by CRC32: librdkafka's default partitioner (confluent-kafka, kcat);"
    " set partitioner=murmur2_random"
)
UNKNOWN = (
    "placed neither by murmur2 nor by CRC32 of its key: the producer chose the partition or uses"
    " another partitioner; use Kafka's default (murmur2, the Java client's)"
)


def expected_partition(key: bytes, partitions: int) -> int:
    """The partition of `partitions` (numbered from 0) that Kafka's default partitioner puts `key` in."""
    every = range(partitions)
    partition: int = _MURMUR2(key, every, every)
    return partition


def likely_cause(key: bytes, partitions: int, partition: int) -> str:
    """What most likely put a record keyed `key` on `partition`, which is not its murmur2 partition."""
    if zlib.crc32(key) % partitions == partition:  # librdkafka's `consistent(_random)`
        return CRC32
    return UNKNOWN


@dataclass
class Throttle:
    """At most one report per topic every `interval` seconds: `count` each occurrence; it answers
    how many there were since the last report when one is due (the first at once), else None."""

    interval: float = 60.0
    _counts: dict[str, int] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)

    def count(self, topic: str, now: float) -> int | None:
        self._counts[topic] = self._counts.get(topic, 0) + 1
        last = self._last.get(topic)
        if last is not None and now - last < self.interval:
            return None
        self._last[topic] = now
        return self._counts.pop(topic)
