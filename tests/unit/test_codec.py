"""Decoding the contract from bytes: every event type, numbers normalised at the edge, and errors that
name the field and value at fault."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from schemas.codec import (
    MAX_EVENT_BYTES,
    decode_messaging_event,
    decode_opt_out_list,
    decode_person_event,
    encode,
    not_ahead,
)
from schemas.errors import DecodeError, OptOutsError
from schemas.events import (
    MessageBlocked,
    MessageReceived,
    MessageSent,
    OptOutCleared,
    OptOutEntry,
    OptOutList,
    OptOutOverridden,
    OptOutRecorded,
)
from schemas.upcasting import latest_version
from tests.unit.conftest import blocked, cleared, overridden, received, recorded, sent

SENT = {
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
RECEIVED = {
    "type": "message.received",
    "event_id": "SM0002",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:05:00Z",
    "phone": "+14155550123",
    "sender": "+14155550100",
    "body": "STOP",
    "message_sid": "SM0002",
    "account_sid": "AC0001",
    "messaging_service_sid": None,
    "opt_out_type": "STOP",
}
BLOCKED = {
    "type": "message.blocked",
    "event_id": "SM0003",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:10:00Z",
    "person_id": "person-1",
    "phone": "+14155550123",
    "sender": "+14155550100",
    "message_sid": None,
    "error_code": 21610,
}
RECORDED = {
    "type": "opt_out.recorded",
    "event_id": "derived-1",
    "schema_version": 1,
    "occurred_at": "2025-03-01T09:05:00Z",
    "person_id": "person-1",
    "sender": "+14155550100",
    "phone": "+14155550123",
    "cause": "keyword",
    "keyword": "STOP",
    "source_event_id": "SM0002",
    "messaging_service_sid": None,
}
CLEARED = {**RECORDED, "type": "opt_out.cleared", "cause": "opt_in_keyword", "keyword": "START"}
OVERRIDDEN = {
    **RECORDED,
    "type": "opt_out.overridden",
    "event_id": "override-1",
    "cause": "override",
    "keyword": None,
    "source_event_id": "override-1",
    "actor": "ops@example.com",
    "reason": "opted in by hand",
}
OPT_OUT_LIST: dict[str, Any] = {
    "person_id": "person-1",
    "opt_outs": [
        {
            "sender": "+14155550100",
            "phone": "+14155550123",
            "since": "2025-03-01T09:05:00Z",
            "cause": "keyword",
            "keyword": "STOP",
            "messaging_service_sid": "MG0001",
        }
    ],
    "updated_at": "2025-03-01T09:05:00Z",
}


def as_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def messaging(value: dict[str, Any], region: str = "US") -> Any:
    return decode_messaging_event(as_bytes(value), region=region)


# ---- each event type of the contract -------------------------------------------------------------


def test_decodes_message_sent() -> None:
    event = messaging(SENT)

    assert event == MessageSent(
        event_id="SM0001",
        occurred_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        person_id="person-1",
        phone="+14155550123",
        sender="+14155550100",
        message_sid="SM0001",
        messaging_service_sid="MG0001",
    )


def test_decodes_message_received() -> None:
    event = messaging(RECEIVED)

    assert isinstance(event, MessageReceived)
    assert (event.phone, event.sender, event.body) == ("+14155550123", "+14155550100", "STOP")
    assert (event.message_sid, event.account_sid) == ("SM0002", "AC0001")
    assert event.messaging_service_sid is None
    assert event.opt_out_type == "STOP"
    assert event.occurred_at == datetime(2025, 3, 1, 9, 5, tzinfo=UTC)


def test_decodes_message_blocked() -> None:
    event = messaging(BLOCKED)

    assert isinstance(event, MessageBlocked)
    assert (event.person_id, event.phone, event.sender) == ("person-1", "+14155550123", "+14155550100")
    assert event.message_sid is None
    assert event.error_code == 21610


def test_optional_messaging_fields_may_be_left_out() -> None:
    bare = {k: v for k, v in RECEIVED.items() if k not in ("messaging_service_sid", "opt_out_type")}

    event = messaging(bare)

    assert isinstance(event, MessageReceived)
    assert (event.messaging_service_sid, event.opt_out_type) == (None, None)


@pytest.mark.parametrize(
    ("value", "kind", "cause"),
    [
        (RECORDED, OptOutRecorded, "keyword"),
        ({**RECORDED, "cause": "send_blocked", "keyword": None}, OptOutRecorded, "send_blocked"),
        (CLEARED, OptOutCleared, "opt_in_keyword"),
        (OVERRIDDEN, OptOutOverridden, "override"),
    ],
)
def test_decodes_each_person_event(value: dict[str, Any], kind: type[BaseModel], cause: str) -> None:
    event = decode_person_event(as_bytes(value))

    assert type(event) is kind
    assert event.cause == cause
    assert (event.person_id, event.sender, event.phone) == ("person-1", "+14155550100", "+14155550123")
    assert event.source_event_id == value["source_event_id"]


def test_decodes_the_actor_and_reason_of_an_override() -> None:
    event = decode_person_event(as_bytes({**OVERRIDDEN, "actor": "  ops@example.com ", "reason": "wrong"}))

    assert isinstance(event, OptOutOverridden)
    assert (event.actor, event.reason) == ("ops@example.com", "wrong")


def test_decodes_an_opt_out_list() -> None:
    value = decode_opt_out_list(as_bytes(OPT_OUT_LIST))

    assert value == OptOutList(
        person_id="person-1",
        opt_outs=(
            OptOutEntry(
                sender="+14155550100",
                phone="+14155550123",
                since=datetime(2025, 3, 1, 9, 5, tzinfo=UTC),
                cause="keyword",
                keyword="STOP",
                messaging_service_sid="MG0001",
            ),
        ),
        updated_at=datetime(2025, 3, 1, 9, 5, tzinfo=UTC),
    )


# ---- numbers normalised at the edge --------------------------------------------------------------


@pytest.mark.parametrize("value", [SENT, RECEIVED, BLOCKED])
def test_a_formatted_phone_and_its_e164_form_decode_to_the_same_phone(value: dict[str, Any]) -> None:
    formatted = messaging({**value, "phone": "+1 (415) 555-0123"})
    e164 = messaging({**value, "phone": "+14155550123"})

    assert formatted.phone == e164.phone == "+14155550123"


@pytest.mark.parametrize("value", [SENT, RECEIVED, BLOCKED])
def test_a_known_phone_is_taken_as_it_is_and_any_other_is_still_normalised(value: dict[str, Any]) -> None:
    # The caller vouches for the known ones (the keys of our own store): a form that parsing would
    # change shows that they are not parsed again.
    known = {"+1 (415) 555-0123"}

    taken = decode_messaging_event(
        as_bytes({**value, "phone": "+1 (415) 555-0123"}), region="US", known_phones=known
    )
    parsed = decode_messaging_event(
        as_bytes({**value, "phone": "+1 415 555 0123"}), region="US", known_phones=known
    )

    assert (taken.phone, parsed.phone) == ("+1 (415) 555-0123", "+14155550123")
    with pytest.raises(DecodeError, match="phone"):
        decode_messaging_event(as_bytes({**value, "phone": "nope"}), region="US", known_phones=known)


@pytest.mark.parametrize(
    ("national", "region", "e164"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("415-555-0123", "US", "+14155550123"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_a_national_number_is_read_in_the_region_passed(national: str, region: str, e164: str) -> None:
    event = messaging({**SENT, "phone": national}, region=region)

    assert event.phone == e164


def test_an_international_number_ignores_the_region() -> None:
    event = messaging({**SENT, "phone": "+44 20 7946 0018"}, region="US")

    assert event.phone == "+442079460018"


def test_a_national_number_in_a_person_event_is_rejected_not_guessed() -> None:
    with pytest.raises(DecodeError) as raised:
        decode_person_event(as_bytes({**RECORDED, "phone": "(415) 555-0123"}))

    assert raised.value.field == "phone"
    assert "'(415) 555-0123'" in str(raised.value)


@pytest.mark.parametrize(
    ("sender", "region", "expected"),
    [
        ("+1 (415) 555-0100", "US", "+14155550100"),
        ("+14155550100", "US", "+14155550100"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("12345", "US", "12345"),
        ("123456", "GB", "123456"),
        ("MyBrand", "US", "MyBrand"),
        ("My Brand 2", "GB", "My Brand 2"),
    ],
    ids=["formatted-e164", "e164", "national", "short-code", "short-code-6", "alphanumeric", "alnum-spaces"],
)
def test_senders_are_e164_when_numbers_and_kept_as_given_otherwise(
    sender: str, region: str, expected: str
) -> None:
    event = messaging({**RECEIVED, "sender": sender}, region=region)

    assert event.sender == expected


def test_a_short_code_sender_is_not_read_as_a_phone_number() -> None:
    # "12345" would be a (bad) national number in the US; as a sender it is a short code.
    event = messaging({**SENT, "sender": "12345"}, region="US")

    assert event.sender == "12345"


# ---- bad input: one error type, naming the field and the value --------------------------------------


def without(value: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != key}


@pytest.mark.parametrize(
    ("data", "field", "fragments"),
    [
        (b'{"type": "message.sent", ', None, ["not JSON"]),
        (b"", None, ["not JSON"]),
        (as_bytes(without(SENT, "type")), None, ["'type'"]),
        (as_bytes({**SENT, "type": "message.lost"}), None, ["unknown event type", "'message.lost'"]),
        (as_bytes(without(SENT, "person_id")), "person_id", ["message.sent", "'person_id'", "missing"]),
        (as_bytes(without(RECEIVED, "account_sid")), "account_sid", ["message.received", "'account_sid'"]),
        (as_bytes({**SENT, "phone": 14155550123}), "phone", ["message.sent", "'phone'", "14155550123"]),
        (as_bytes({**RECEIVED, "body": ["STOP"]}), "body", ["'body'", "<list, not shown>"]),
        (as_bytes({**BLOCKED, "error_code": "21610"}), "error_code", ["'error_code'", "'21610'"]),
        (as_bytes({**BLOCKED, "error_code": 30007}), "error_code", ["'error_code'", "30007"]),
        (as_bytes({**SENT, "phone": "not a phone"}), "phone", ["'phone'", "'not a phone'"]),
        (as_bytes({**SENT, "phone": "+1 555"}), "phone", ["'phone'", "'+1 555'"]),
        (as_bytes({**SENT, "phone": ""}), "phone", ["'phone'", "''"]),
        (as_bytes({**RECEIVED, "phone": "MyBrand"}), "phone", ["'phone'", "'MyBrand'"]),
        (as_bytes({**RECEIVED, "sender": "+1 555"}), "sender", ["'sender'", "'+1 555'"]),
        (as_bytes({**RECEIVED, "opt_out_type": "STOPALL"}), "opt_out_type", ["'opt_out_type'", "'STOPALL'"]),
        (
            as_bytes({**SENT, "occurred_at": "2025-03-01T09:00:00"}),
            "occurred_at",
            ["'occurred_at'", "'2025-03-01T09:00:00'"],
        ),
        (as_bytes({**SENT, "occurred_at": "yesterday"}), "occurred_at", ["'occurred_at'", "'yesterday'"]),
        (as_bytes({**SENT, "schema_version": 3}), "schema_version", ["'schema_version'", "3"]),
        (as_bytes({**SENT, "event_id": ""}), "event_id", ["'event_id'", "''"]),
        (as_bytes({**SENT, "person_id": "a/b"}), "person_id", ["'person_id'", "'a/b'"]),
    ],
    ids=[
        "not-json",
        "empty",
        "no-type",
        "unknown-type",
        "missing-field",
        "missing-account-sid",
        "phone-not-a-string",
        "body-not-a-string",
        "error-code-as-text",
        "error-code-not-21610",
        "phone-not-a-number",
        "phone-too-short",
        "phone-empty",
        "phone-alphanumeric",
        "sender-too-short",
        "unknown-opt-out-type",
        "naive-timestamp",
        "timestamp-not-a-time",
        "unknown-schema-version",
        "empty-event-id",
        "person-id-with-slash",
    ],
)
def test_bad_messaging_input_raises_a_decode_error_naming_field_and_value(
    data: bytes, field: str | None, fragments: list[str]
) -> None:
    with pytest.raises(DecodeError) as raised:
        decode_messaging_event(data, region="US")

    message = str(raised.value)
    assert raised.value.field == field
    for fragment in fragments:
        assert fragment in message


def test_a_decode_error_names_the_event_type() -> None:
    with pytest.raises(DecodeError) as raised:
        decode_messaging_event(as_bytes({**BLOCKED, "sender": "+1 555"}), region="US")

    assert raised.value.event_type == "message.blocked"


def test_a_decode_error_is_an_error_of_this_service_not_of_pydantic() -> None:
    with pytest.raises(OptOutsError) as raised:
        decode_messaging_event(as_bytes({**SENT, "phone": "nope"}), region="US")

    assert isinstance(raised.value, DecodeError)
    assert not isinstance(raised.value, ValueError)


def test_a_bad_person_event_names_the_field_and_value() -> None:
    with pytest.raises(DecodeError) as raised:
        decode_person_event(as_bytes({**OVERRIDDEN, "actor": "   "}))

    assert raised.value.field == "actor"
    assert "opt_out.overridden" in str(raised.value)


def test_a_bad_opt_out_list_names_the_field() -> None:
    entry = {**OPT_OUT_LIST["opt_outs"][0], "since": "2025-03-01T09:05:00"}

    with pytest.raises(DecodeError) as raised:
        decode_opt_out_list(as_bytes({**OPT_OUT_LIST, "opt_outs": [entry]}))

    assert raised.value.field is not None
    assert "since" in raised.value.field
    assert "'2025-03-01T09:05:00'" in str(raised.value)


def padded(value: dict[str, Any], size: int) -> bytes:
    """`value` with an unknown field of padding, exactly `size` bytes long."""
    empty = as_bytes({**value, "padding": ""})
    return as_bytes({**value, "padding": "x" * (size - len(empty))})


def test_a_value_over_64_kib_is_rejected_before_parsing() -> None:
    data = padded(SENT, MAX_EVENT_BYTES + 1)

    with pytest.raises(DecodeError) as raised:
        decode_messaging_event(data, region="US")

    assert MAX_EVENT_BYTES == 64 * 1024
    assert str(MAX_EVENT_BYTES + 1) in str(raised.value)
    assert str(MAX_EVENT_BYTES) in str(raised.value)


def test_a_value_of_exactly_64_kib_is_decoded() -> None:
    data = padded(SENT, MAX_EVENT_BYTES)

    assert len(data) == MAX_EVENT_BYTES
    assert decode_messaging_event(data, region="US").event_id == "SM0001"


@pytest.mark.parametrize("decode", [decode_person_event, decode_opt_out_list])
def test_every_decoder_refuses_a_value_over_64_kib(decode: Any) -> None:
    with pytest.raises(DecodeError, match="limit"):
        decode(padded(RECORDED, MAX_EVENT_BYTES + 1))


# ---- extensions and round trips -------------------------------------------------------------------


def test_unknown_extra_fields_are_accepted_and_dropped() -> None:
    value = {**RECEIVED, "ApiVersion": "2010-04-01", "num_media": 0, "nested": {"a": [1, 2]}}

    event = messaging(value)

    assert event == messaging(RECEIVED)
    assert b"ApiVersion" not in encode(event)


def test_extra_fields_are_accepted_on_person_events_and_lists() -> None:
    assert decode_person_event(as_bytes({**RECORDED, "new_field": 1})) == decode_person_event(
        as_bytes(RECORDED)
    )
    assert decode_opt_out_list(as_bytes({**OPT_OUT_LIST, "new_field": 1})).person_id == "person-1"


MESSAGING_EVENTS = [
    sent("s1", "person-1", service="MG0001"),
    sent("s2", "person-1", sender="MyBrand"),
    received("r1", " stop ", opt_out_type="STOP"),
    received("r2", "hello", sender="12345"),
    blocked("b1", "person-1"),
    blocked("b2", "person-1", service="MG0001"),
]
PERSON_EVENTS = [
    recorded("p1", "person-1", service="MG0001"),
    recorded("p2", "person-1", cause="send_blocked"),
    cleared("p3", "person-1"),
    overridden("p4", "person-1"),
]


@pytest.mark.parametrize("event", MESSAGING_EVENTS, ids=lambda e: f"{e.type}-{e.event_id}")
def test_a_messaging_event_encoded_then_decoded_is_the_same_event(event: BaseModel) -> None:
    assert decode_messaging_event(encode(event), region="GB") == event


@pytest.mark.parametrize("event", PERSON_EVENTS, ids=lambda e: f"{e.type}-{e.event_id}")
def test_a_person_event_encoded_then_decoded_is_the_same_event(event: BaseModel) -> None:
    assert decode_person_event(encode(event)) == event


def test_an_opt_out_list_encoded_then_decoded_is_the_same_list() -> None:
    value = decode_opt_out_list(as_bytes(OPT_OUT_LIST))

    assert decode_opt_out_list(encode(value)) == value


def test_an_empty_opt_out_list_round_trips() -> None:
    value = OptOutList(person_id="person-1", opt_outs=(), updated_at=None)

    assert decode_opt_out_list(encode(value)) == value


def test_occurred_at_is_normalised_to_utc() -> None:
    event = messaging({**SENT, "occurred_at": "2025-03-01T11:00:00+02:00"})

    assert event.occurred_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert json.loads(encode(event))["occurred_at"] == "2025-03-01T09:00:00Z"


def test_an_event_built_in_code_holds_its_time_in_utc_too() -> None:
    paris = datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    event = MessageSent(
        event_id="SM0001",
        occurred_at=paris,
        person_id="person-1",
        phone="+14155550123",
        sender="+14155550100",
        message_sid="SM0001",
    )

    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.occurred_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def test_a_refused_body_is_never_quoted_in_the_reason_only_its_length() -> None:
    secret = "call me on my other number, 415 555 0199 " * 120  # over the 4096 characters allowed

    with pytest.raises(DecodeError) as refused:
        messaging({**RECEIVED, "body": secret}, region="US")

    assert refused.value.field == "body"
    assert "other number" not in str(refused.value)
    assert f"<{len(secret)} characters, not shown>" in str(refused.value)


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (MESSAGING_EVENTS[0], {"person_id", "phone", "sender", "message_sid", "messaging_service_sid"}),
        (
            MESSAGING_EVENTS[2],
            {
                "phone",
                "sender",
                "body",
                "message_sid",
                "account_sid",
                "messaging_service_sid",
                "opt_out_type",
                "keyword",
            },
        ),
        (MESSAGING_EVENTS[4], {"person_id", "phone", "sender", "message_sid", "error_code"}),
        (PERSON_EVENTS[0], {"person_id", "sender", "phone", "cause", "source_event_id"}),
        (PERSON_EVENTS[2], {"person_id", "sender", "phone", "cause", "source_event_id"}),
        (PERSON_EVENTS[3], {"person_id", "sender", "phone", "cause", "source_event_id", "actor", "reason"}),
    ],
    ids=lambda e: getattr(e, "type", ""),
)
def test_an_encoded_event_carries_the_contract_fields(event: BaseModel, fields: set[str]) -> None:
    value = json.loads(encode(event))

    assert fields | {"type", "event_id", "schema_version", "occurred_at"} <= value.keys()
    assert value["schema_version"] == latest_version(value["type"])
    assert value["occurred_at"].endswith("Z")


def test_an_encoded_opt_out_list_carries_the_contract_fields() -> None:
    value = json.loads(encode(decode_opt_out_list(as_bytes(OPT_OUT_LIST))))

    assert value.keys() == {"person_id", "opt_outs", "updated_at"}
    assert value["opt_outs"][0].keys() == {
        "channel",
        "source_channel",
        "covers",
        "sender",
        "phone",
        "since",
        "cause",
        "keyword",
        "messaging_service_sid",
    }


# ---- nothing a record holds escapes as anything but DecodeError -------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"[]",
        b"null",
        b'"STOP"',
        b'{"type": 7}',
        b'[{"type": "message.sent", "schema_version": 9}]',
        json.dumps({**SENT, "occurred_at": "0001-01-01T00:00:00+01:00"}).encode(),
        json.dumps({**SENT, "occurred_at": "9999-12-31T23:59:59-05:00"}).encode(),
        json.dumps({**SENT, "schema_version": "1"}).encode(),
        json.dumps({**RECEIVED, "schema_version": None}).encode(),
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
    ids=lambda value: repr(value)[:40],
)
@pytest.mark.parametrize(
    "decode",
    [lambda data: decode_messaging_event(data, region="US"), decode_person_event, decode_opt_out_list],
    ids=["messaging", "person", "list"],
)
def test_any_bad_value_is_a_decode_error_never_another_exception(value: bytes | None, decode: Any) -> None:
    with pytest.raises(DecodeError):
        decode(value)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_out_of_range_in_utc_names_the_field(moment: str) -> None:
    with pytest.raises(DecodeError, match=r"'occurred_at'.*out of range") as raised:
        decode_messaging_event(json.dumps({**SENT, "occurred_at": moment}), region="US")

    assert raised.value.field == "occurred_at"


def test_an_event_dated_further_ahead_of_its_record_than_allowed_is_refused() -> None:
    event = decode_messaging_event(json.dumps(RECEIVED), region="US")
    logged = event.occurred_at - timedelta(minutes=6)

    with pytest.raises(DecodeError, match="ahead of the time its record was logged") as raised:
        not_ahead(event, logged, timedelta(minutes=5))

    assert (raised.value.event_type, raised.value.field) == ("message.received", "occurred_at")


def test_an_event_within_the_allowed_skew_or_in_the_past_is_kept() -> None:
    event = decode_messaging_event(json.dumps(RECEIVED), region="US")

    assert not_ahead(event, event.occurred_at - timedelta(minutes=4), timedelta(minutes=5)) is event
    assert not_ahead(event, event.occurred_at + timedelta(days=400), timedelta(minutes=5)) is event
    assert not_ahead(event, None) is event
