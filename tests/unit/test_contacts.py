"""Stage 1, per phone: who received from which sender here, and the person events each inbound keyword
or blocked send emits."""

from __future__ import annotations

import json

import pytest

from projections.contacts import (
    EMPTY_CONTACTS,
    Contacts,
    derived_event_id,
    resolve,
    resolve_all,
)
from projections.keywords import DEFAULT_KEYWORDS
from schemas.events import MessageBlocked, MessagingEvent, OptOutCleared, OptOutRecorded, PersonEvent
from tests.unit.conftest import (
    OTHER_PHONE,
    OTHER_SENDER,
    PHONE,
    SENDER,
    at,
    blocked,
    received,
    sent,
)


def fold(*events: MessagingEvent) -> tuple[Contacts, list[PersonEvent]]:
    """The contacts of one phone after `events`, and everything they emitted."""
    contacts, emitted = EMPTY_CONTACTS, list[PersonEvent]()
    for event in events:
        resolution = resolve(contacts, event)
        contacts = resolution.contacts
        emitted.extend(resolution.emitted)
    return contacts, emitted


def recipients(contacts: Contacts) -> dict[str, set[str]]:
    """sender -> the persons who received from it at the phone."""
    return {sender: set(persons) for sender, persons in contacts.recipients.items() if persons}


def test_a_sent_message_makes_the_person_a_recipient_of_that_sender() -> None:
    contacts, emitted = fold(sent("s1", "ann"), sent("s2", "bob"), sent("s3", "ann", sender=OTHER_SENDER))

    assert recipients(contacts) == {SENDER: {"ann", "bob"}, OTHER_SENDER: {"ann"}}
    assert emitted == []


def test_a_redelivered_sent_message_returns_the_same_contacts() -> None:
    contacts, _ = fold(sent("s1", "ann"), sent("s2", "bob"))

    assert resolve(contacts, sent("s1", "ann")).contacts is contacts


def test_a_second_sent_message_to_a_recipient_keeps_the_first_time() -> None:
    contacts, _ = fold(sent("s1", "ann"), sent("s2", "ann", minute=1))

    assert contacts.recipients == {SENDER: {"ann": "2025-03-01T09:00:00.000000Z"}}


def test_stop_emits_a_recorded_event_for_each_recipient_of_that_sender() -> None:
    contacts, _ = fold(sent("s1", "bob"), sent("s2", "ann"), sent("s3", "cat", sender=OTHER_SENDER))

    resolution = resolve(contacts, received("r1", " Stop ", minute=5, service="MG1"))

    assert resolution.emitted == (
        OptOutRecorded(
            event_id=derived_event_id("r1", "ann"),
            occurred_at=at(5),
            person_id="ann",
            sender=SENDER,
            phone=PHONE,
            cause="keyword",
            keyword="STOP",
            source_event_id="r1",
            messaging_service_sid="MG1",
        ),
        OptOutRecorded(
            event_id=derived_event_id("r1", "bob"),
            occurred_at=at(5),
            person_id="bob",
            sender=SENDER,
            phone=PHONE,
            cause="keyword",
            keyword="STOP",
            source_event_id="r1",
            messaging_service_sid="MG1",
        ),
    )


def test_stop_to_a_sender_nobody_here_received_from_emits_nothing() -> None:
    contacts, _ = fold(sent("s1", "ann", sender=OTHER_SENDER))

    assert resolve(contacts, received("r1", "STOP")).emitted == ()


def test_stop_before_the_first_sent_message_emits_nothing_later_either() -> None:
    _, emitted = fold(received("r1", "STOP"), sent("s1", "ann", minute=1))

    assert emitted == []


def test_opt_out_type_decides_over_the_body_and_the_body_is_the_keyword_text() -> None:
    contacts, _ = fold(sent("s1", "ann"))

    (event,) = resolve(contacts, received("r1", "arret", opt_out_type="STOP")).emitted

    assert isinstance(event, OptOutRecorded)
    assert event.keyword == "ARRET"


def test_opt_out_type_help_on_a_stop_body_emits_nothing() -> None:
    contacts, _ = fold(sent("s1", "ann"))

    resolution = resolve(contacts, received("r1", "STOP", opt_out_type="HELP"))

    assert resolution.emitted == ()
    assert resolution.contacts == contacts


@pytest.mark.parametrize("body", ["HELP", "info", "STOP PLEASE", "hello", ""])
def test_help_and_other_bodies_emit_nothing_and_change_nothing(body: str) -> None:
    contacts, _ = fold(sent("s1", "ann"), blocked("b1", "bob"))

    resolution = resolve(contacts, received("r1", body))

    assert resolution.emitted == ()
    assert resolution.contacts == contacts


def test_start_emits_cleared_for_recipients_and_for_persons_blocked_here() -> None:
    contacts, _ = fold(
        sent("s1", "ann"),
        blocked("b1", "bob"),
        blocked("b2", "cat", sender=OTHER_SENDER),
        sent("s2", "dan", sender=OTHER_SENDER),
    )

    resolution = resolve(contacts, received("r1", "start", minute=9))

    assert resolution.emitted == tuple(
        OptOutCleared(
            event_id=derived_event_id("r1", person),
            occurred_at=at(9),
            person_id=person,
            sender=SENDER,
            phone=PHONE,
            keyword="START",
            source_event_id="r1",
        )
        for person in ("ann", "bob")
    )


