"""The rules of docs/rules.md as stories, each told through both stages: messaging events resolved per
phone, the person events they emit (and operators' overrides) projected per person."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve
from projections.opt_outs import PersonOptOuts, project
from schemas.events import MessagingEvent, OptOutOverridden, PersonEvent
from tests.unit.conftest import (
    OTHER_PHONE,
    OTHER_SENDER,
    PHONE,
    SENDER,
    at,
    blocked,
    overridden,
    received,
    sent,
)

People = dict[str, PersonOptOuts]


def run(*log: MessagingEvent | OptOutOverridden) -> People:
    """Both stages as the agents run them, in log order: a messaging event is resolved on its phone's
    contacts and what it emits is projected; an operator's override goes straight to the person."""
    contacts: dict[str, Contacts] = {}
    people: People = {}
    for event in log:
        person_events: Iterable[PersonEvent]
        if isinstance(event, OptOutOverridden):
            person_events = (event,)
        else:
            resolution = resolve(contacts.get(event.phone, EMPTY_CONTACTS), event)
            contacts[event.phone] = resolution.contacts
            person_events = resolution.emitted
        for person_event in person_events:
            state = people.get(person_event.person_id, PersonOptOuts(person_event.person_id))
            people[person_event.person_id] = project(state, person_event)  # type: ignore[arg-type]
    return people


def listed(people: People, person_id: str) -> set[tuple[str, str]]:
    """The (sender, phone) pairs on a person's list."""
    state = people.get(person_id)
    return set(state.entries) if state else set()


def history(people: People, person_id: str) -> list[str]:
    state = people.get(person_id)
    return [event.type for event in state.history] if state else []


# ---- a sender is listed only after SMS from it and then an opt-out keyword to it -------------------


def test_receiving_sms_alone_lists_nothing() -> None:
    people = run(sent("s1", "ann"), sent("s2", "ann", sender=OTHER_SENDER))

    assert listed(people, "ann") == set()


def test_stop_after_a_sent_message_lists_the_sender() -> None:
    people = run(sent("s1", "ann", minute=1), received("r1", "STOP", minute=2))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.keyword, entry.since) == ("keyword", "STOP", at(2))


@pytest.mark.parametrize(
    "word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OptOut"]
)
def test_every_default_opt_out_keyword_lists_the_sender(word: str) -> None:
    people = run(sent("s1", "ann"), received("r1", word))

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_stop_to_a_sender_never_received_from_changes_nothing() -> None:
    people = run(sent("s1", "ann", sender=OTHER_SENDER), received("r1", "STOP", sender=SENDER))

    assert listed(people, "ann") == set()
    assert history(people, "ann") == []


def test_stop_before_the_first_sent_message_changes_nothing() -> None:
    people = run(received("r1", "STOP", minute=1), sent("s1", "ann", minute=2))

    assert listed(people, "ann") == set()


def test_stop_lists_only_the_sender_it_was_sent_to() -> None:
    people = run(sent("s1", "ann"), sent("s2", "ann", sender=OTHER_SENDER), received("r1", "STOP"))

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_stop_from_a_phone_the_person_was_not_sent_to_changes_nothing() -> None:
    people = run(sent("s1", "ann", phone=PHONE), received("r1", "STOP", phone=OTHER_PHONE))

    assert listed(people, "ann") == set()


def test_a_person_with_two_phones_is_listed_once_per_phone_that_opted_out() -> None:
    people = run(
        sent("s1", "ann", phone=PHONE),
        sent("s2", "ann", phone=OTHER_PHONE),
        received("r1", "STOP", phone=OTHER_PHONE),
    )

    assert listed(people, "ann") == {(SENDER, OTHER_PHONE)}


# ---- opt-in keywords -------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["START", "yes", " Unstop "])
def test_start_clears_the_sender(word: str) -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP", minute=1), received("r2", word, minute=2))

    assert listed(people, "ann") == set()
    assert history(people, "ann") == ["opt_out.recorded", "opt_out.cleared"]


