"""Builders for the events the unit tests fold: short to call, every contract field filled in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.addresses import Channel
from schemas.events import (
    MessageBlocked,
    MessageReceived,
    MessageSent,
    OptOutCleared,
    OptOutOverridden,
    OptOutRecorded,
    OptOutType,
    RecordedCause,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

PHONE = "+14155550123"
OTHER_PHONE = "+14155550199"
SENDER = "+14155550100"
OTHER_SENDER = "12345"
ACCOUNT = "AC00000000000000000000000000000001"


def at(minute: int) -> datetime:
    """A point in the story, `minute` minutes after it starts."""
    return T0 + timedelta(minutes=minute)


def sent(
    event_id: str,
    person_id: str,
    *,
    phone: str = PHONE,
    sender: str = SENDER,
    minute: int = 0,
    service: str | None = None,
    channel: Channel = "sms",
) -> MessageSent:
    return MessageSent(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=person_id,
        phone=phone,
        sender=sender,
        message_sid=f"SM{event_id}",
        messaging_service_sid=service,
        channel=channel,
    )


def received(
    event_id: str,
    body: str,
    *,
    phone: str = PHONE,
    sender: str = SENDER,
    minute: int = 0,
    opt_out_type: OptOutType | None = None,
    service: str | None = None,
    channel: Channel = "sms",
) -> MessageReceived:
    return MessageReceived(
        event_id=event_id,
        occurred_at=at(minute),
        phone=phone,
        sender=sender,
        body=body,
        message_sid=f"SM{event_id}",
        account_sid=ACCOUNT,
        messaging_service_sid=service,
        opt_out_type=opt_out_type,
        channel=channel,
    )


def blocked(
    event_id: str,
    person_id: str,
    *,
    phone: str = PHONE,
    sender: str = SENDER,
    minute: int = 0,
    service: str | None = None,
    channel: Channel = "sms",
) -> MessageBlocked:
    return MessageBlocked(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=person_id,
        phone=phone,
        sender=sender,
        message_sid=f"SM{event_id}",
        messaging_service_sid=service,
        channel=channel,
    )


def recorded(
    event_id: str,
    person_id: str,
    *,
    phone: str = PHONE,
    sender: str = SENDER,
    minute: int = 0,
    cause: RecordedCause = "keyword",
    keyword: str | None = "STOP",
    service: str | None = None,
) -> OptOutRecorded:
    return OptOutRecorded(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=person_id,
        sender=sender,
        phone=phone,
        source_event_id=f"src-{event_id}",
        cause=cause,
        keyword=keyword if cause == "keyword" else None,
        messaging_service_sid=service,
    )


def cleared(
    event_id: str, person_id: str, *, phone: str = PHONE, sender: str = SENDER, minute: int = 0
) -> OptOutCleared:
    return OptOutCleared(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=person_id,
        sender=sender,
        phone=phone,
        source_event_id=f"src-{event_id}",
        keyword="START",
    )


def overridden(
    event_id: str,
    person_id: str,
    *,
    phone: str = PHONE,
    sender: str = SENDER,
    minute: int = 0,
    actor: str = "ops@example.com",
    reason: str = "opted in by hand in the Twilio console",
) -> OptOutOverridden:
    return OptOutOverridden(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=person_id,
        sender=sender,
        phone=phone,
        source_event_id=event_id,
        actor=actor,
        reason=reason,
    )
