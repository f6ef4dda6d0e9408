"""Messaging events as upstream systems and Twilio's webhooks publish them (JSON-able dicts)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_clock = itertools.count()
_START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unique_phone() -> str:
    """A US number in E.164 that no other test uses: area codes 200-999, random subscriber."""
    return f"+1{2 * 10**9 + uuid.uuid4().int % (8 * 10**9):010d}"


def now() -> str:
    """This moment, as the worker stamps what it receives itself (webhooks, overrides)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _stamp() -> str:
    return (_START + timedelta(seconds=next(_clock))).isoformat().replace("+00:00", "Z")


def sent(person_id: str, phone: str, sender: str, **fields: Any) -> dict[str, Any]:
    sid = unique("SM")
    return {
        "type": "message.sent",
        "event_id": sid,
        "occurred_at": _stamp(),
        "person_id": person_id,
        "phone": phone,
        "sender": sender,
        "message_sid": sid,
        "messaging_service_sid": None,
        **fields,
    }


def received(phone: str, sender: str, body: str, **fields: Any) -> dict[str, Any]:
    sid = unique("SM")
    return {
        "type": "message.received",
        "event_id": sid,
        "occurred_at": _stamp(),
        "phone": phone,
        "sender": sender,
        "body": body,
        "message_sid": sid,
        "account_sid": "AC0123456789abcdef0123456789abcdef",
        "messaging_service_sid": None,
        "opt_out_type": None,
        **fields,
    }


def blocked(person_id: str, phone: str, sender: str, **fields: Any) -> dict[str, Any]:
    sid = unique("SM")
    return {
        "type": "message.blocked",
        "event_id": sid,
        "occurred_at": _stamp(),
        "person_id": person_id,
        "phone": phone,
        "sender": sender,
        "message_sid": sid,
        "error_code": 21610,
        **fields,
    }


def recorded(person_id: str, phone: str, sender: str, **fields: Any) -> dict[str, Any]:
    """An `opt_out.recorded` (a STOP stage 1 derived a moment ago), as on `sms-person-events`."""
    return {
        "type": "opt_out.recorded",
        "event_id": unique("derived"),
        "schema_version": 1,
        "occurred_at": now(),
        "person_id": person_id,
        "sender": sender,
        "phone": phone,
        "source_event_id": unique("SM"),
        "cause": "keyword",
        "keyword": "STOP",
        "messaging_service_sid": None,
        **fields,
    }
