"""A consumer group's committed offsets, read and written from outside the group: how far the running
workers have folded (verify), and where a replay's new workers start (replay)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.settings import Settings


async def committed_offsets(
    settings: Settings, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The next offset `group` will read, for each partition it has committed one for."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        found = {tp: await consumer.committed(tp) for tp in partitions}
        return {tp: offset for tp, offset in found.items() if offset is not None}
    finally:
        await consumer.stop()


async def commit_offsets(settings: Settings, group: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Commit `offsets` (the next offset to read) for `group`, as its own workers commit them.

    The consumer does not join the group (no member id, no generation): it assigns the partitions to
    itself and commits, which a broker accepts for a group with no active members, the offsets being
    keyed on (group, topic, partition) only (confluentinc/librdkafka#593)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
    finally:
        await consumer.stop()
