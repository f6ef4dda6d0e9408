"""The contract's one extension for the Twilio edge: a `message.blocked` may have a null
`person_id` when it names the `message_sid` (a status callback that did not name the person)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.codec import decode_messaging_event
from schemas.errors import DecodeError
from schemas.events import MessageBlocked

BLOCKED = {
    "type": "message.blocked",
    "event_id": "SM0003:failed",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:10:00Z",
    "person_id": None,
    "phone": "+14155550123",
    "sender": "+14155550100",
    "message_sid": "SM0003",
    "error_code": 21610,
    "messaging_service_sid": None,
}


def decode(value: dict[str, Any]) -> Any:
    return decode_messaging_event(json.dumps(value), region="US")


def test_a_blocked_send_may_leave_the_person_to_its_message_sid() -> None:
    event = decode(BLOCKED)

    assert isinstance(event, MessageBlocked)
    assert (event.person_id, event.message_sid) == (None, "SM0003")


def test_a_blocked_send_without_a_person_or_a_message_sid_is_refused() -> None:
    with pytest.raises(DecodeError) as raised:
        decode({**BLOCKED, "message_sid": None})

    assert str(raised.value) == (
        "message.blocked: person_id is null and so is message_sid: no way to tell whose send was blocked"
    )
    assert raised.value.event_type == "message.blocked"


def test_a_blocked_send_must_still_say_person_id_even_when_null() -> None:
    with pytest.raises(DecodeError) as raised:
        decode({k: v for k, v in BLOCKED.items() if k != "person_id"})

    assert raised.value.field == "person_id"