def test_a_blocked_send_emits_recorded_send_blocked_for_that_person_only() -> None:
    contacts, _ = fold(sent("s1", "ann"), sent("s2", "bob"))

    resolution = resolve(contacts, blocked("b1", "bob", minute=3, service="MG1"))

    assert resolution.emitted == (
        OptOutRecorded(
            event_id=derived_event_id("b1", "bob"),
            occurred_at=at(3),
            person_id="bob",
            sender=SENDER,
            phone=PHONE,
            cause="send_blocked",
            keyword=None,
            source_event_id="b1",
            messaging_service_sid="MG1",
        ),
    )


def test_a_blocked_send_does_not_make_the_person_a_recipient() -> None:
    contacts, _ = fold(blocked("b1", "ann"))

    assert recipients(contacts).get(SENDER, set()) == set()
    assert contacts.blocked == {SENDER: {"ann"}}
    assert resolve(contacts, received("r1", "STOP")).emitted == ()


def test_a_redelivered_keyword_emits_the_same_events_for_the_same_persons() -> None:
    contacts, first = fold(sent("s1", "ann"), received("r1", "STOP"))
    contacts, _ = fold(sent("s1", "ann"), received("r1", "STOP"), sent("s2", "bob", minute=1))

    again = resolve(contacts, received("r1", "STOP"))

    assert list(again.emitted) == first
    assert again.contacts is contacts


def test_a_redelivered_stop_that_found_nobody_still_finds_nobody() -> None:
    contacts, _ = fold(received("r1", "STOP"), sent("s1", "ann", minute=1))

    assert resolve(contacts, received("r1", "STOP")).emitted == ()


def test_a_redelivered_blocked_send_emits_the_same_event_and_changes_nothing() -> None:
    contacts, first = fold(blocked("b1", "ann"))

    again = resolve(contacts, blocked("b1", "ann"))

    assert list(again.emitted) == first
    assert again.contacts is contacts


def test_resolve_never_changes_the_contacts_it_is_given() -> None:
    contacts, _ = fold(sent("s1", "ann"))
    before = contacts.to_json()

    resolve(contacts, sent("s2", "bob"))
    resolve(contacts, blocked("b1", "cat"))
    resolve(contacts, received("r1", "STOP"))

    assert contacts.to_json() == before


def test_custom_keywords_are_read_when_given() -> None:
    contacts, _ = fold(sent("s1", "ann"))
    keywords = DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"])

    assert resolve(contacts, received("r1", "arret")).emitted == ()
    (event,) = resolve(contacts, received("r1", "arret"), keywords).emitted
    assert isinstance(event, OptOutRecorded)
    assert event.keyword == "ARRET"


def test_resolve_all_keeps_one_contacts_per_phone_and_emits_in_log_order() -> None:
    log: list[MessagingEvent] = [
        sent("s1", "ann"),
        sent("s2", "bob", phone=OTHER_PHONE),
        received("r1", "STOP", phone=OTHER_PHONE, minute=1),
        received("r2", "STOP", minute=2),
    ]

    by_phone, emitted = resolve_all(log)

    assert by_phone.keys() == {PHONE, OTHER_PHONE}
    assert recipients(by_phone[PHONE]) == {SENDER: {"ann"}}
    assert recipients(by_phone[OTHER_PHONE]) == {SENDER: {"bob"}}
    assert [(e.person_id, e.phone, e.source_event_id) for e in emitted] == [
        ("bob", OTHER_PHONE, "r1"),
        ("ann", PHONE, "r2"),
    ]


def test_contacts_round_trip_through_json() -> None:
    contacts, _ = fold(
        sent("s1", "bob"),
        sent("s2", "ann"),
        blocked("b1", "cat", sender=OTHER_SENDER),
        received("r1", "STOP"),
        received("r2", "START", sender=OTHER_SENDER),
    )

    stored = json.loads(json.dumps(contacts.to_json()))

    assert Contacts.from_json(stored) == contacts
    assert stored["applied"]["r1"][0] == ["ann", "bob"]
    assert stored["recipients"][SENDER] == {
        "bob": "2025-03-01T09:00:00.000000Z",
        "ann": "2025-03-01T09:00:00.000000Z",
    }


@pytest.mark.parametrize("stored", [None, {}])
def test_contacts_from_nothing_are_empty(stored: dict[str, object] | None) -> None:
    assert Contacts.from_json(stored) == EMPTY_CONTACTS
    assert EMPTY_CONTACTS.to_json() == {
        "recipients": {},
        "blocked": {},
        "applied": {},
        "standing": {},
    }


