"""Schema versions: a version 1 `message.received`, as it is stored on the log, is read at the latest
version (with its keyword, on SMS); so are `message.sent` and `message.blocked` of version 1; an event
of a version newer than the service reads is refused as such, never guessed at."""

from __future__ import annotations

import json

import pytest

from projections.contacts import EMPTY_CONTACTS, resolve
from schemas.codec import decode_messaging_event, decode_person_event, encode
from schemas.errors import DecodeError, UnknownSchemaVersion
from schemas.events import MessageReceived, MessagingEvent
from schemas.upcasting import latest_version, upcast
from tests.unit.conftest import sent

# Bytes exactly as version 1 of the service wrote them to sms-messaging-events.
STORED_V1_STOP = (
    b'{"type":"message.received","event_id":"SM0002","schema_version":1,'
    b'"occurred_at":"2025-03-01T09:05:00Z","phone":"+14155550123","sender":"+14155550100",'
    b'"body":" Stop ","message_sid":"SM0002","account_sid":"AC0001","messaging_service_sid":null,'
    b'"opt_out_type":null}'
)


def decode(data: bytes) -> MessagingEvent:
    return decode_messaging_event(data, region="US")


def test_a_stored_version_1_received_message_is_read_as_the_latest_with_its_keyword_on_sms() -> None:
    event = decode(STORED_V1_STOP)

    assert isinstance(event, MessageReceived)
    assert (event.schema_version, event.keyword, event.body, event.channel) == (3, "STOP", " Stop ", "sms")
    assert event.event_id == "SM0002"


def test_a_version_1_value_without_schema_version_is_version_1() -> None:
    value = json.loads(STORED_V1_STOP)
    del value["schema_version"]

    event = decode(json.dumps(value).encode())

    assert isinstance(event, MessageReceived)
    assert (event.schema_version, event.keyword) == (3, "STOP")


def test_an_upcast_event_is_written_again_at_the_latest_version() -> None:
    written = json.loads(encode(decode(STORED_V1_STOP)))

    assert written["schema_version"] == 3
    assert written["keyword"] == "STOP"
    assert written == {**json.loads(STORED_V1_STOP), "schema_version": 3, "keyword": "STOP", "channel": "sms"}


def test_a_version_2_received_message_is_read_as_an_sms() -> None:
    event = decode(
        json.dumps({**json.loads(STORED_V1_STOP), "schema_version": 2, "keyword": "STOP"}).encode()
    )

    assert isinstance(event, MessageReceived)
    assert (event.schema_version, event.channel) == (3, "sms")


@pytest.mark.parametrize("event_type", ["message.sent", "message.blocked"])
def test_a_version_1_send_or_blocked_send_is_read_as_an_sms_even_with_a_stray_channel(
    event_type: str,
) -> None:
    value = {**json.loads(STORED_V1_STOP), "type": event_type, "person_id": "ann", "channel": "whatsapp"}

    event = decode(json.dumps(value).encode())

    assert (event.type, event.schema_version, event.channel) == (event_type, 2, "sms")


def test_a_version_1_stop_folds_to_the_same_opt_out_as_a_version_2_stop() -> None:
    contacts = resolve(EMPTY_CONTACTS, sent("s1", "ann")).contacts
    as_v2 = json.dumps({**json.loads(STORED_V1_STOP), "schema_version": 2, "keyword": "STOP"}).encode()

    from_v1 = resolve(contacts, decode(STORED_V1_STOP)).emitted
    from_v2 = resolve(contacts, decode(as_v2)).emitted

    assert from_v1 == from_v2
    assert [(e.person_id, e.keyword) for e in from_v1] == [("ann", "STOP")]


def test_a_version_2_value_must_carry_the_keyword_of_its_body() -> None:
    value = {**json.loads(STORED_V1_STOP), "schema_version": 2, "keyword": "START"}

    with pytest.raises(DecodeError, match="keyword 'START' is not the body"):
        decode(json.dumps(value).encode())


