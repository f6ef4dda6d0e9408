"""Reading both logs and handing their events to the pure offline fold (`projections.rebuild`): the part
replay and verification share. Records are read as the agents read them (`streams.admission`), and
what the agents skip is skipped here too: what admission refuses (already kept in
`sms-dead-letters` by the agents) and events keyed by anything but their entity (the agents fold
the copy they publish under the right key, not the original).
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
from streams.admission import messaging_event, person_event
from streams.log_reader import Span, read, total
from streams.progress import Progress
from streams.settings import Settings

E = TypeVar("E", MessagingEvent, AnyPersonEvent)


@dataclass
class LogRead:
    """What reading one log found besides its events."""

    spans: dict[TopicPartition, Span]
    partitions: dict[str, int] = field(default_factory=dict)  # entity key -> partition of its events
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many
    # records keyed by anything but their entity: (record, the entity's key, the event's value)
    miskeyed: list[tuple[ConsumerRecord, str, bytes]] = field(default_factory=list)
    events: int = 0  # records read, skipped ones included


async def fold_messaging_log(
    settings: Settings, spans: Mapping[TopicPartition, Span], fold: MessagingFold, label: str
) -> LogRead:
    """Stage 1 over `spans` of `sms-messaging-events`, into `fold`, batch by batch."""
    region, max_ahead = settings.default_region, timedelta(seconds=settings.max_ahead)
    return await _read_log(
        settings,
        spans,
        lambda record: messaging_event(record, region=region, max_ahead=max_ahead),
        lambda e: e.phone,
        fold.add,
        label,
    )


async def read_person_log(
    settings: Settings, spans: Mapping[TopicPartition, Span], into: list[AnyPersonEvent], label: str
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
    )


async def _read_log(
    settings: Settings,
    spans: Mapping[TopicPartition, Span],
    decode: Callable[[ConsumerRecord], E],
    key_of: Callable[[E], str],
    take: Callable[[list[E]], None],
    label: str,
) -> LogRead:
    found = LogRead(dict(spans))
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
            if record.key != key.encode():
                found.miskeyed.append((record, key, encode(event)))
                continue
            found.partitions[key] = record.partition
            events.append(event)
        take(events)
        found.events += len(records)
        progress.advance(len(records))
    progress.finish()
    return found