def test_start_clears_only_that_sender() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "ann", sender=OTHER_SENDER),
        received("r1", "STOP"),
        received("r2", "STOP", sender=OTHER_SENDER),
        received("r3", "START", sender=OTHER_SENDER),
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_start_clears_what_a_21610_put_there() -> None:
    people = run(blocked("b1", "ann", minute=1), received("r1", "START", minute=2))

    assert listed(people, "ann") == set()
    assert history(people, "ann") == ["opt_out.recorded", "opt_out.cleared"]


def test_start_clears_the_sender_for_everyone_listed_at_that_phone() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP"),
        blocked("b1", "bob"),
        blocked("b2", "cat", phone=OTHER_PHONE),
        received("r2", "START"),
    )

    assert listed(people, "ann") == set()
    assert listed(people, "bob") == set()
    assert listed(people, "cat") == {(SENDER, OTHER_PHONE)}


def test_opt_in_from_another_phone_does_not_clear() -> None:
    people = run(
        sent("s1", "ann", phone=PHONE),
        sent("s2", "ann", phone=OTHER_PHONE),
        received("r1", "STOP", phone=PHONE),
        received("r2", "START", phone=OTHER_PHONE),
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_the_list_never_shows_a_sender_the_person_opted_into() -> None:
    people = run(sent("s1", "ann"), received("r1", "START"), received("r2", "YES", sender=OTHER_SENDER))

    assert listed(people, "ann") == set()
    assert history(people, "ann") == []


# ---- shared phones -----------------------------------------------------------------------------------


def test_shared_phone_stop_counts_for_each_recipient_and_no_one_else() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "bob"),
        sent("s3", "cat", sender=OTHER_SENDER),  # same phone, another sender
        sent("s4", "dan", phone=OTHER_PHONE),  # same sender, another phone
        received("r1", "STOP"),
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert listed(people, "bob") == {(SENDER, PHONE)}
    assert listed(people, "cat") == set()
    assert listed(people, "dan") == set()


def test_shared_phone_a_later_recipient_is_not_listed_by_an_earlier_stop() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP", minute=1), sent("s2", "bob", minute=2))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert listed(people, "bob") == set()


# ---- send blocked (21610) ------------------------------------------------------------------------------


def test_a_21610_lists_the_sender_without_any_sent_message() -> None:
    people = run(blocked("b1", "ann", minute=4))

    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.keyword, entry.since) == ("send_blocked", None, at(4))


def test_a_21610_lists_the_sender_whatever_the_list_said_before() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        received("r2", "START", minute=2),
        blocked("b1", "ann", minute=3),
    )

    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.since) == ("send_blocked", at(3))


def test_a_21610_on_a_listed_sender_keeps_the_entry_as_it_was() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP", minute=1), blocked("b1", "ann", minute=3))

    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.since) == ("keyword", at(1))


def test_a_21610_counts_only_for_the_person_the_send_was_for() -> None:
    people = run(sent("s1", "ann"), sent("s2", "bob"), blocked("b1", "bob"))

    assert listed(people, "ann") == set()
    assert listed(people, "bob") == {(SENDER, PHONE)}


def test_blocked_does_not_make_the_person_a_recipient() -> None:
    people = run(blocked("b1", "ann"), received("r1", "START"), received("r2", "STOP"))

    assert listed(people, "ann") == set()


def test_sent_after_an_opt_out_changes_nothing() -> None:
    before = run(sent("s1", "ann"), received("r1", "STOP", minute=1))
    after = run(sent("s1", "ann"), received("r1", "STOP", minute=1), sent("s2", "ann", minute=5))

    assert after["ann"].entries == before["ann"].entries
    assert after["ann"].history == before["ann"].history
    assert after["ann"].updated_at == at(1)


