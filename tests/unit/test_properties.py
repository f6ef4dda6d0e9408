"""Properties of the two folds over generated logs: a replay equals the live tables, a redelivery changes
nothing, persons do not leak into each other's lists, and the lists follow docs/rules.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve, resolve_all
from projections.opt_outs import PersonOptOuts, project, project_log
from schemas.events import (
    AnyPersonEvent,
    MessageBlocked,
    MessageReceived,
    MessageSent,
    MessagingEvent,
    OptOutOverridden,
    PersonEvent,
)
from tests.unit.conftest import blocked, overridden, received, sent

Log = list[MessagingEvent | OptOutOverridden]
T = TypeVar("T")

PROPERTIES = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# A few persons on a few phones, two of them shared: bob shares one phone with ann and one with cat.
PHONES_OF = {
    "ann": ("+14155550101",),
    "bob": ("+14155550101", "+14155550102"),
    "cat": ("+14155550102",),
    "dan": ("+442079460018",),
}
PERSONS = tuple(PHONES_OF)
PHONES = tuple(sorted({phone for phones in PHONES_OF.values() for phone in phones}))
SENDERS = ("+14155550100", "12345", "MyBrand")
BODIES = (
    "STOP",
    " stop ",
    "Cancel",
    "revoke",
    "START",
    "yes",
    "UNSTOP",
    "HELP",
    "info",
    "STOP PLEASE",
    "hi",
    "",
)
OPT_OUT_TYPES = (None, None, None, None, "STOP", "START", "HELP")

# docs/rules.md's keywords, read independently of projections.keywords.
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN_WORDS = {"START", "YES", "UNSTOP"}

person_at_phone = st.sampled_from(PERSONS).flatmap(
    lambda person: st.tuples(st.just(person), st.sampled_from(PHONES_OF[person]))
)
senders = st.sampled_from(SENDERS)
steps = st.one_of(
    st.tuples(st.just("sent"), person_at_phone, senders),
    st.tuples(st.just("sent"), person_at_phone, senders),  # sends are the commonest event
    st.tuples(
        st.just("received"),
        st.sampled_from(PHONES),
        senders,
        st.sampled_from(BODIES),
        st.sampled_from(OPT_OUT_TYPES),
    ),
    st.tuples(st.just("blocked"), person_at_phone, senders),
    st.tuples(st.just("override"), person_at_phone, senders),
)


def build(index: int, step: tuple[Any, ...]) -> MessagingEvent | OptOutOverridden:
    kind, event_id = step[0], f"{step[0]}-{index}"
    if kind == "received":
        _, phone, sender, body, opt_out_type = step
        return received(event_id, body, phone=phone, sender=sender, minute=index, opt_out_type=opt_out_type)
    _, (person, phone), sender = step
    if kind == "sent":
        return sent(event_id, person, phone=phone, sender=sender, minute=index)
    if kind == "blocked":
        return blocked(event_id, person, phone=phone, sender=sender, minute=index)
    return overridden(event_id, person, phone=phone, sender=sender, minute=index)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 0) -> Log:
    """A log in arrival order, with a few redeliveries of earlier events (at-least-once delivery)."""
    log: Log = [
        build(i, step) for i, step in enumerate(draw(st.lists(steps, min_size=min_size, max_size=40)))
    ]
    for _ in range(draw(st.integers(0, 3)) if log else 0):
        log = repeated_later(log, draw)
    return log


def repeated_later(log: Sequence[T], draw: Callable[[st.SearchStrategy[int]], int]) -> list[T]:
    """`log` with a copy of one of its events inserted somewhere after it."""
    original = draw(st.integers(0, len(log) - 1))
    position = draw(st.integers(original + 1, len(log)))
    return [*log[:position], log[original], *log[position:]]


def messaging(log: Iterable[MessagingEvent | OptOutOverridden]) -> list[MessagingEvent]:
    return [event for event in log if not isinstance(event, OptOutOverridden)]


def person_log(log: Iterable[MessagingEvent | OptOutOverridden]) -> list[AnyPersonEvent]:
    """The person log the agents write: each messaging event resolved on its phone's contacts, each
    override appended as it comes."""
    contacts: dict[str, Contacts] = {}
    out: list[AnyPersonEvent] = []
    for event in log:
        if isinstance(event, OptOutOverridden):
            out.append(event)
            continue
        resolution = resolve(contacts.get(event.phone, EMPTY_CONTACTS), event)
        contacts[event.phone] = resolution.contacts
        out.extend(resolution.emitted)  # type: ignore[arg-type]
    return out


def stored(value: dict[str, Any]) -> dict[str, Any]:
    """A table value written as JSON and read back."""
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


@PROPERTIES
@given(logs())
def test_folding_a_log_in_one_go_equals_folding_it_event_by_event_through_storage(log: Log) -> None:
    by_phone, emitted = resolve_all(messaging(log))
    people = project_log(person_log(log))

    contacts_table: dict[str, dict[str, Any]] = {}
    people_table: dict[str, dict[str, Any]] = {}
    emitted_live: list[PersonEvent] = []
    for event in log:
        if isinstance(event, OptOutOverridden):
            person_events: Sequence[Any] = (event,)
        else:
            resolution = resolve(Contacts.from_json(contacts_table.get(event.phone)), event)
            contacts_table[event.phone] = stored(resolution.contacts.to_json())
            person_events = resolution.emitted
            emitted_live.extend(resolution.emitted)
        for person_event in person_events:
            state = PersonOptOuts.from_json(person_event.person_id, people_table.get(person_event.person_id))
            people_table[person_event.person_id] = stored(project(state, person_event).to_json())

    assert emitted_live == emitted
    assert {phone: Contacts.from_json(value) for phone, value in contacts_table.items()} == by_phone
    assert {
        person: stored_part(PersonOptOuts.from_json(person, value)) for person, value in people_table.items()
    } == {person: stored_part(state) for person, state in people.items()}


def stored_part(state: PersonOptOuts) -> tuple[Any, ...]:
    """What the stored state holds: all but the history, which is kept apart (its length is kept)."""
    return (state.person_id, state.entries, state.removed, state.updated_at, state.history_length)


@PROPERTIES
@given(logs(min_size=1), st.data())
def test_a_messaging_event_or_override_repeated_later_changes_nothing(log: Log, data: st.DataObject) -> None:
    repeated = repeated_later(log, data.draw)

    assert resolve_all(messaging(repeated))[0] == resolve_all(messaging(log))[0]
    assert project_log(person_log(repeated)) == project_log(person_log(log))


@PROPERTIES
@given(logs(), st.data())
def test_a_person_event_repeated_later_changes_nothing(log: Log, data: st.DataObject) -> None:
    events = person_log(log)
    if not events:
        return

    assert project_log(repeated_later(events, data.draw)) == project_log(events)


@PROPERTIES
@given(logs(), st.sampled_from(PERSONS))
def test_one_persons_events_never_change_another_persons_list(log: Log, person: str) -> None:
    everyone = project_log(person_log(log))
    others = project_log([event for event in person_log(log) if event.person_id != person])

    assert person not in others
    assert others == {p: state for p, state in everyone.items() if p != person}


@PROPERTIES
@given(logs(), st.sampled_from(PERSONS))
def test_dropping_a_persons_sends_blocks_and_overrides_leaves_the_others_lists_alone(
    log: Log, person: str
) -> None:
    everyone = project_log(person_log(log))
    without = [event for event in log if getattr(event, "person_id", None) != person]

    others = project_log(person_log(without))

    assert {p: s.as_list() for p, s in others.items()} == {
        p: s.as_list() for p, s in everyone.items() if p != person
    }


def intent_of(event: MessageReceived) -> str | None:
    """docs/rules.md's reading of a body: OptOutType when present, else the whole trimmed body."""
    if event.opt_out_type:
        return event.opt_out_type
    word = event.body.strip().upper()
    return "STOP" if word in OPT_OUT_WORDS else "START" if word in OPT_IN_WORDS else None