def test_a_version_2_value_without_keyword_gets_the_keyword_of_its_body() -> None:
    value = {**json.loads(STORED_V1_STOP), "schema_version": 2}

    assert decode(json.dumps(value).encode()).keyword == "STOP"


@pytest.mark.parametrize(
    ("value", "version"),
    [
        ({**json.loads(STORED_V1_STOP), "schema_version": 4}, 4),
        ({**json.loads(STORED_V1_STOP), "type": "message.sent", "person_id": "ann", "schema_version": 3}, 3),
    ],
    ids=["received-v4", "sent-v3"],
)
def test_an_event_of_a_version_newer_than_the_service_reads_is_refused_as_unknown(
    value: dict[str, object], version: int
) -> None:
    with pytest.raises(UnknownSchemaVersion) as refused:
        decode(json.dumps(value).encode())

    assert refused.value.version == version
    assert refused.value.field == "schema_version"
    assert f"up to version {latest_version(str(value['type']))}" in str(refused.value)


def test_a_person_event_of_a_future_version_is_refused_as_unknown() -> None:
    value = {
        "type": "opt_out.recorded",
        "event_id": "e1",
        "schema_version": 2,
        "occurred_at": "2025-03-01T09:05:00Z",
        "person_id": "ann",
        "sender": "+14155550100",
        "phone": "+14155550123",
        "source_event_id": "SM0002",
        "cause": "keyword",
    }

    with pytest.raises(UnknownSchemaVersion):
        decode_person_event(json.dumps(value).encode())


@pytest.mark.parametrize("version", [0, -1, "1", None, True])
def test_a_schema_version_that_is_no_version_is_undecodable_not_unknown(version: object) -> None:
    value = {**json.loads(STORED_V1_STOP), "schema_version": version}

    with pytest.raises(DecodeError) as refused:
        decode(json.dumps(value).encode())

    assert not isinstance(refused.value, UnknownSchemaVersion)
    assert refused.value.field == "schema_version"


def test_a_version_1_value_with_a_bad_field_names_that_field() -> None:
    value = {**json.loads(STORED_V1_STOP), "phone": "not a phone"}

    with pytest.raises(DecodeError) as refused:
        decode(json.dumps(value).encode())

    assert refused.value.field == "phone"


def test_upcast_leaves_a_value_of_the_latest_version_as_it_is() -> None:
    value = {**json.loads(STORED_V1_STOP), "schema_version": 3, "keyword": "STOP", "channel": "rcs"}

    assert upcast(value) is value


@pytest.mark.parametrize(
    "data",
    [
        STORED_V1_STOP[:-40],  # cut off: a producer's partial write
        STORED_V1_STOP.replace(b'"phone"', b"'phone'"),  # not JSON's quotes
        STORED_V1_STOP.replace(b'"SM0002",', b'"SM\\ud800",', 1),  # a lone surrogate escape
    ],
    ids=["cut-off", "single-quotes", "lone-surrogate"],
)
def test_a_version_1_value_that_is_not_json_is_refused_as_not_json_as_the_latest_version_is(
    data: bytes,
) -> None:
    # Both paths (the upcast of an older version, and the latest version read as it is) say alike
    # that the value is no JSON at all, with the parser's own reason.
    latest = data.replace(b'"schema_version":1', b'"schema_version":3')
    with pytest.raises(DecodeError) as older_refused:
        decode(data)
    with pytest.raises(DecodeError) as latest_refused:
        decode(latest)

    assert str(older_refused.value).startswith("not JSON: ")
    assert str(older_refused.value) == str(latest_refused.value)


@pytest.mark.parametrize("version", [1, 3])
def test_a_value_that_starts_with_a_byte_order_mark_is_read_as_without_it(version: int) -> None:
    data = STORED_V1_STOP.replace(b'"schema_version":1', b'"schema_version":%d' % version)

    assert decode(b"\xef\xbb\xbf" + data) == decode(data)
    assert decode("\ufeff" + data.decode()) == decode(data)
