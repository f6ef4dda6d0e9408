"""The whole path through the real broker, a real worker process and real HTTP: messaging events in,
per-person lists out (API and `sms-opt-outs`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import encode
from schemas.events import OptOutCleared, OptOutRecorded
from streams.engine.topics import DEAD_LETTERS, MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from tests.factories import blocked, received, sent, unique, unique_phone
from tests.integration.kafka import latest_values, publish, raw_values
from tests.integration.processes import ServiceProcess, http_json, operator_headers

pytestmark = pytest.mark.integration

SENDER = "+14155550100"
OTHER_SENDER = "+14155550199"


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout} s: {value!r}"
            return value
        time.sleep(0.1)


def opt_outs(worker: ServiceProcess, person_id: str) -> list[dict[str, Any]]:
    status, body = http_json(
        "GET", f"{worker.url}/people/{person_id}/sms-opt-outs", headers=operator_headers(worker)
    )
    assert status == 200, body
    return list(body["opt_outs"])


def senders(worker: ServiceProcess, person_id: str) -> set[str]:
    return {entry["sender"] for entry in opt_outs(worker, person_id)}


def history(worker: ServiceProcess, person_id: str) -> list[dict[str, Any]]:
    status, body = http_json(
        "GET", f"{worker.url}/people/{person_id}/sms-opt-outs/history", headers=operator_headers(worker)
    )
    assert status == 200, body
    return list(body["history"])


def metric(worker: ServiceProcess, name: str) -> float:
    """The sum of a metric's series on the worker's /metrics."""
    status, text = http_json("GET", f"{worker.url}/metrics")
    assert status == 200
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.split("{")[0].split(" ")[0] == name  # `name{labels} value` or `name value`
    )


def publish_events(brokers: str, *events: dict[str, Any]) -> None:
    publish(brokers, MESSAGING_EVENTS, [(event["phone"], event) for event in events])


def test_stop_after_a_sent_message_puts_the_sender_on_the_list(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop = received(phone, SENDER, " Stop ")
    publish_events(kafka_brokers, send, stop)

    [entry] = eventually(lambda: opt_outs(worker, person))
    assert entry == {
        "channel": "sms",
        "sender": SENDER,
        "phone": phone,
        "since": stop["occurred_at"],
        "cause": "keyword",
        "keyword": "STOP",
        "messaging_service_sid": None,
        "source_channel": "sms",
        "covers": ["sms", "mms", "rcs"],
    }
    [change] = history(worker, person)
    assert (change["type"], change["source_event_id"]) == ("opt_out.recorded", stop["event_id"])


def test_start_clears_the_sender(worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})

    publish_events(kafka_brokers, received(phone, SENDER, "start"))

    eventually(lambda: senders(worker, person) == set())
    assert [change["type"] for change in history(worker, person)] == ["opt_out.recorded", "opt_out.cleared"]


def test_stop_to_a_sender_never_received_from_changes_nothing(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(person, phone, SENDER),
        received(phone, OTHER_SENDER, "STOP"),  # never received from OTHER_SENDER
        received(phone, SENDER, "STOP"),  # same phone, same partition: folded after the one above
    )
    eventually(lambda: senders(worker, person) == {SENDER})
    assert len(history(worker, person)) == 1


def test_blocked_send_puts_the_sender_on_the_list(worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    block = blocked(person, phone, SENDER)
    publish_events(kafka_brokers, block)

    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["sender"], entry["cause"], entry["keyword"]) == (SENDER, "send_blocked", None)


def test_shared_phone_stop_counts_for_each_recipient_of_that_sender(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    alice, bob, carol, phone = unique("alice"), unique("bob"), unique("carol"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(alice, phone, SENDER),
        sent(bob, phone, SENDER),
        sent(carol, phone, OTHER_SENDER),
        received(phone, SENDER, "UNSUBSCRIBE"),
        received(phone, OTHER_SENDER, "HELP"),
        sent(carol, phone, SENDER),  # after the keyword: carol was not a recipient when it came
        received(phone, OTHER_SENDER, "STOP"),
    )
    eventually(lambda: senders(worker, carol) == {OTHER_SENDER})
    assert senders(worker, alice) == {SENDER}
    assert senders(worker, bob) == {SENDER}


def test_a_national_number_in_an_event_is_the_same_phone_as_its_e164_form(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), "+14155551234"
    publish(
        kafka_brokers,
        MESSAGING_EVENTS,
        [
            (phone, sent(person, "(415) 555-1234", "+1 415 555 0100")),  # read in the default region, US
            (phone, received(phone, SENDER, "STOP")),
        ],
    )
    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["phone"], entry["sender"]) == (phone, SENDER)


def test_an_event_keyed_by_an_unnormalised_phone_is_rekeyed_and_folded(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person = unique("person")
    national = "(415) 555-1299"
    event = blocked(person, national, SENDER)
    rekeyed_before = metric(worker, "optouts_rekeyed_events_total")
    publish(kafka_brokers, MESSAGING_EVENTS, [(national, event)])

    [entry] = eventually(lambda: opt_outs(worker, person))
    assert entry["phone"] == "+14155551299"
    # Sent again under the E.164 key and folded there, not folded where it landed.
    again = raw_values(kafka_brokers, MESSAGING_EVENTS, {"+14155551299"}).get("+14155551299", [])
    assert [json.loads(value)["event_id"] for value in again].count(event["event_id"]) == 1
    assert metric(worker, "optouts_rekeyed_events_total") - rekeyed_before >= 1


def test_an_undecodable_event_is_skipped_and_counted_and_the_next_is_folded(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    bad_phone = {**sent(person, phone, SENDER), "phone": "not a phone"}
    failures_before = metric(worker, "optouts_decode_failures_total")
    publish(
        kafka_brokers,
        MESSAGING_EVENTS,
        [
            (phone, b"{not json"),
            (phone, bad_phone),
            (phone, sent(person, phone, SENDER)),
            (phone, received(phone, SENDER, "STOP")),
        ],
    )
    eventually(lambda: senders(worker, person) == {SENDER})
    # Both kept aside under their key (this test's phone alone), and counted.
    assert len(raw_values(kafka_brokers, DEAD_LETTERS, {phone}).get(phone, [])) == 2
    assert metric(worker, "optouts_decode_failures_total") - failures_before >= 2


def test_the_output_topic_holds_each_persons_current_list(worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(person, phone, SENDER),
        sent(person, phone, OTHER_SENDER),
        received(phone, SENDER, "STOP"),
        received(phone, OTHER_SENDER, "QUIT"),
        received(phone, SENDER, "UNSTOP"),
    )
    eventually(lambda: senders(worker, person) == {OTHER_SENDER})

    status, listed = http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs")
    assert status == 200
    latest = eventually(
        lambda: latest_values(kafka_brokers, OPT_OUTS, {person}).get(person) == listed and listed
    )
    assert latest["opt_outs"][0]["sender"] == OTHER_SENDER


def test_an_unknown_person_has_an_empty_list(worker: ServiceProcess) -> None:
    person = unique("nobody")
    assert http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs") == (
        200,
        {"person_id": person, "opt_outs": [], "updated_at": None},
    )
    assert http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs/history") == (
        200,
        {"person_id": person, "history": [], "before": None, "total": 0},
    )


def test_a_person_id_too_long_is_refused(worker: ServiceProcess) -> None:
    status, body = http_json("GET", f"{worker.url}/people/{'x' * 129}/sms-opt-outs")
    assert status == 422
    assert "128" in body["error"]


def test_health_ready_and_metrics_answer(worker: ServiceProcess) -> None:
    assert http_json("GET", f"{worker.url}/health") == (200, {"status": "alive"})
    status, ready = http_json("GET", f"{worker.url}/ready")
    assert (status, ready["ready"]) == (200, True)
    status, metrics = http_json("GET", f"{worker.url}/metrics")
    assert status == 200
    assert "optouts_events_folded_total" in metrics


def test_a_burst_over_every_partition_is_folded_event_by_event(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    # Many phones at once: the agents fold them in batches that mix partitions, and each key must
    # be read from and written to its own partition's store.
    people = [(unique("burst"), unique_phone()) for _ in range(150)]
    publish_events(kafka_brokers, *[sent(person, phone, SENDER) for person, phone in people])
    publish_events(kafka_brokers, *[received(phone, SENDER, "STOP") for _, phone in people])

    eventually(lambda: all(senders(worker, person) == {SENDER} for person, _ in people[-5:]), timeout=60)
    missing = [person for person, _ in people if senders(worker, person) != {SENDER}]
    assert missing == []


# ---- order in the log is not order in the world ---------------------------------------------------


def test_a_send_published_after_the_stop_it_preceded_still_lists_the_sender(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, marker, phone = unique("person"), unique("marker"), unique_phone()
    send = sent(person, phone, SENDER)  # occurred first, but an upstream batch job publishes it late
    stop = received(phone, SENDER, "STOP")
    publish_events(
        kafka_brokers, stop, sent(marker, phone, OTHER_SENDER), received(phone, OTHER_SENDER, "STOP")
    )
    eventually(lambda: senders(worker, marker) == {OTHER_SENDER})  # the phone's STOPs are folded

    publish_events(kafka_brokers, send)

    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["sender"], entry["since"], entry["cause"], entry["keyword"]) == (
        SENDER,
        stop["occurred_at"],
        "keyword",
        "STOP",
    )
    assert latest_values(kafka_brokers, OPT_OUTS, {person})[person]["opt_outs"] == [entry]


def test_a_stop_right_behind_a_mis_keyed_send_still_lists_the_sender(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    # The send is keyed (and names the phone) in national form: the worker publishes it again under
    # the E.164 key, behind the STOP that was already there.
    person, phone = unique("person"), unique_phone()
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    send = sent(person, national, SENDER)
    stop = received(phone, SENDER, "STOP")
    publish(kafka_brokers, MESSAGING_EVENTS, [(national, send), (phone, stop)])

    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["sender"], entry["phone"], entry["since"]) == (SENDER, phone, stop["occurred_at"])


# ---- bounded state: the list read does not read the history; the history comes in pages ---------


def test_a_long_history_comes_in_pages_oldest_first_and_the_list_stays_small(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    changes = [
        (OptOutRecorded if i % 2 == 0 else OptOutCleared)(
            event_id=f"{person}-{i}",
            occurred_at=start + timedelta(minutes=i),
            person_id=person,
            sender=SENDER,
            phone=phone,
            source_event_id=f"src-{i}",
            **({"cause": "keyword", "keyword": "STOP"} if i % 2 == 0 else {"keyword": "START"}),
        )
        for i in range(251)
    ]
    publish(kafka_brokers, PERSON_EVENTS, [(person, json.loads(encode(change))) for change in changes])
    ids = [change.event_id for change in changes]

    def page(query: str = "") -> dict[str, Any]:
        status, body = http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs/history{query}")
        assert status == 200, body
        return dict(body)

    eventually(lambda: page()["total"] == 251)
    assert [c["event_id"] for c in page()["history"]] == ids
    newest = page("?limit=100")
    assert ([c["event_id"] for c in newest["history"]], newest["before"]) == (ids[151:], 151)
    older = page(f"?limit=100&before={newest['before']}")
    assert ([c["event_id"] for c in older["history"]], older["before"]) == (ids[51:151], 51)
    oldest = page("?limit=100&before=51")
    assert ([c["event_id"] for c in oldest["history"]], oldest["before"]) == (ids[:51], None)
    assert http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs/history?limit=0")[0] == 422
    assert http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs/history?before=-1")[0] == 422
    [entry] = opt_outs(worker, person)
    assert entry["since"] == "2026-01-01T04:10:00Z"  # the last recording, minute 250
