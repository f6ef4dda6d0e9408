"""Table recovery that reads changelogs to their real end, not to the broker's reported high watermark.

Faust restores a table by reading its changelog up to the high watermark (ListOffsets "latest") and
refuses to start when the local store is past it (ConsistencyError, faust-streaming/faust#158). Some
brokers answer less than the log end: Tansu answers the last write batch's base offset + 1, so a
restart on a good data dir crashed, and a table recovered into an empty one missed the tail of the
last batch. Here the ends are found by reading: from the reported end until each partition's
position reaches the high watermark its fetch responses carry (which Tansu reports right).

Decision record: docs/decisions/0009-recovery-to-the-log-end.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

from streams.engine import faust_hooks

_ROUNDS = 100  # fetch rounds at most
_ROUND_MS = 300  # each ends as soon as a fetch returns


async def log_end_offsets(bootstrap_servers: list[str], reported: Mapping[TP, int | None]) -> dict[TP, int]:
    """The offset after the last record of each partition, read rather than asked for."""
    ends = {tp: offset or 0 for tp, offset in reported.items()}
    if not ends:
        return ends
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in ends}
        consumer.assign(list(partitions))
        for partition, tp in partitions.items():
            consumer.seek(partition, ends[tp])
        # A partition is read to its end once a fetch response's high watermark (which Tansu reports
        # right, unlike its ListOffsets) is at or below the position. Not a quiet period: on a loaded
        # machine a fetch that had not come back in time was taken for the end (the chaos soak: 272
        # records short, and a worker crashed on a standby's persisted offset past that "end").
        todo = set(partitions)
        for _ in range(_ROUNDS):
            batch = await consumer.getmany(timeout_ms=_ROUND_MS)
            for partition, records in batch.items():
                if records:
                    tp = partitions[partition]
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
            for partition in list(todo):
                highwater = consumer.highwater(partition)
                if highwater is not None and await consumer.position(partition) >= highwater:
                    todo.discard(partition)
                    tp = partitions[partition]
                    ends[tp] = max(ends[tp], highwater)
            if not todo:
                break
        return ends
    finally:
        await consumer.stop()


class LogEndRecovery(Recovery):
    async def _build_highwaters(
        self, consumer: Any, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        reported = await consumer.highwaters(*tps)
        servers = [f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker]
        ends = await log_end_offsets(servers, reported)
        # Faust keeps "highwater" as the last offset, not the end (see its own FIXME).
        highwaters = {tp: end - 1 for tp, end in ends.items()}
        self.log.info(
            "Highwater for %s changelog partitions (read to the log end):\n%s",
            title,
            faust_hooks.highwater_table(self, highwaters, title),
        )
        destination.clear()
        destination.update(highwaters)


class LogEndTableManager(TableManager):
    """Faust's table manager with `LogEndRecovery`; selected by the app's `TableManager` setting."""

    @property
    def recovery(self) -> Recovery:
        recovery = faust_hooks.manager_recovery(self)
        if recovery is None:
            recovery = LogEndRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
            faust_hooks.set_manager_recovery(self, recovery)
        return recovery