@pytest.mark.parametrize("body", ["HELP", "info", "STOP PLEASE", "hello", "Stop.", ""])
def test_help_and_other_bodies_change_nothing(body: str) -> None:
    unlisted = run(sent("s1", "ann"), received("r1", body))
    listed_before = run(sent("s1", "ann"), received("r1", "STOP"))
    listed_after = run(sent("s1", "ann"), received("r1", "STOP"), received("r2", body))

    assert listed(unlisted, "ann") == set()
    assert history(unlisted, "ann") == []
    assert listed_after["ann"].entries == listed_before["ann"].entries
    assert listed_after["ann"].history == listed_before["ann"].history


def test_opt_out_type_stop_lists_the_sender_whatever_the_body() -> None:
    people = run(sent("s1", "ann"), received("r1", "Arret", opt_out_type="STOP"))

    assert people["ann"].entries[(SENDER, PHONE)].keyword == "ARRET"


def test_opt_out_type_help_on_a_stop_body_changes_nothing() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP", opt_out_type="HELP"))

    assert listed(people, "ann") == set()


def test_opt_out_type_start_clears_whatever_the_body() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP"), received("r2", "Reprendre", opt_out_type="START"))

    assert listed(people, "ann") == set()


# ---- overrides -------------------------------------------------------------------------------------------


def test_override_removes_the_sender_from_the_list() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP"), overridden("o1", "ann"))

    assert listed(people, "ann") == set()


def test_override_leaves_other_senders_and_persons_alone() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "bob"),
        sent("s3", "ann", sender=OTHER_SENDER),
        received("r1", "STOP"),
        received("r2", "STOP", sender=OTHER_SENDER),
        overridden("o1", "ann", sender=SENDER),
    )

    assert listed(people, "ann") == {(OTHER_SENDER, PHONE)}
    assert listed(people, "bob") == {(SENDER, PHONE)}


def test_override_removes_and_a_later_21610_brings_it_back() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        overridden("o1", "ann", minute=2),
        blocked("b1", "ann", minute=3),
    )

    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.since) == ("send_blocked", at(3))


def test_a_21610_after_an_override_that_arrives_before_it_keeps_the_entry() -> None:
    # In time: listed at 1, removed at 2, blocked again at 3. The override reaches the person log
    # last (an operator's clock behind Twilio's, a late producer): it is older than the 21610.
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        blocked("b1", "ann", minute=3),
        overridden("o1", "ann", minute=2),
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert people["ann"].entries[(SENDER, PHONE)].since == at(1)  # the first recording to arrive
    assert history(people, "ann") == ["opt_out.recorded"]


def test_a_removal_after_every_recording_of_the_entry_removes_it_whatever_their_order() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        blocked("b1", "ann", minute=3),
        overridden("o1", "ann", minute=4),
    )

    assert listed(people, "ann") == set()


def test_after_an_override_a_new_stop_lists_the_sender_again() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        overridden("o1", "ann", minute=2),
        received("r2", "stop", minute=3),
    )

    assert people["ann"].entries[(SENDER, PHONE)].since == at(3)


def test_override_of_what_is_not_listed_changes_nothing() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP"), overridden("o1", "ann", sender=OTHER_SENDER))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert history(people, "ann") == ["opt_out.recorded"]


# ---- once per event id ----------------------------------------------------------------------------------


STORIES_WITH_A_REDELIVERY = {
    "stop-after-start": (
        [sent("s1", "ann"), received("r1", "STOP"), received("r2", "START"), received("r1", "STOP")],
        set(),
    ),
    "21610-after-start": ([blocked("b1", "ann"), received("r1", "START"), blocked("b1", "ann")], set()),
    "21610-after-override": ([blocked("b1", "ann"), overridden("o1", "ann"), blocked("b1", "ann")], set()),
    "start-after-a-new-stop": (
        [
            sent("s1", "ann"),
            received("r1", "STOP", minute=1),
            received("r2", "START", minute=2),
            received("r3", "STOP", minute=3),
            received("r2", "START", minute=2),
        ],
        {(SENDER, PHONE)},
    ),
    "override-after-a-new-21610": (
        [
            blocked("b1", "ann", minute=1),
            overridden("o1", "ann", minute=2),
            blocked("b2", "ann", minute=3),
            overridden("o1", "ann", minute=2),
        ],
        {(SENDER, PHONE)},
    ),
    "stop-that-found-nobody-after-a-sent": (
        [received("r1", "STOP"), sent("s1", "ann", minute=1), received("r1", "STOP")],
        set(),
    ),
    "stop-after-override": (
        [sent("s1", "ann"), received("r1", "STOP"), overridden("o1", "ann"), received("r1", "STOP")],
        set(),
    ),
}


