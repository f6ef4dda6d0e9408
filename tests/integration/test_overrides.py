"""Operators remove entries through the API: a compensating event in the person log, read back at once,
audited with actor and reason; bad requests change nothing."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from streams.engine.topics import PERSON_EVENTS
from tests.factories import blocked, now, received, sent, unique, unique_phone
from tests.integration.kafka import latest_values
from tests.integration.processes import ServiceProcess, http_json
from tests.integration.test_pipeline import (
    OTHER_SENDER,
    SENDER,
    eventually,
    history,
    opt_outs,
    publish_events,
    senders,
)

pytestmark = pytest.mark.integration
WHO = {"actor": "ops@example.com", "reason": "opted in again by phone, ticket 4711"}


def remove(worker: ServiceProcess, person: str, sender: str, body: Any = WHO) -> tuple[int, Any]:
    path = urllib.parse.quote(sender, safe="")
    return http_json("DELETE", f"{worker.url}/people/{person}/sms-opt-outs/{path}", body)


def opted_out(worker: ServiceProcess, brokers: str, *senders_: str) -> tuple[str, str]:
    person, phone = unique("person"), unique_phone()
    events = [sent(person, phone, s) for s in senders_] + [received(phone, s, "STOP") for s in senders_]
    publish_events(brokers, *events)
    eventually(lambda: senders(worker, person) == set(senders_))
    return person, phone


def test_an_override_removes_the_sender_at_once_and_the_history_says_who_and_why(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER, OTHER_SENDER)

    status, event = remove(worker, person, SENDER)

    assert status == 200, event
    assert (event["type"], event["sender"], event["phone"], event["list_updated"]) == (
        "opt_out.overridden",
        SENDER,
        phone,
        True,
    )
    assert senders(worker, person) == {OTHER_SENDER}  # read right after the answer: no waiting
    last = history(worker, person)[-1]
    assert (last["type"], last["actor"], last["reason"], last["event_id"]) == (
        "opt_out.overridden",
        WHO["actor"],
        WHO["reason"],
        event["event_id"],
    )


def test_a_later_blocked_send_brings_an_overridden_sender_back(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER)
    assert remove(worker, person, SENDER)[0] == 200

    publish_events(kafka_brokers, blocked(person, phone, SENDER, occurred_at=now()))

    eventually(lambda: senders(worker, person) == {SENDER})
    types = [change["type"] for change in history(worker, person)]
    assert types == ["opt_out.recorded", "opt_out.overridden", "opt_out.recorded"]
    assert history(worker, person)[-1]["cause"] == "send_blocked"


def test_a_blocked_send_from_before_the_override_that_arrives_after_it_changes_nothing(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER)
    earlier = blocked(person, phone, SENDER)  # occurred before the override below, published after
    assert remove(worker, person, SENDER)[0] == 200

    # Then a STOP to another sender from the same phone: folded after it, into the same list.
    publish_events(
        kafka_brokers, earlier, sent(person, phone, OTHER_SENDER), received(phone, OTHER_SENDER, "STOP")
    )

    eventually(lambda: senders(worker, person) == {OTHER_SENDER})
    assert [change["sender"] for change in history(worker, person)] == [SENDER, SENDER, OTHER_SENDER]


def test_removing_what_is_not_on_the_list_is_404_and_appends_nothing(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)

    status, body = remove(worker, person, OTHER_SENDER)

    assert status == 404
    assert OTHER_SENDER in body["error"] and person in body["error"]
    nobody = unique("nobody")
    assert remove(worker, nobody, SENDER)[0] == 404
    appended = latest_values(kafka_brokers, PERSON_EVENTS, {person, nobody})
    assert appended[person]["type"] == "opt_out.recorded"  # the STOP's event is still the last
    assert nobody not in appended


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "no actor"}, "actor"),
        ({"actor": "ops"}, "reason"),
        ({"actor": "  ", "reason": "blank actor"}, "actor"),
        ({"actor": "ops", "reason": "x" * 1001}, "reason"),
        ({"actor": "ops", "reason": "why", "force": True}, "force"),
        ({"actor": 7, "reason": "why"}, "actor"),
    ],
)
def test_a_bad_override_body_is_422_and_changes_nothing(
    worker: ServiceProcess, kafka_brokers: str, body: dict[str, Any], field: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)

    status, answer = remove(worker, person, SENDER, body)

    assert status == 422, answer
    assert field in {problem["field"] for problem in answer["problems"]}
    assert senders(worker, person) == {SENDER}
    assert len(history(worker, person)) == 1


def test_an_override_body_that_is_not_json_is_422(worker: ServiceProcess) -> None:
    status, answer = http_json("DELETE", f"{worker.url}/people/p/sms-opt-outs/{SENDER}", body=None)
    assert status == 422
    assert "actor" in answer["error"]


def test_the_sender_in_the_path_may_be_written_as_a_national_number(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)  # +14155550100
    assert remove(worker, person, "(415) 555-0100")[0] == 200
    assert senders(worker, person) == set()


def test_a_sender_listed_for_two_phones_needs_the_phone_named(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, home, work = unique("person"), unique_phone(), unique_phone()
    publish_events(kafka_brokers, sent(person, home, SENDER), received(home, SENDER, "STOP"))
    publish_events(kafka_brokers, sent(person, work, SENDER), received(work, SENDER, "STOP"))
    eventually(lambda: len(history(worker, person)) == 2)

    status, answer = remove(worker, person, SENDER)
    assert status == 409
    assert sorted(answer["phones"]) == sorted([home, work])

    status, event = remove(worker, person, SENDER, {**WHO, "phone": work})
    assert (status, event["phone"]) == (200, work)
    assert [entry["phone"] for entry in opt_outs(worker, person)] == [home]
