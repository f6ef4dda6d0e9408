"""A dead letter keeps the refused value byte for byte, where it was and why."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.codec import encode
from schemas.dead_letters import MAX_KEPT_VALUE_BYTES, DeadLetter
from schemas.errors import DecodeError, UnknownSchemaVersion

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def letter(error: DecodeError, key: bytes | None, value: bytes | None) -> DeadLetter:
    return DeadLetter.of(
        error, topic="sms-messaging-events", partition=2, offset=41, key=key, value=value, at=NOW
    )


def test_an_undecodable_value_is_kept_as_text_with_where_and_why() -> None:
    error = DecodeError("message.sent: field 'phone' is missing", event_type="message.sent", field="phone")

    dead = letter(error, b"+14155550123", b'{"type": "message.sent"}')

    assert (dead.topic, dead.partition, dead.offset) == ("sms-messaging-events", 2, 41)
    assert (dead.key, dead.value, dead.kind) == ("+14155550123", '{"type": "message.sent"}', "undecodable")
    assert (dead.reason, dead.event_type, dead.field) == (str(error), "message.sent", "phone")


def test_a_value_of_an_unknown_version_is_kept_aside_as_such() -> None:
    dead = letter(UnknownSchemaVersion("message.sent", 3, 1), b"k", b"{}")

    assert dead.kind == "unknown_schema_version"
    assert dead.field == "schema_version"


def test_bytes_that_are_not_utf8_are_kept_in_base64_and_come_back_exactly() -> None:
    raw = b"\xff\xfe\x00binary"

    dead = letter(DecodeError("not JSON"), b"\x80", raw)
    again = DeadLetter.model_validate_json(encode(dead))

    assert (dead.value_encoding, dead.key_encoding) == ("base64", "base64")
    assert (again.original_value(), again.original_key()) == (raw, b"\x80")


def test_a_missing_key_or_value_is_null() -> None:
    dead = letter(DecodeError("no value"), None, None)

    assert (dead.key, dead.value, dead.original_value()) == (None, None, None)


def test_a_value_of_a_megabyte_keeps_only_its_start_so_the_dead_letter_fits_in_one_record() -> None:
    huge = b'{"type": "message.sent", "body": "' + b"x" * 1_000_000 + b'"}'

    dead = letter(DecodeError("value of 1000037 bytes is over the 65536-byte limit"), b"k" * 5000, huge)

    assert (dead.value_truncated, dead.value_bytes, dead.key_truncated) == (True, len(huge), True)
    assert dead.original_value() == huge[:MAX_KEPT_VALUE_BYTES]
    assert len(encode(dead)) < 80 * 1024  # far under the 1 MB a record may have


def test_a_value_within_the_limit_is_kept_whole() -> None:
    dead = letter(DecodeError("not JSON"), b"k", b"{not json")

    assert (dead.value_truncated, dead.value_bytes, dead.key_truncated) == (False, 9, False)