@pytest.mark.parametrize(
    ("log", "expected"), STORIES_WITH_A_REDELIVERY.values(), ids=STORIES_WITH_A_REDELIVERY
)
def test_every_rule_is_applied_once_per_event_id(
    log: list[MessagingEvent | OptOutOverridden], expected: set[tuple[str, str]]
) -> None:
    people = run(*log)

    assert listed(people, "ann") == expected


def test_a_whole_story_delivered_twice_gives_the_same_lists_and_history() -> None:
    story: list[MessagingEvent | OptOutOverridden] = [
        sent("s1", "ann"),
        sent("s2", "bob"),
        received("r1", "STOP", minute=1),
        blocked("b1", "cat", minute=2),
        received("r2", "START", minute=3),
        blocked("b2", "ann", minute=4),
        overridden("o1", "ann", minute=5),
    ]

    once, twice = run(*story), run(*story, *story)

    assert {p: s.as_list() for p, s in twice.items()} == {p: s.as_list() for p, s in once.items()}
    assert {p: s.history for p, s in twice.items()} == {p: s.history for p, s in once.items()}


# ---- what operators and consumers get ------------------------------------------------------------------


def test_history_records_every_change_with_cause_actor_reason_and_source_event() -> None:
    people = run(
        sent("s1", "ann"),
        received("r1", "STOP", minute=1),
        received("r2", "HELP", minute=2),  # no change: not in the history
        received("r3", "START", minute=3),
        blocked("b1", "ann", minute=4),
        sent("s2", "ann", minute=5),  # no change
        overridden("o1", "ann", minute=6, actor="ops@example.com", reason="opted in by hand"),
        overridden("o2", "ann", minute=7),  # nothing left to remove: no change
    )

    assert [
        (
            e.type,
            e.cause,
            e.source_event_id,
            e.occurred_at,
            getattr(e, "actor", None),
            getattr(e, "reason", None),
        )
        for e in people["ann"].history
    ] == [
        ("opt_out.recorded", "keyword", "r1", at(1), None, None),
        ("opt_out.cleared", "opt_in_keyword", "r3", at(3), None, None),
        ("opt_out.recorded", "send_blocked", "b1", at(4), None, None),
        ("opt_out.overridden", "override", "o1", at(6), "ops@example.com", "opted in by hand"),
    ]
    assert all((e.person_id, e.sender, e.phone) == ("ann", SENDER, PHONE) for e in people["ann"].history)


def test_the_list_snapshot_is_sorted_with_the_time_and_keyword_of_each_opt_out() -> None:
    people = run(
        sent("s1", "ann", sender=SENDER),
        sent("s2", "ann", sender="MyBrand", service="MG1"),
        blocked("b1", "ann", sender=OTHER_SENDER, minute=3),
        received("r1", " stop ", sender=SENDER, minute=10),
        received("r2", "Cancel", sender="MyBrand", minute=7, service="MG1"),
    )

    snapshot = people["ann"].as_list()

    assert snapshot.person_id == "ann"
    assert [
        (e.sender, e.phone, e.since, e.cause, e.keyword, e.messaging_service_sid) for e in snapshot.opt_outs
    ] == [
        (OTHER_SENDER, PHONE, at(3), "send_blocked", None, None),
        ("MyBrand", PHONE, at(7), "keyword", "CANCEL", "MG1"),
        (SENDER, PHONE, at(10), "keyword", "STOP", None),
    ]


