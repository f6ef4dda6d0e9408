"""The published JSON Schema of `sms-messaging-events` and the decoder agree: a value one accepts, the
other accepts, on one table of valid and invalid values run through both (jsonschema, formats asserted
and not, and `decode_messaging_event`). A producer that validates before publishing is not then refused.

Phones are E.164 throughout: whether a string is a possible phone number is phonenumbers' to say, not a
schema's; the service checks it beyond the schema (GAPS shows it). A version newer than the service
reads (the decoder's UnknownSchemaVersion, kept aside rather than folded) counts as invalid: the schema
refuses it too. GAPS lists what the two are known to judge differently, and why.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas.codec import MAX_EVENT_BYTES, decode_messaging_event
from schemas.errors import DecodeError
from schemas.json_schemas import TOPIC_VALUES, path_for

# The committed file, as producers get it (test_json_schemas holds it equal to the models').
SCHEMA = json.loads(path_for("sms-messaging-events").read_text())
SCHEMA_CHECKS = {
    "schema, formats asserted": Draft202012Validator(SCHEMA, format_checker=FormatChecker()),
    # Most validators take `format` as an annotation only (the 2020-12 default): the patterns must hold.
    "schema, formats as annotations": Draft202012Validator(SCHEMA),
}

SENT: dict[str, Any] = {
    "type": "message.sent",
    "event_id": "SM0001",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:00:00Z",
    "person_id": "person-1",
    "phone": "+14155550123",
    "sender": "+14155550100",
    "message_sid": "SM0001",
    "messaging_service_sid": "MG0001",
}
RECEIVED_V1: dict[str, Any] = {
    "type": "message.received",
    "event_id": "SM0002",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:05:00Z",
    "phone": "+14155550123",
    "sender": "+14155550100",
    "body": " Stop ",
    "message_sid": "SM0002",
    "account_sid": "AC0001",
    "messaging_service_sid": None,
    "opt_out_type": "STOP",
}
RECEIVED_V2: dict[str, Any] = {**RECEIVED_V1, "schema_version": 2, "keyword": "STOP"}
RECEIVED_V3: dict[str, Any] = {**RECEIVED_V2, "schema_version": 3, "channel": "rcs", "sender": "acme_agent"}
BLOCKED: dict[str, Any] = {
    "type": "message.blocked",
    "event_id": "SM0003",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:10:00Z",
    "person_id": "person-1",
    "phone": "+14155550123",
    "sender": "+14155550100",
    "message_sid": "SM0001",
    "error_code": 21610,
    "messaging_service_sid": None,
}
EVENTS = {"sent": SENT, "received-v1": RECEIVED_V1, "received-v2": RECEIVED_V2, "blocked": BLOCKED}

# The fields the contract (docs/contract.md) says each event carries and the decoder cannot do without.
REQUIRED = {
    "sent": ["type", "event_id", "occurred_at", "person_id", "phone", "sender", "message_sid"],
    "received-v1": [
        "type",
        "event_id",
        "occurred_at",
        "phone",
        "sender",
        "body",
        "message_sid",
        "account_sid",
    ],
    "received-v2": [
        "type",
        "event_id",
        "occurred_at",
        "phone",
        "sender",
        "body",
        "message_sid",
        "account_sid",
    ],
    "blocked": ["type", "event_id", "occurred_at", "person_id", "phone", "sender"],
}
# Fields that may be left out or null: the decoder reads them as null (or their one value).
OPTIONAL = {
    "sent": ["messaging_service_sid"],
    "received-v1": ["messaging_service_sid", "opt_out_type"],
    "received-v2": ["messaging_service_sid", "opt_out_type", "keyword"],
    "blocked": ["message_sid", "messaging_service_sid"],
}
# The longest value each string field takes; one character more is refused.
LONGEST = {
    "event_id": "E" * 200,
    "person_id": "p" * 128,
    "message_sid": "S" * 64,
    "account_sid": "A" * 64,
    "messaging_service_sid": "M" * 64,
}


def but(value: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**value, **changes}


def without(value: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in names}


def valid(event_id: str, value: Any) -> Any:
    return pytest.param(value, True, id=event_id)


def invalid(event_id: str, value: Any) -> Any:
    return pytest.param(value, False, id=event_id)


ROWS = [
    # ---- each event type valid at each version it is read in
    valid("sent", SENT),
    valid("received-v1-upcast", RECEIVED_V1),
    valid("received-v2", RECEIVED_V2),
    valid("blocked", BLOCKED),
    valid("sent-without-schema-version", without(SENT, "schema_version")),
    valid("blocked-without-schema-version", without(BLOCKED, "schema_version")),
    # without a version a message.received is read at version 2, its keyword taken from its body
    valid("received-without-schema-version", without(RECEIVED_V1, "schema_version")),
    valid("received-without-schema-version-with-keyword", without(RECEIVED_V2, "schema_version")),
    valid("received-v2-blank-body-null-keyword", but(RECEIVED_V2, body="  ", keyword=None)),
    valid("received-v2-empty-body", but(RECEIVED_V2, body="", keyword=None)),
    valid("received-v2-longest-body", but(RECEIVED_V2, body="b" * 4096, keyword="B" * 64)),
    # version 1 had no keyword: one there is an unknown field, ignored (the upcaster sets its own)
    valid("received-v1-with-a-stray-keyword", but(RECEIVED_V1, keyword=5)),
    # JSON has one kind of number: 1.0 is 1 to JSON Schema, and to pydantic's Literal
    valid("sent-schema-version-1.0", but(SENT, schema_version=1.0)),
    # the channel: version 3 of message.received, 2 of message.sent and message.blocked
    valid("received-v3-rcs", RECEIVED_V3),
    valid("received-v3-whatsapp", but(RECEIVED_V3, channel="whatsapp", sender="+14155550100")),
    valid("received-v3-sms", but(RECEIVED_V3, channel="sms", sender="+14155550100")),
    valid("received-v3-without-channel", without(but(RECEIVED_V3, sender="+14155550100"), "channel")),
    valid("sent-v2-rcs", but(SENT, schema_version=2, channel="rcs", sender="acme_agent")),
    valid("sent-v2-whatsapp", but(SENT, schema_version=2, channel="whatsapp")),
    valid("blocked-v2-rcs", but(BLOCKED, schema_version=2, channel="rcs")),
    valid("sent-without-schema-version-with-channel", without(but(SENT, channel="rcs"), "schema_version")),
    # an older version had no channel: one there is an unknown field, ignored (the upcaster says SMS)
    valid("sent-v1-with-a-stray-channel", but(SENT, channel="whatsapp")),
    valid("received-schema-version-2.0", but(RECEIVED_V2, schema_version=2.0)),
    valid("blocked-error-code-21610.0", but(BLOCKED, error_code=21610.0)),
    *(
        valid(f"{name}-without-{field}", without(EVENTS[name], field))
        for name in OPTIONAL
        for field in OPTIONAL[name]
    ),
    *(
        valid(f"{name}-null-{field}", but(EVENTS[name], **{field: None}))
        for name in OPTIONAL
        for field in OPTIONAL[name]
        if field != "keyword"  # a null keyword says the body is blank: a rule of GAPS
    ),
    valid("blocked-without-error-code", without(BLOCKED, "error_code")),
    valid("blocked-null-person-with-message-sid", but(BLOCKED, person_id=None)),
    *(
        valid(f"received-v2-opt-out-type-{kind}", but(RECEIVED_V2, opt_out_type=kind))
        for kind in ("START", "HELP")
    ),
    valid("sent-short-code-sender", but(SENT, sender="12345")),
    valid("sent-alphanumeric-sender", but(SENT, sender="My Brand 2")),
    valid("sent-formatted-phone", but(SENT, phone="+1 (415) 555-0123")),
    *(
        valid(f"sent-longest-{field}", but(SENT, **{field: LONGEST[field]}))
        for field in ("event_id", "person_id")
    ),
    *(
        valid(f"received-longest-{field}", but(RECEIVED_V2, **{field: LONGEST[field]}))
        for field in ("message_sid", "account_sid", "messaging_service_sid")
    ),
    valid("extra-fields-sent", but(SENT, ApiVersion="2010-04-01", nested={"a": [1, None]})),
    valid("extra-fields-received-v1", but(RECEIVED_V1, NumMedia="0")),
    valid("extra-fields-received-v2", but(RECEIVED_V2, NumMedia="0")),
    valid("extra-fields-blocked", but(BLOCKED, status="undelivered")),
    # ---- occurred_at: RFC 3339 with an offset
    *(
        valid(f"occurred-at-{at}", but(SENT, occurred_at=at))
        for at in (
            "2025-03-01T11:00:00+02:00",
            "2025-03-01T04:00:00-05:00",
            "2025-03-01T09:00:00-00:00",
            "2025-03-01T09:00:00+23:59",
            "2025-03-01t09:00:00z",
            "2025-03-01T09:00:00.5Z",
            "2025-03-01T09:00:00.123456789Z",
            "2024-02-29T09:00:00Z",
            "2000-02-29T09:00:00Z",
            "2025-04-30T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00-05:00",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:00:00+01:00",
        )
    ),
    # ---- the discriminator
    invalid("no-type", without(SENT, "type")),
    invalid("unknown-type", but(SENT, type="message.lost")),
    invalid("type-in-capitals", but(SENT, type="MESSAGE.SENT")),
    invalid("type-null", but(SENT, type=None)),
    invalid("type-a-number", but(SENT, type=5)),
    invalid("not-an-object", [SENT]),
    invalid("a-string", "message.sent"),
    invalid("null", None),
    # ---- every required field
    *(
        invalid(f"{name}-without-{field}", without(EVENTS[name], field))
        for name in REQUIRED
        for field in REQUIRED[name]
    ),
    *(
        invalid(f"{name}-null-{field}", but(EVENTS[name], **{field: None}))
        for name in REQUIRED
        for field in REQUIRED[name]
        if (name, field) != ("blocked", "person_id")  # null when message_sid names the send
    ),
    # ---- schema_version
    invalid("sent-schema-version-3-newer-than-known", but(SENT, schema_version=3, channel="sms")),
    invalid("blocked-schema-version-3-newer-than-known", but(BLOCKED, schema_version=3, channel="sms")),
    invalid("received-schema-version-4-newer-than-known", but(RECEIVED_V3, schema_version=4)),
    # ---- channel (version 3 of message.received, 2 of the others)
    invalid("sent-v2-unknown-channel", but(SENT, schema_version=2, channel="telegram")),
    invalid("received-v3-channel-null", but(RECEIVED_V3, channel=None)),
    invalid("received-v3-channel-upper-case", but(RECEIVED_V3, channel="RCS")),
    invalid("blocked-v2-channel-a-number", but(BLOCKED, schema_version=2, channel=1)),
    invalid("sent-schema-version-0", but(SENT, schema_version=0)),
    invalid("received-schema-version-0", but(RECEIVED_V2, schema_version=0)),
    invalid("sent-schema-version-as-text", but(SENT, schema_version="1")),
    invalid("received-schema-version-as-text", but(RECEIVED_V2, schema_version="2")),
    invalid("sent-schema-version-null", but(SENT, schema_version=None)),
    invalid("received-schema-version-null", but(RECEIVED_V1, schema_version=None)),
    invalid("received-schema-version-true", but(RECEIVED_V2, schema_version=True)),
    invalid("sent-schema-version-true", but(SENT, schema_version=True)),
    valid("received-schema-version-1.0", but(RECEIVED_V1, schema_version=1.0)),
    invalid("received-schema-version-1.5", but(RECEIVED_V1, schema_version=1.5)),
    # ---- wrong types
    invalid("event-id-a-number", but(SENT, event_id=1)),
    invalid("occurred-at-a-number", but(SENT, occurred_at=1740819600)),
    invalid("person-id-a-number", but(SENT, person_id=1)),
    invalid("phone-a-number", but(SENT, phone=14155550123)),
    invalid("sender-a-list", but(SENT, sender=["+14155550100"])),
    invalid("body-a-list", but(RECEIVED_V2, body=["STOP"])),
    invalid("message-sid-true", but(SENT, message_sid=True)),
    invalid("account-sid-an-object", but(RECEIVED_V2, account_sid={})),
    invalid("messaging-service-sid-a-number", but(SENT, messaging_service_sid=1)),
    invalid("opt-out-type-a-number", but(RECEIVED_V2, opt_out_type=1)),
    invalid("received-v2-keyword-a-number", but(RECEIVED_V2, keyword=5)),
    invalid(
        "received-without-version-keyword-a-number", but(without(RECEIVED_V2, "schema_version"), keyword=5)
    ),
    invalid("blocked-person-id-a-number", but(BLOCKED, person_id=1)),
    invalid("blocked-message-sid-a-number", but(BLOCKED, message_sid=1)),
    # ---- enums and consts
    invalid("error-code-30007", but(BLOCKED, error_code=30007)),
    invalid("error-code-as-text", but(BLOCKED, error_code="21610")),
    invalid("error-code-null", but(BLOCKED, error_code=None)),
    invalid("error-code-true", but(BLOCKED, error_code=True)),
    invalid("opt-out-type-stopall", but(RECEIVED_V2, opt_out_type="STOPALL")),
    invalid("opt-out-type-lower-case", but(RECEIVED_V2, opt_out_type="stop")),
    # ---- message.blocked names the person or the message
    invalid("blocked-null-person-null-message-sid", but(BLOCKED, person_id=None, message_sid=None)),
    invalid("blocked-null-person-no-message-sid", without(but(BLOCKED, person_id=None), "message_sid")),
    # ---- lengths
    *(
        invalid(f"sent-too-long-{field}", but(SENT, **{field: LONGEST[field] + "x"}))
        for field in ("event_id", "person_id")
    ),
    *(
        invalid(f"received-too-long-{field}", but(RECEIVED_V2, **{field: LONGEST[field] + "x"}))
        for field in ("message_sid", "account_sid", "messaging_service_sid")
    ),
    invalid("received-too-long-body", but(RECEIVED_V1, body="b" * 4097)),
    invalid("received-v2-too-long-keyword", but(RECEIVED_V2, body="b" * 65, keyword="B" * 65)),
    invalid("phone-too-long", but(SENT, phone="+14155550123" + " " * 53)),
    invalid("sender-too-long", but(SENT, sender="+14155550100" + " " * 53)),
    *(
        invalid(f"empty-{field}", but(SENT, **{field: ""}))
        for field in ("event_id", "person_id", "message_sid")
    ),
    invalid("empty-account-sid", but(RECEIVED_V2, account_sid="")),
    invalid("empty-messaging-service-sid", but(SENT, messaging_service_sid="")),
    invalid("empty-phone", but(SENT, phone="")),
    invalid("blank-phone", but(SENT, phone="  \t")),
    invalid("empty-sender", but(SENT, sender="")),
    invalid("blank-sender", but(SENT, sender=" ")),
    # ---- white space in identifiers
    invalid("event-id-with-a-space", but(SENT, event_id="SM 0001")),
    invalid("event-id-with-a-leading-space", but(SENT, event_id=" SM0001")),
    invalid("event-id-with-a-final-newline", but(SENT, event_id="SM0001\n")),
    invalid("event-id-with-a-no-break-space", but(SENT, event_id="SM\u00a00001")),
    invalid("message-sid-with-a-tab", but(SENT, message_sid="SM0001\t")),
    invalid("account-sid-with-a-newline", but(RECEIVED_V2, account_sid="AC\n0001")),
    invalid("account-sid-with-a-final-newline", but(RECEIVED_V2, account_sid="AC0001\n")),
    invalid("messaging-service-sid-with-a-space", but(SENT, messaging_service_sid="MG 0001")),
    invalid("person-id-with-a-space", but(SENT, person_id="person 1")),
    invalid("person-id-with-a-final-newline", but(SENT, person_id="person-1\n")),
    invalid("person-id-with-a-slash", but(SENT, person_id="a/b")),
    invalid("blocked-person-id-with-a-slash", but(BLOCKED, person_id="a/b")),
    *(
        invalid(f"person-id-with-{name}", but(SENT, person_id=f"person{char}1"))
        for name, char in [
            ("a-nul", "\x00"),
            ("a-delete", "\x7f"),
            ("a-c1-next-line", "\x85"),
            ("a-no-break-space", "\xa0"),
            ("a-soft-hyphen", "\xad"),
            ("a-zero-width-space", "\u200b"),
            ("a-zero-width-joiner", "\u200d"),
            ("a-right-to-left-override", "\u202e"),
            ("a-word-joiner", "\u2060"),
            ("a-byte-order-mark", "\ufeff"),
            ("an-ideographic-space", "\u3000"),
        ]
    ),
    valid("person-id-with-braces", but(SENT, person_id="{3F2504E0-4F89-11D3-9A0C-0305E82C3301}")),
    valid("person-id-with-letters-beyond-ascii", but(SENT, person_id="müller-\u6771\U0001f600")),
    # ---- occurred_at
    *(
        invalid(f"occurred-at-{at!r}", but(SENT, occurred_at=at))
        for at in (
            "2025-03-01T09:00:00",  # naive: no offset
            "2025-03-01",
            "09:00:00Z",
            "yesterday",
            "",
            "2025-02-29T09:00:00Z",  # 2025 is not a leap year
            "1900-02-29T09:00:00Z",
            "2025-04-31T09:00:00Z",
            "2025-13-01T09:00:00Z",
            "2025-00-01T09:00:00Z",
            "2025-03-00T09:00:00Z",
            "0000-01-01T00:00:00Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T09:60:00Z",
            "2025-03-01T23:59:60Z",  # a leap second: RFC 3339 has them, pydantic does not
            "2025-03-01T09:00:00.Z",
            "2025-03-01T09:00:00+24:00",
            "2025-03-01T09:00:00+01:60",
            "2025-03-01T09:00:00+01",
            "2025-03-01T09:00:00Z\n",
            " 2025-03-01T09:00:00Z",
            "2025-03-01T09:00:00 Z",
            # what pydantic alone would read, beyond RFC 3339
            "2025-03-01 09:00:00Z",
            "2025-03-01_09:00:00Z",
            "2025-03-01T09:00Z",
            "2025-03-01T09:00:00,5Z",
            "2025-03-01T09:00:00+0100",
            "1740819600",  # seconds since 1970, as a string
            # before year 1 or after 9999 once in UTC, where the service holds its times
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00+00:30",
            "9999-12-31T23:00:00-01:00",
        )
    ),
]

# What the schema and the decoder are known to judge differently: (id, value, schema accepts, decoder
# accepts, why). Each is held here so that closing one (in the schema or in the decoder) shows.
GAPS = [
    (
        "phone-not-a-possible-number",
        but(SENT, phone="+1 555"),
        True,
        False,
        "phonenumbers' rules, checked by the service beyond the schema",
    ),
    ("phone-not-a-number", but(SENT, phone="not a phone"), True, False, "phonenumbers' rules"),
    ("phone-an-alphanumeric-id", but(RECEIVED_V2, phone="MyBrand"), True, False, "phonenumbers' rules"),
    ("sender-not-a-possible-number", but(SENT, sender="+1 555"), True, False, "phonenumbers' rules"),
    (
        "received-v2-keyword-not-the-body-s",
        but(RECEIVED_V2, keyword="HELLO"),
        True,
        False,
        "JSON Schema cannot trim and upper-case one field to compare it with another",
    ),
    (
        "received-v2-null-keyword-of-a-stop",
        but(RECEIVED_V2, keyword=None),
        True,
        False,
        "the same rule: null is the keyword of a blank body only",
    ),
    (
        "over-64-kib",
        but(SENT, padding="x" * MAX_EVENT_BYTES),
        True,
        False,
        "JSON Schema cannot say how many bytes a value takes; only unknown fields can make it that long",
    ),
    (
        "occurred-at-first-day-still-in-range-in-utc",
        but(SENT, occurred_at="0001-01-01T23:00:00+01:00"),
        False,
        True,
        "a regular expression cannot compare the time with the offset: the schema refuses every"
        " offset east of UTC on 0001-01-01 (and west of it on 9999-12-31)",
    ),
    (
        "phone-with-a-channel-prefix",
        but(SENT, schema_version=2, channel="whatsapp", phone="whatsapp:+14155550123"),
        True,
        False,
        "a phone is checked with phonenumbers beyond the schema: a channel prefix is refused there, never"
        " dropped (the channel is its own field)",
    ),
    (
        "event-id-with-a-control-character",
        but(SENT, event_id="SM\x1c0001"),
        False,
        True,
        "Python's re counts U+001C..U+001F as white space in \\S; pydantic's Rust regex and ECMA-262 do not",
    ),
]


def schema_accepts(value: Any) -> dict[str, bool]:
    return {name: check.is_valid(value) for name, check in SCHEMA_CHECKS.items()}


def decoder_accepts(value: Any) -> bool:
    try:
        decode_messaging_event(json.dumps(value), region="US")
    except DecodeError:  # UnknownSchemaVersion is one: refused, kept aside (any other error fails here)
        return False
    return True


@pytest.mark.parametrize(("value", "is_valid"), ROWS)
def test_the_schema_and_the_decoder_agree(value: Any, is_valid: bool) -> None:
    verdicts = {**schema_accepts(value), "decoder": decoder_accepts(value)}

    assert verdicts == dict.fromkeys(verdicts, is_valid)


@pytest.mark.parametrize(
    ("value", "schema_says", "decoder_says", "why"), [gap[1:] for gap in GAPS], ids=[gap[0] for gap in GAPS]
)
def test_what_the_schema_and_the_decoder_are_known_to_judge_differently(
    value: Any, schema_says: bool, decoder_says: bool, why: str
) -> None:
    verdicts = {**schema_accepts(value), "decoder": decoder_accepts(value)}
    documented = {**dict.fromkeys(SCHEMA_CHECKS, schema_says), "decoder": decoder_says}

    assert verdicts == documented, f"the gap changed ({why}): where the two now agree, move it to ROWS"


def test_the_date_time_format_is_asserted_where_formats_are() -> None:
    # jsonschema checks `format: date-time` only with rfc3339-validator installed: without it, the
    # first of SCHEMA_CHECKS would quietly check what the second does.
    assert "date-time" in FormatChecker().checkers


@pytest.mark.parametrize("topic", TOPIC_VALUES)
def test_every_published_schema_is_a_valid_2020_12_schema(topic: str) -> None:
    Draft202012Validator.check_schema(json.loads(path_for(topic).read_text()))