def expected_lists(log: Iterable[MessagingEvent | OptOutOverridden]) -> dict[str, dict[Any, Any]]:
    """docs/rules.md's rules applied straight to the log: person -> (sender, phone) -> (since, cause)."""
    recipients: set[tuple[str, str, str]] = set()  # (person, phone, sender) of every message.sent
    lists: dict[str, dict[tuple[str, str], tuple[datetime, str]]] = {person: {} for person in PERSONS}
    seen: set[str] = set()
    for event in log:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        key = (event.sender, event.phone)
        if isinstance(event, MessageSent):
            recipients.add((event.person_id, event.phone, event.sender))
        elif isinstance(event, MessageBlocked):
            lists[event.person_id].setdefault(key, (event.occurred_at, "send_blocked"))
        elif isinstance(event, OptOutOverridden):
            lists[event.person_id].pop(key, None)
        elif isinstance(event, MessageReceived):
            intent = intent_of(event)
            if intent == "STOP":
                for person, phone, sender in recipients:
                    if (phone, sender) == (event.phone, event.sender):
                        lists[person].setdefault(key, (event.occurred_at, "keyword"))
            elif intent == "START":
                for entries in lists.values():
                    entries.pop(key, None)
    return {person: entries for person, entries in lists.items() if entries}


@PROPERTIES
@given(logs())
def test_the_lists_follow_the_rules_read_straight_from_the_log(log: Log) -> None:
    people = project_log(person_log(log))

    actual = {
        person: {key: (entry.since, entry.cause) for key, entry in state.entries.items()}
        for person, state in people.items()
        if state.entries
    }
    assert actual == expected_lists(log)