def test_the_entry_keeps_the_messaging_service_of_a_blocked_send() -> None:
    people = run(blocked("b1", "ann", service="MG1"))

    assert people["ann"].entries[(SENDER, PHONE)].messaging_service_sid == "MG1"


# ---- order in the log is not order in the world: "before" is occurred_at --------------------------


def test_a_send_that_occurred_before_a_stop_but_arrives_after_it_lists_the_sender() -> None:
    people = run(received("r1", "stop", minute=5), sent("s1", "ann", minute=1))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    entry = people["ann"].entries[(SENDER, PHONE)]
    assert (entry.cause, entry.keyword, entry.since) == ("keyword", "STOP", at(5))


def test_a_late_send_records_the_same_event_the_stop_would_have_recorded_had_the_send_come_first() -> None:
    in_order = run(sent("s1", "ann", minute=1), received("r1", "STOP", minute=5))
    late = run(received("r1", "STOP", minute=5), sent("s1", "ann", minute=1))

    assert late["ann"].history == in_order["ann"].history


def test_a_send_that_occurred_after_the_stop_changes_nothing_whenever_it_arrives() -> None:
    people = run(received("r1", "STOP", minute=5), sent("s1", "ann", minute=6))

    assert listed(people, "ann") == set()


def test_a_late_send_before_a_stop_that_a_start_undid_changes_nothing() -> None:
    people = run(
        received("r1", "STOP", minute=5), received("r2", "START", minute=7), sent("s1", "ann", minute=1)
    )

    assert listed(people, "ann") == set()


def test_a_late_send_records_the_latest_stop_only_once() -> None:
    people = run(
        received("r1", "STOP", minute=5),
        sent("s1", "ann", minute=1),
        sent("s2", "ann", minute=2),
        sent("s1", "ann", minute=1),
    )

    assert history(people, "ann") == ["opt_out.recorded"]


def test_a_late_send_does_not_bring_back_an_entry_an_operator_removed() -> None:
    people = run(
        received("r1", "STOP", minute=5),
        sent("s1", "ann", minute=1),
        overridden("o1", "ann", minute=6),
        sent("s2", "ann", minute=2),
    )

    assert listed(people, "ann") == set()


def test_a_late_stop_older_than_a_standing_start_changes_nothing() -> None:
    people = run(sent("s1", "ann"), received("r2", "START", minute=7), received("r1", "STOP", minute=5))

    assert listed(people, "ann") == set()


def test_a_late_start_older_than_a_standing_stop_changes_nothing() -> None:
    people = run(sent("s1", "ann"), received("r1", "STOP", minute=5), received("r2", "START", minute=3))

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_a_stop_counts_only_for_persons_first_texted_at_or_before_it() -> None:
    # bob's send was folded first, but it occurred after the STOP: Twilio would have blocked it.
    people = run(sent("s2", "bob", minute=9), sent("s1", "ann", minute=1), received("r1", "STOP", minute=5))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert listed(people, "bob") == set()


def test_a_send_and_a_stop_at_the_same_moment_count_as_send_then_stop_in_either_order() -> None:
    assert listed(run(received("r1", "STOP", minute=1), sent("s1", "ann", minute=1)), "ann") == {
        (SENDER, PHONE)
    }
    assert listed(run(sent("s1", "ann", minute=1), received("r1", "STOP", minute=1)), "ann") == {
        (SENDER, PHONE)
    }


def test_a_redelivered_webhook_stamped_later_re_emits_the_first_events_to_the_byte() -> None:
    contacts = resolve(EMPTY_CONTACTS, sent("s1", "ann")).contacts
    first = resolve(contacts, received("r1", "STOP", minute=1))

    # Twilio delivered the same MessageSid again: the webhook stamps its own receipt time.
    again = resolve(first.contacts, received("r1", "stop ", minute=30, service="MG1"))

    assert [e.model_dump_json() for e in again.emitted] == [e.model_dump_json() for e in first.emitted]
    assert again.contacts is first.contacts