def test_contacts_stored_in_earlier_forms_still_load() -> None:
    stored = {
        "recipients": {SENDER: ["ann"]},
        "blocked": {},
        "applied": {"r1": ["ann"]},
        "recent_sends": [["2025-03-01T09:00:00.000000Z", "SMs1", "ann"]],
    }

    contacts = Contacts.from_json(stored)

    assert recipients(contacts) == {SENDER: {"ann"}}
    assert contacts.applied["r1"].persons == ("ann",)


def test_contacts_reloaded_from_json_still_apply_a_keyword_once() -> None:
    contacts, first = fold(sent("s1", "ann"), received("r1", "STOP"), sent("s2", "bob"))

    reloaded = Contacts.from_json(json.loads(json.dumps(contacts.to_json())))

    assert list(resolve(reloaded, received("r1", "STOP")).emitted) == first


def test_derived_event_ids_are_deterministic() -> None:
    assert derived_event_id("SM1", "ann") == derived_event_id("SM1", "ann")


def test_derived_event_ids_are_distinct_per_person_and_per_source() -> None:
    ids = {derived_event_id(source, person) for source in ("SM1", "SM2") for person in ("ann", "bob")}

    assert len(ids) == 4
    assert "SM1" not in ids


def test_derived_event_ids_do_not_collide_when_ids_run_together() -> None:
    assert derived_event_id("SM1", "0ann") != derived_event_id("SM10", "ann")


def test_persons_sharing_a_phone_get_distinct_event_ids_for_one_stop() -> None:
    contacts, _ = fold(sent("s1", "ann"), sent("s2", "bob"))

    emitted = resolve(contacts, received("r1", "STOP")).emitted

    assert len({event.event_id for event in emitted}) == 2


# ---- a 21610 from a status callback that did not name the person ---------------------------------


def blocked_sid(event_id: str, message_sid: str, *, sender: str = SENDER, minute: int = 0) -> MessageBlocked:
    """A `message.blocked` as the status callback publishes it without a `person_id`."""
    return MessageBlocked(
        event_id=event_id,
        occurred_at=at(minute),
        person_id=None,
        phone=PHONE,
        sender=sender,
        message_sid=message_sid,
    )


def test_a_blocked_send_without_a_person_goes_to_everyone_texted_from_that_sender_at_the_phone() -> None:
    # Twilio blocks a phone and a sender: each person texted from it there is blocked alike.
    contacts, _ = fold(sent("s1", "ann"), sent("s2", "bob"), sent("s3", "cat", sender=OTHER_SENDER))

    resolution = resolve(contacts, blocked_sid("SMs2:failed", "SMs2", minute=3))

    assert [(e.person_id, e.sender, e.cause) for e in resolution.emitted] == [
        ("ann", SENDER, "send_blocked"),
        ("bob", SENDER, "send_blocked"),
    ]
    assert [e.event_id for e in resolution.emitted] == [
        derived_event_id("SMs2:failed", "ann"),
        derived_event_id("SMs2:failed", "bob"),
    ]
    assert resolution.contacts.blocked == {SENDER: {"ann", "bob"}}
    assert resolution.contacts.applied["SMs2:failed"].persons == ("ann", "bob")


def test_a_blocked_send_without_a_person_names_nobody_first_texted_after_it() -> None:
    contacts, _ = fold(sent("s1", "ann", minute=1), sent("s2", "bob", minute=9))

    (event,) = resolve(contacts, blocked_sid("SMs1:failed", "SMs1", minute=5)).emitted

    assert event.person_id == "ann"


def test_a_redelivered_blocked_send_without_a_person_emits_the_same_event() -> None:
    contacts, first = fold(sent("s1", "ann"), blocked_sid("SMs1:failed", "SMs1"))

    again = resolve(contacts, blocked_sid("SMs1:failed", "SMs1"))

    assert list(again.emitted) == first
    assert again.contacts is contacts


def test_a_blocked_send_without_a_person_at_a_phone_nobody_was_texted_at_changes_nothing() -> None:
    contacts, _ = fold(sent("s1", "ann", sender=OTHER_SENDER))

    resolution = resolve(contacts, blocked_sid("SMother:failed", "SMother"))

    assert resolution.emitted == ()
    assert resolution.contacts is contacts


def test_an_unresolved_blocked_send_redelivered_after_its_sent_message_is_resolved() -> None:
    early = blocked_sid("SMs1:undelivered", "SMs1")
    contacts, emitted = fold(early, sent("s1", "ann"))
    assert emitted == []

    (event,) = resolve(contacts, early).emitted

    assert event.person_id == "ann"


def test_a_send_to_a_person_already_texted_from_that_sender_changes_nothing() -> None:
    contacts, _ = fold(sent("s1", "ann", minute=1))

    for later in (sent("s2", "ann", minute=2), sent("s3", "ann", minute=90), sent("s1", "ann", minute=1)):
        assert resolve(contacts, later).contacts is contacts  # nothing to write


def test_a_blocked_send_that_names_its_person_does_not_need_the_sid() -> None:
    contacts, _ = fold(sent("s1", "ann"))

    (event,) = resolve(contacts, blocked("b1", "cat")).emitted

    assert event.person_id == "cat"
