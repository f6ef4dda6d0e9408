"""The pure cores of what operators see and do: readiness and lag, the operator token, and choosing
what a dead letter is published again as."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from schemas.dead_letters import DeadLetter
from schemas.errors import DecodeError
from streams.cli.dead_letters_cli import Found, Refused, check_foldable, parse_id, value_to_publish
from streams.engine.topics import MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from streams.pipeline.broker_watch import BrokerView, lags, readiness
from streams.web.operator_auth import bearer_token, is_under, local_path, same_token
from tests.factories import sent

EVENTS_0, EVENTS_1 = TopicPartition(MESSAGING_EVENTS, 0), TopicPartition(MESSAGING_EVENTS, 1)


# ---- lag and readiness ------------------------------------------------------------------------------


def test_lag_is_the_end_minus_the_committed_offset_or_the_beginning_before_any_commit() -> None:
    ends = {EVENTS_0: 120, EVENTS_1: 40}

    assert lags(ends, {EVENTS_0: 100, EVENTS_1: None}, {EVENTS_1: 10}) == {EVENTS_0: 20, EVENTS_1: 30}


def test_a_short_end_offset_never_makes_a_negative_lag() -> None:
    # Some brokers answer an end short of the log end: the committed offset can be past it.
    assert lags({EVENTS_0: 95}, {EVENTS_0: 100}, {}) == {EVENTS_0: 0}


def ready(view: BrokerView, max_lag: int = 100, recovered: bool = True) -> dict[str, object]:
    return readiness(recovered=recovered, rebalancing=False, view=view, max_lag=max_lag, app_id="a")


def test_ready_when_recovered_the_brokers_answer_and_no_partition_lags_past_the_threshold() -> None:
    status = ready(BrokerView(reachable=True, lags={EVENTS_0: 100, EVENTS_1: 3}))

    assert (status["ready"], status["max_lag"], status["lagging"]) == (True, 100, {})


def test_not_ready_while_one_partition_lags_past_the_threshold_and_it_says_which() -> None:
    status = ready(BrokerView(reachable=True, lags={EVENTS_0: 101, EVENTS_1: 3}))

    assert (status["ready"], status["lagging"]) == (False, {f"{MESSAGING_EVENTS}[0]": 101})


def test_not_ready_while_the_brokers_do_not_answer_or_before_the_first_look() -> None:
    assert ready(BrokerView(reachable=False, error="TimeoutError"))["ready"] is False
    assert ready(BrokerView(reachable=False, error="TimeoutError"))["brokers_error"] == "TimeoutError"
    assert ready(BrokerView())["ready"] is False


def test_not_ready_while_the_tables_recover() -> None:
    status = ready(BrokerView(reachable=True), recovered=False)

    assert (status["ready"], status["tables_recovered"]) == (False, False)


# ---- the operator token -----------------------------------------------------------------------------


def test_the_token_comes_from_a_bearer_header() -> None:
    assert bearer_token("Bearer s3cret") == "s3cret"
    assert bearer_token("bearer  s3cret ") == "s3cret"
    assert bearer_token("Basic dXNlcjpwYXNz") is None
    assert bearer_token(None) is None
    assert bearer_token("Bearer ") is None


def test_only_the_same_token_passes() -> None:
    assert same_token("s3cret", "s3cret")
    assert not same_token("s3cre", "s3cret")
    assert not same_token(None, "s3cret")
    assert not same_token("", "s3cret")


def test_the_protected_paths_are_the_people_and_what_is_under_them() -> None:
    assert is_under("/people", ("/people",))
    assert is_under("/people/cus_1/sms-opt-outs", ("/people",))
    assert not is_under("/peoplex", ("/people",))
    assert not is_under("/ready", ("/people",))


@pytest.mark.parametrize(
    ("given", "goes_to"),
    [("/people/cus_1", "/people/cus_1"), ("//evil.example", "/"), ("https://evil.example", "/"), (None, "/")],
)
def test_after_logging_in_only_a_path_on_this_server_is_followed(given: str | None, goes_to: str) -> None:
    assert local_path(given) == goes_to


# ---- dead letters: which one, and what is published again --------------------------------------------


def found(value: bytes, topic: str = MESSAGING_EVENTS) -> Found:
    error = DecodeError("message.sent: field 'phone' is missing", event_type="message.sent", field="phone")
    letter = DeadLetter.of(
        error, topic=topic, partition=1, offset=7, key=b"+14155550123", value=value, at=datetime.now(UTC)
    )
    return Found(partition=2, offset=41, letter=letter)


def test_a_dead_letter_is_named_by_partition_and_offset() -> None:
    assert parse_id("2:41") == (2, 41)
    assert parse_id("41") == (None, 41)
    with pytest.raises(Refused):
        parse_id("two:41")


def test_a_fixed_value_is_published_only_when_the_agents_decoder_takes_it() -> None:
    fixed = json.dumps(sent("cus_1", "+14155550123", "+14155550100")).encode()
    check_foldable(MESSAGING_EVENTS, fixed, "US")  # no error

    with pytest.raises(Refused, match=r"refused again.*'phone'"):
        check_foldable(MESSAGING_EVENTS, json.dumps({**json.loads(fixed), "phone": "nope"}).encode(), "US")
    with pytest.raises(Refused, match="refused again"):
        check_foldable(PERSON_EVENTS, fixed, "US")  # a messaging event is no person event
    with pytest.raises(Refused, match="not a topic the agents fold"):
        check_foldable(OPT_OUTS, fixed, "US")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "no value"),
        (b"not json", "not JSON"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "out of range"),
        ({"occurred_at": "9999-12-31T23:59:59-05:00"}, "out of range"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "ahead of the time its record was logged"),
    ],
)
def test_a_value_the_agents_would_keep_aside_is_refused_with_the_reason_never_a_traceback(
    value: dict[str, str] | bytes | None, why: str
) -> None:
    base = sent("cus_1", "+14155550123", "+14155550100")
    data = json.dumps({**base, **value}).encode() if isinstance(value, dict) else value

    with pytest.raises(Refused, match=why):
        check_foldable(MESSAGING_EVENTS, data, "US")  # type: ignore[arg-type]


def test_without_a_new_value_the_original_is_published_unless_only_its_start_was_kept() -> None:
    assert value_to_publish(found(b"{old}"), None) == b"{old}"
    assert value_to_publish(found(b"{old}"), b"{new}") == b"{new}"
    with pytest.raises(Refused, match="only the start"):
        value_to_publish(found(b"x" * 70_000), None)
