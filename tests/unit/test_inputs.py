"""What the API's paths and the command line take as a person id, a sender and a time: what the log
takes, refused with the field and a short excerpt of the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.inputs import InvalidInput, excerpt, person_id, sender, timestamp


@pytest.mark.parametrize(
    "value",
    ["cus_1\n", "cus\x00x", "cus\u200bx", "cus\u202ex", "cus 1", "a/b", "", "x" * 129, "\ufeffcus"],
)
def test_a_person_id_the_log_refuses_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="is not a person id"):
        person_id(value)


@pytest.mark.parametrize("value", ["cus_1", "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", "müller", "x" * 128])
def test_a_person_id_the_log_takes_is_taken_as_it_is(value: str) -> None:
    assert person_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "2026-W48-5T09:05:00Z",
        "20261127T090500Z",
        "2026-11-27",
        "2026-11-27T09:05:00",
        "2026-11-27 09:05:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-02-30T09:05:00Z",
    ],
)
def test_a_time_is_rfc_3339_with_an_offset_within_years_1_to_9999_in_utc(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"^time "):
        timestamp(value)


def test_a_time_is_given_back_in_utc() -> None:
    assert timestamp("2026-11-27T10:05:00+01:00") == datetime(2026, 11, 27, 9, 5, tzinfo=UTC)


def test_the_operator_page_s_time_without_an_offset_is_utc() -> None:
    assert timestamp("2026-11-27T09:05", naive_is_utc=True) == datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        timestamp("2026-W48-5T09:05", naive_is_utc=True)


def test_a_sender_is_normalised_and_a_long_one_is_shown_cut() -> None:
    assert sender("(415) 555-0100", "US") == "+14155550100"
    with pytest.raises(InvalidInput) as refused:
        sender("+1" + "5" * 5000, "US")
    assert "(5002 characters)" in str(refused.value) and len(str(refused.value)) < 200


def test_an_excerpt_escapes_what_cannot_be_seen_and_cuts_what_is_long() -> None:
    assert excerpt("a\x00\u200b") == "'a\\x00\\u200b'"
    assert excerpt("y" * 100, limit=3) == "'yyy…' (100 characters)"
