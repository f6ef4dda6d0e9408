"""One process of a rebuild: its part of the partitions (streams.rebuild.parts), stage 1 of each of its
phone partitions, then stage 2 of each of its person partitions, every one in a local store of its own
(bounded memory) and resumed from that store's last commit when taken again."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from streams.engine.native_heap import fix_mmap_threshold
from streams.engine.topics import MESSAGING_EVENTS, PERSON_EVENTS
from streams.pipeline.generations import Generation
from streams.rebuild.contacts_partition import rebuild_contacts
from streams.rebuild.context import RebuildContext
from streams.rebuild.exchange import exchange_topic
from streams.rebuild.group_offsets import committed_offsets
from streams.rebuild.lists_partition import rebuild_lists
from streams.rebuild.parts import Part
from streams.rebuild.shipper import Shipper
from streams.rebuild.tally import Tally
from streams.settings import Settings


@dataclass
class PartSummary:
    part: str
    partitions: list[int] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "partitions": self.partitions,
            "tally": self.tally.to_json(),
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }

    def line(self) -> str:
        return (
            f"part {self.part} (partitions {', '.join(map(str, self.partitions))}) rebuilt in"
            f" {self.seconds:.1f} s: {self.tally.messaging_events:,} messaging events,"
            f" {self.tally.person_events:,} person events, peak RSS {self.peak_rss_mb:,.0f} MB"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartSummary:
        return cls(
            data["part"],
            list(data["partitions"]),
            Tally.from_json(data["tally"]),
            data["seconds"],
            data["peak_rss_mb"],
        )


def replay_work_dir(settings: Settings, target: Generation) -> Path:
    """Where a replay into `target` keeps its stores on this machine, until it is switched to."""
    return settings.data_dir / "rebuild" / target.app_id


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not `ru_maxrss`: Linux carries the latter over an
    exec from the parent that forked, so a part started by a larger process would report its size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; bytes on macOS


async def replay_part(settings: Settings, running: Generation, target: Generation, part: Part) -> PartSummary:
    """Rebuild this part's partitions into `target`: its changelogs, consumer group offsets and lists."""
    fix_mmap_threshold()
    started = time.monotonic()
    shipper = Shipper(settings.brokers)
    await shipper.start()
    try:
        partitions = await shipper.partitions(MESSAGING_EVENTS)
        mine = part.partitions(partitions)
        # Misplaced records at or past these the running generation has not forwarded yet.
        republish_from = await committed_offsets(
            settings,
            running.app_id,
            [TopicPartition(topic, p) for topic in (MESSAGING_EVENTS, PERSON_EVENTS) for p in mine],
        )
        ctx = RebuildContext(
            settings,
            replay_work_dir(settings, target),
            exchange_topic(target.app_id),
            shipper,
            partitions,
            target=target.settings(settings),
            generation=target.number,
            republish_from=republish_from,
        )
        tally = Tally()
        for partition in mine:
            tally += await rebuild_contacts(ctx, partition)
        for partition in mine:
            store, counted = await rebuild_lists(ctx, partition)
            store.close()
            tally += counted
    finally:
        await shipper.stop()
    return PartSummary(str(part), mine, tally, time.monotonic() - started, peak_rss_mb())
