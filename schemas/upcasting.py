"""Schema versions per event type, and the upcasters that turn an old version's value into the current
one before it is validated. Values on the logs are never rewritten: old versions are read forever.

| type               | version | change                                                             |
|--------------------|---------|--------------------------------------------------------------------|
| `message.received` | 2       | adds `keyword`: the body trimmed and upper-cased (`keyword_form`)  |
| `message.received` | 3       | adds `channel` (`sms` before it)                                   |
| `message.sent`     | 2       | adds `channel` (`sms` before it)                                   |
| `message.blocked`  | 2       | adds `channel` (`sms` before it)                                   |
| every other type   | 1       |                                                                    |

A value of a version newer than the one listed is not guessed at: decoding raises
`UnknownSchemaVersion` and the agents keep it aside in `sms-dead-letters`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from schemas.events import Event, OptOutType, PersonId, Phone, Sender, Sid, keyword_form

Value = dict[str, Any]

# The version each event type is written in now; a type not listed is at version 1.
LATEST_VERSIONS: dict[str, int] = {"message.received": 3, "message.sent": 2, "message.blocked": 2}


def latest_version(event_type: str) -> int:
    return LATEST_VERSIONS.get(event_type, 1)


def _received_v1_to_v2(value: Value) -> Value:
    body = value.get("body")
    keyword = keyword_form(body) if isinstance(body, str) else None
    return {**value, "schema_version": 2, "keyword": keyword}


def _on_sms(version: int) -> Callable[[Value], Value]:
    # Every value written before `channel` was an SMS: Twilio's plain numbers.
    def upcaster(value: Value) -> Value:
        return {**value, "schema_version": version, "channel": "sms"}

    return upcaster


# (type, version) -> the function that turns that version's value into the next version's.
UPCASTERS: dict[tuple[str, int], Callable[[Value], Value]] = {
    ("message.received", 1): _received_v1_to_v2,
    ("message.received", 2): _on_sms(3),
    ("message.sent", 1): _on_sms(2),
    ("message.blocked", 1): _on_sms(2),
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


# The older versions below are never folded: they describe the values of those versions in the
# JSON Schema of the topic (read through the upcasters above).


class MessageReceivedV1(Event):
    """`message.received` at version 1, without `keyword` or `channel`: an SMS, still accepted."""

    type: Literal["message.received"] = "message.received"
    phone: Phone
    sender: Sender
    body: Annotated[str, StringConstraints(max_length=4096)]
    message_sid: Sid
    account_sid: Sid
    messaging_service_sid: Sid | None = None
    opt_out_type: OptOutType | None = None


class MessageReceivedV2(MessageReceivedV1):
    """`message.received` at version 2, without `channel`: an SMS, still accepted."""

    schema_version: Literal[2] = 2  # type: ignore[assignment]
    keyword: Annotated[str, StringConstraints(max_length=64)] | None = None


class MessageSentV1(Event):
    """`message.sent` at version 1, without `channel`: an SMS, still accepted."""

    type: Literal["message.sent"] = "message.sent"
    person_id: PersonId
    phone: Phone
    sender: Sender
    message_sid: Sid
    messaging_service_sid: Sid | None = None


class MessageBlockedV1(Event):
    """`message.blocked` at version 1, without `channel`: an SMS, still accepted."""

    type: Literal["message.blocked"] = "message.blocked"
    person_id: PersonId | None
    phone: Phone
    sender: Sender
    message_sid: Sid | None = None
    error_code: Literal[21610] = 21610
    messaging_service_sid: Sid | None = None
