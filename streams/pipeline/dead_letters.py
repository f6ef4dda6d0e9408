"""Keeping a value the agents cannot fold aside in `sms-dead-letters`, with where it was and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from schemas.dead_letters import DeadLetter
from schemas.errors import DecodeError, FoldError


class Record(Protocol):
    """Where a consumed record was and what it held (an aiokafka ConsumerRecord, a Faust Message)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter(record: Record, error: DecodeError | FoldError, app_id: str) -> DeadLetter:
    """The dead letter of `record` (key and value byte for byte), refused with `error` by the
    workers of `app_id`."""
    return DeadLetter.of(
        error,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        at=datetime.now(UTC),
        app_id=app_id,
    )