# Sends and keywords only: a 21610 and an override are facts of their own moment (a START clears a
# blocked entry whenever it arrives, and the next blocked send brings it back; an override acts in
# log order, by design).
sends_and_keywords = st.one_of(
    st.tuples(st.just("sent"), person_at_phone, senders),
    st.tuples(
        st.just("received"),
        st.sampled_from(PHONES),
        senders,
        st.sampled_from(BODIES),
        st.sampled_from(OPT_OUT_TYPES),
    ),
)


@PROPERTIES
@given(st.lists(sends_and_keywords, max_size=30), st.randoms(use_true_random=False))
def test_who_is_on_which_list_does_not_depend_on_the_order_the_events_arrive_in(
    steps: list[tuple[Any, ...]], random: Any
) -> None:
    in_time_order = [build(i, step) for i, step in enumerate(steps)]
    shuffled = list(in_time_order)
    random.shuffle(shuffled)

    def entries(log: Log) -> dict[str, set[tuple[str, str]]]:
        people = project_log(person_log(log))
        return {person: set(state.entries) for person, state in people.items() if state.entries}

    assert entries(shuffled) == entries(in_time_order)


@settings(PROPERTIES, max_examples=1500)  # the orders that matter are rare among all orders
@given(logs(), st.data())
def test_arrival_order_never_takes_an_opt_out_off_a_list(log: Log, data: st.DataObject) -> None:
    """Events arrive late and out of order: whatever the order, every entry the log's fold in time
    order lists is listed. (The reverse does not hold, docs/rules.md#time-not-arrival says where.)"""
    arrived = data.draw(st.permutations(log))
    in_time = sorted(log, key=lambda event: event.occurred_at)

    def entries(events: Sequence[MessagingEvent | OptOutOverridden]) -> set[tuple[str, tuple[str, str]]]:
        people = project_log(person_log(events))
        return {(person, key) for person, state in people.items() for key in state.entries}

    assert entries(in_time) <= entries(arrived)
