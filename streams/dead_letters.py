"""Keeping a value the agents cannot fold aside in `sms-dead-letters`, with where it was and why."""

from __future__ import annotations

from datetime import UTC, datetime

from faust.types import Message

from schemas.dead_letters import DeadLetter
from schemas.errors import DecodeError


def dead_letter(message: Message, error: DecodeError, app_id: str) -> DeadLetter:
    """The dead letter of `message` (key and value byte for byte), refused with `error` by the
    workers of `app_id`."""
    return DeadLetter.of(
        error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        at=datetime.now(UTC),
        app_id=app_id,
    )
