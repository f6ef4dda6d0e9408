"""Reading whole topics fast, for replay and verification: each partition from a start offset to an end
snapshotted first, in fetches of several megabytes (`getmany`), with no round trip per record.

Ends are read, never asked for: some brokers (Tansu) report a high watermark short of the log end
(`streams.engine.recovery.log_end_offsets`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from schemas.errors import OptOutsError
from streams.engine.recovery import log_end_offsets
from streams.engine.versions import Version, supersedes, version_of

# A fetch's bytes and the records made of them are in memory at once, and a reader folds each batch
# before it lets go of it: sizes that keep a replay's memory flat (larger fetches were no faster here).
_FETCH_BYTES = 16 * 1024 * 1024  # per fetch, all partitions
_PARTITION_FETCH_BYTES = 4 * 1024 * 1024  # per partition and fetch
BATCH_RECORDS = 5_000  # at most, in one batch `read` yields
_STALL_SECONDS = 30.0  # no record for this long while short of a snapshotted end: give up


class LogReadError(OptOutsError):
    """A topic could not be read to the end that was snapshotted."""


@dataclass(frozen=True)
class Span:
    """Offsets [start, end) of one partition."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


Spans = dict[TopicPartition, Span]


def total(spans: Mapping[TopicPartition, Span]) -> int:
    return sum(span.size for span in spans.values())


async def snapshot(
    servers: list[str],
    topics: Iterable[str],
    since: Mapping[TopicPartition, int] | None = None,
    only: Iterable[int] | None = None,
) -> Spans:
    """Every partition of `topics` (or those numbered in `only`) from its beginning (or the offset in
    `since`) to its log end now."""
    wanted = None if only is None else set(only)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions: list[TopicPartition] = []
        for topic in topics:
            if topic not in existing:
                raise LogReadError(f"topic {topic} does not exist on {','.join(servers)}")
            numbers = sorted(consumer.partitions_for_topic(topic) or ())
            partitions += [TopicPartition(topic, p) for p in numbers if wanted is None or p in wanted]
        beginnings = await consumer.beginning_offsets(partitions)
        reported = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    ends = await log_end_offsets(servers, reported)
    starts = {tp: max(beginnings[tp], (since or {}).get(tp, 0)) for tp in partitions}
    return {tp: Span(starts[tp], max(starts[tp], ends[tp])) for tp in partitions}


async def read(
    servers: list[str], spans: Mapping[TopicPartition, Span]
) -> AsyncIterator[list[ConsumerRecord]]:
    """The records of each span, in batches of at most `BATCH_RECORDS`; a partition's records come in
    offset order."""
    todo = {tp: span for tp, span in spans.items() if span.size}
    if not todo:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        enable_auto_commit=False,
        fetch_max_bytes=_FETCH_BYTES,
        max_partition_fetch_bytes=_PARTITION_FETCH_BYTES,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp, span in todo.items():
            consumer.seek(tp, span.start)
        stalled = 0.0
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500, max_records=BATCH_RECORDS)
            if not any(batch.values()):
                stalled += 0.5
                await _drop_finished(consumer, todo)
                if todo and stalled >= _STALL_SECONDS:
                    raise LogReadError(
                        f"no records for {_STALL_SECONDS:.0f} s short of the end: {_left(todo)}"
                    )
                continue
            stalled = 0.0
            for tp, records in batch.items():
                left = todo.get(tp)
                if left is None or not records:
                    continue
                if records[-1].offset >= left.end - 1:
                    del todo[tp]
                    consumer.pause(tp)
                    records = [record for record in records if record.offset < left.end]
                if records:
                    yield records
    finally:
        await consumer.stop()


async def _drop_finished(consumer: AIOKafkaConsumer, todo: dict[TopicPartition, Span]) -> None:
    # A compacted topic may have no record at end - 1 any more: the position says it is done.
    for tp, span in list(todo.items()):
        if await consumer.position(tp) >= span.end:
            del todo[tp]


def _left(todo: Mapping[TopicPartition, Span]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}] to {span.end}" for tp, span in todo.items())


async def latest_values(
    servers: list[str], spans: Mapping[TopicPartition, Span]
) -> dict[bytes, tuple[int, bytes | None]]:
    """The latest value of each key (None for a tombstone), with the partition it is on: a compacted
    topic read as the table it stands for. Of values that carry versions (a table's changelog,
    `sms-opt-outs`), the highest version's, not the last in the log (streams.engine.versions)."""
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    versions: dict[bytes, Version | None] = {}
    async for records in read(servers, spans):
        for record in records:
            if record.key is None:
                continue
            incoming = version_of(record.headers)
            if supersedes(incoming, versions.get(record.key)):
                latest[record.key] = (record.partition, record.value)
                versions[record.key] = incoming
    return latest
