"""What the agents fold of an input record, and what they keep aside: the one reading of a record
that the workers, replay, verification and `dead-letters republish` share, so that none of them folds
what another refused.

A record's value is decoded (`schemas.codec`: any failure is a `DecodeError`) and its event refused
when its `occurred_at` is further ahead of the record's Kafka timestamp than `max_ahead`.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime, timedelta
from typing import Protocol

from schemas.codec import decode_messaging_event, decode_person_event, not_ahead
from schemas.events import AnyPersonEvent, MessagingEvent


class Logged(Protocol):
    """A consumed record's value and its Kafka timestamp (ms; None or -1 when the log has none)."""

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int | None: ...


def logged_at(record: Logged) -> datetime | None:
    """When the record was logged; None when the log gives no time for it (a timestamp of 0 or less:
    no producer writes one but by mistake, and nothing can be judged against it)."""
    timestamp = record.timestamp
    if timestamp is None or timestamp <= 0:
        return None
    return datetime.fromtimestamp(timestamp / 1000, UTC)


def messaging_event(
    record: Logged, *, region: str, max_ahead: timedelta, known_phones: Container[str] | None = None
) -> MessagingEvent:
    """The event of a `sms-messaging-events` record, or `DecodeError`."""
    event = decode_messaging_event(record.value, region=region, known_phones=known_phones)
    return not_ahead(event, logged_at(record), max_ahead)


def person_event(record: Logged, *, max_ahead: timedelta) -> AnyPersonEvent:
    """The event of a `sms-person-events` record, or `DecodeError`."""
    return not_ahead(decode_person_event(record.value), logged_at(record), max_ahead)
