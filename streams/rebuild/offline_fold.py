"""Reading both logs and handing their events to the pure offline fold (`projections.rebuild`): the part
replay and verification share. Records are read as the agents read them (`streams.pipeline.admission`), and
what the agents skip is skipped here too: what admission refuses (already kept in
`sms-dead-letters` by the agents), and what the agents forward instead of folding
(streams.pipeline.forwarding): events keyed by anything but their entity, and events on another partition
than murmur2 of their key. The agents fold the copy they forward, which is in the log too, where it
was forwarded to; so does this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from projections.rebuild import MessagingFold
from schemas.codec import encode
from schemas.errors import DecodeError, UnknownSchemaVersion
from schemas.events import AnyPersonEvent, MessagingEvent
from streams.engine.log_reader import Span, read, total
from streams.pipeline.admission import messaging_event, person_event
from streams.pipeline.placement import expected_partition, likely_cause
from streams.progress import Progress
from streams.settings import Settings

E = TypeVar("E", MessagingEvent, AnyPersonEvent)


@dataclass
class LogRead:
    """What reading one log found besides its events."""

    spans: dict[TopicPartition, Span]
    partitions: dict[str, int] = field(default_factory=dict)  # entity key -> partition of its events
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many
    miskeyed: int = 0  # records keyed by anything but their entity
    # records keyed right but on another partition than murmur2 of the key: likely cause -> how many
    misplaced: Counter[str] = field(default_factory=Counter)
    # The mis-keyed and misplaced records at or past the offsets `unforwarded_from` gave, which the
    # running workers may not have forwarded yet: (record, the entity's key, the event's value).
    forwards: list[tuple[ConsumerRecord, str, bytes]] = field(default_factory=list)
    events: int = 0  # records read, skipped ones included


async def fold_messaging_log(
    settings: Settings,
    spans: Mapping[TopicPartition, Span],
    fold: MessagingFold,
    label: str,
    unforwarded_from: Mapping[TopicPartition, int] | None = None,
) -> LogRead:
    """Stage 1 over `spans` of `sms-messaging-events`, into `fold`, batch by batch. The records the
    workers forward are kept from the offsets of `unforwarded_from` on (none without it)."""
    region, max_ahead = settings.default_region, timedelta(seconds=settings.max_ahead)
    return await _read_log(
        settings,
        spans,
        lambda record: messaging_event(record, region=region, max_ahead=max_ahead),
        lambda e: e.phone,
        fold.add,
        label,
        unforwarded_from,
    )


async def read_person_log(
    settings: Settings,
    spans: Mapping[TopicPartition, Span],
    into: list[AnyPersonEvent],
    label: str,
    unforwarded_from: Mapping[TopicPartition, int] | None = None,
) -> LogRead:
    """The events of `spans` of `sms-person-events`, appended to `into` in each partition's order."""
    max_ahead = timedelta(seconds=settings.max_ahead)
    return await _read_log(
        settings,
        spans,
        lambda record: person_event(record, max_ahead=max_ahead),
        lambda e: e.person_id,
        into.extend,
        label,
        unforwarded_from,
    )


async def _read_log(
    settings: Settings,
    spans: Mapping[TopicPartition, Span],
    decode: Callable[[ConsumerRecord], E],
    key_of: Callable[[E], str],
    take: Callable[[list[E]], None],
    label: str,
    unforwarded_from: Mapping[TopicPartition, int] | None,
) -> LogRead:
    found = LogRead(dict(spans))
    partitions = Counter(tp.topic for tp in spans)  # the spans are every partition of their topic
    progress = Progress(label, total(spans))
    async for records in read(settings.brokers, spans):
        events: list[E] = []
        for record in records:
            try:
                event = decode(record)
            except DecodeError as exc:
                found.skipped[
                    "unknown schema version" if isinstance(exc, UnknownSchemaVersion) else "undecodable"
                ] += 1
                continue
            key = key_of(event)
            raw_key = key.encode()
            # As the agents' forward step (streams.pipeline.forwarding): not folded where it landed.
            if record.key != raw_key:
                found.miskeyed += 1
            elif record.partition != expected_partition(raw_key, partitions[record.topic]):
                found.misplaced[likely_cause(raw_key, partitions[record.topic], record.partition)] += 1
            else:
                found.partitions[key] = record.partition
                events.append(event)
                continue
            tp = TopicPartition(record.topic, record.partition)
            if unforwarded_from is not None and record.offset >= unforwarded_from.get(tp, 0):
                found.forwards.append((record, key, encode(event)))
        take(events)
        found.events += len(records)
        progress.advance(len(records))
    progress.finish()
    return found
