"""Schema versions per event type, and the upcasters that turn an old version's value into the current
one before it is validated. Values on the logs are never rewritten: old versions are read forever.

| type               | version | change                                                             |
|--------------------|---------|--------------------------------------------------------------------|
| `message.received` | 2       | adds `keyword`: the body trimmed and upper-cased (`keyword_form`)  |
| every other type   | 1       |                                                                    |

A value of a version newer than the one listed is not guessed at: decoding raises
`UnknownSchemaVersion` and the agents keep it aside in `sms-dead-letters`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from schemas.events import Event, OptOutType, Phone, Sender, Sid, keyword_form

Value = dict[str, Any]

# The version each event type is written in now; a type not listed is at version 1.
LATEST_VERSIONS: dict[str, int] = {"message.received": 2}


def latest_version(event_type: str) -> int:
    return LATEST_VERSIONS.get(event_type, 1)


def _received_v1_to_v2(value: Value) -> Value:
    body = value.get("body")
    keyword = keyword_form(body) if isinstance(body, str) else None
    return {**value, "schema_version": 2, "keyword": keyword}


# (type, version) -> the function that turns that version's value into the next version's.
UPCASTERS: dict[tuple[str, int], Callable[[Value], Value]] = {
    ("message.received", 1): _received_v1_to_v2,
}


def upcast(value: Value) -> Value:
    """`value` at its type's latest version, through every upcaster from its own version on; a value
    without `schema_version` is version 1 (the field had a default then). Anything that is not a known
    older version is returned unchanged, for validation to judge."""
    event_type = value.get("type")
    version = value.get("schema_version", 1)
    while isinstance(event_type, str) and (event_type, version) in UPCASTERS:
        value = UPCASTERS[event_type, version](value)
        version = value["schema_version"]
    return value


class MessageReceivedV1(Event):
    """`message.received` at version 1, without `keyword`: still accepted, and read as version 2."""

    # Never folded: it describes the version 1 values in the JSON Schema of the topic.

    type: Literal["message.received"] = "message.received"
    phone: Phone
    sender: Sender
    body: Annotated[str, StringConstraints(max_length=4096)]
    message_sid: Sid
    account_sid: Sid
    messaging_service_sid: Sid | None = None
    opt_out_type: OptOutType | None = None
