"""Stage 2, per person: the list of senders a person opted out of, its history, and its stored form."""

from __future__ import annotations

import json

from projections.opt_outs import PersonOptOuts, project, project_all, project_log
from schemas.events import AnyPersonEvent, OptOutEntry, OptOutList
from tests.unit.conftest import (
    OTHER_PHONE,
    OTHER_SENDER,
    PHONE,
    SENDER,
    at,
    cleared,
    overridden,
    recorded,
)


def fold(*events: AnyPersonEvent) -> PersonOptOuts:
    return project_all(events, person_id="ann")


def reload(state: PersonOptOuts) -> PersonOptOuts:
    """`state` written to the table as JSON and read back, as after a restart."""
    return PersonOptOuts.from_json(state.person_id, json.loads(json.dumps(state.to_json())))


def test_recorded_puts_the_sender_on_the_list() -> None:
    state = fold(recorded("e1", "ann", minute=5, keyword="STOP", service="MG1"))

    assert state.entries == {
        (SENDER, PHONE): OptOutEntry(
            sender=SENDER,
            phone=PHONE,
            since=at(5),
            cause="keyword",
            keyword="STOP",
            messaging_service_sid="MG1",
        )
    }
    assert state.senders() == {SENDER}
    assert state.updated_at == at(5)


def test_a_send_blocked_entry_has_no_keyword() -> None:
    state = fold(recorded("e1", "ann", cause="send_blocked"))

    (entry,) = state.entries.values()
    assert (entry.cause, entry.keyword) == ("send_blocked", None)


def test_recorded_for_a_listed_sender_keeps_the_first_cause_and_date() -> None:
    first = fold(recorded("e1", "ann", minute=1, keyword="STOP"))

    state = project(first, recorded("e2", "ann", minute=7, cause="send_blocked"))

    assert state.entries == first.entries
    assert state.history == first.history
    assert state.updated_at == at(1)


def test_cleared_removes_the_entry_of_that_sender_and_phone_only() -> None:
    state = fold(
        recorded("e1", "ann"),
        recorded("e2", "ann", sender=OTHER_SENDER),
        recorded("e3", "ann", phone=OTHER_PHONE),
        cleared("e4", "ann", minute=9),
    )

    assert set(state.entries) == {(OTHER_SENDER, PHONE), (SENDER, OTHER_PHONE)}
    assert state.updated_at == at(9)


def test_overridden_removes_the_entry_and_keeps_actor_and_reason_in_the_history() -> None:
    override = overridden("o1", "ann", minute=3, actor="ops@example.com", reason="wrong number")

    state = fold(recorded("e1", "ann"), override)

    assert state.entries == {}
    assert state.history[-1] == override
    assert (state.history[-1].actor, state.history[-1].reason) == ("ops@example.com", "wrong number")


def test_removing_what_is_not_listed_changes_neither_list_nor_history() -> None:
    before = fold(recorded("e1", "ann", minute=1))

    after = project(
        project(before, cleared("e2", "ann", sender=OTHER_SENDER, minute=5)),
        overridden("o1", "ann", phone=OTHER_PHONE, minute=6),
    )

    assert after.entries == before.entries
    assert after.history == before.history
    assert after.updated_at == at(1)


def test_a_repeated_event_id_returns_the_state_itself() -> None:
    state = fold(recorded("e1", "ann"), cleared("e2", "ann"))

    assert project(state, recorded("e1", "ann")) is state
    assert project(state, cleared("e2", "ann")) is state


def test_a_removal_older_than_the_entry_changes_nothing_when_it_comes_again() -> None:
    state = fold(overridden("o1", "ann", minute=0), recorded("e1", "ann", minute=1))

    assert project(state, overridden("o1", "ann", minute=0)) is state
    assert state.senders() == {SENDER}


def test_history_holds_every_change_oldest_first() -> None:
    events: list[AnyPersonEvent] = [
        recorded("e1", "ann", minute=1),
        cleared("e2", "ann", minute=2),
        recorded("e3", "ann", minute=3, cause="send_blocked"),
        overridden("o1", "ann", minute=4),
    ]

    state = fold(*events)

    assert state.history == tuple(events)
    assert [e.type for e in state.history] == [
        "opt_out.recorded",
        "opt_out.cleared",
        "opt_out.recorded",
        "opt_out.overridden",
    ]


def test_as_list_is_sorted_oldest_first_with_the_time_of_each_opt_out() -> None:
    state = fold(
        recorded("e1", "ann", sender="MyBrand", minute=8),
        recorded("e2", "ann", sender=OTHER_SENDER, minute=2, service="MG1"),
        recorded("e3", "ann", sender=SENDER, minute=5, cause="send_blocked"),
    )

    snapshot = state.as_list()

    assert snapshot.person_id == "ann"
    assert [(e.sender, e.since) for e in snapshot.opt_outs] == [
        (OTHER_SENDER, at(2)),
        (SENDER, at(5)),
        ("MyBrand", at(8)),
    ]
    assert snapshot.opt_outs[0].messaging_service_sid == "MG1"
    assert snapshot.opt_outs[0].keyword == "STOP"
    # The time of the last change folded, which need not be the newest entry's.
    assert snapshot.updated_at == at(5)


def test_as_list_breaks_ties_in_time_by_sender_then_phone() -> None:
    state = fold(
        recorded("e1", "ann", sender="MyBrand", phone=OTHER_PHONE),
        recorded("e2", "ann", sender="MyBrand", phone=PHONE),
        recorded("e3", "ann", sender=OTHER_SENDER),
    )

    assert [(e.sender, e.phone) for e in state.as_list().opt_outs] == [
        (OTHER_SENDER, PHONE),
        ("MyBrand", PHONE),
        ("MyBrand", OTHER_PHONE),
    ]


def test_an_unknown_person_has_an_empty_list() -> None:
    assert PersonOptOuts("zed").as_list() == OptOutList(person_id="zed", opt_outs=(), updated_at=None)


def test_project_log_folds_each_person_on_its_own() -> None:
    states = project_log(
        [recorded("e1", "ann"), recorded("e2", "bob", sender=OTHER_SENDER), cleared("e3", "ann")]
    )

    assert states.keys() == {"ann", "bob"}
    assert states["ann"].senders() == set()
    assert states["bob"].senders() == {OTHER_SENDER}


def test_the_state_round_trips_through_json() -> None:
    state = fold(
        recorded("e1", "ann", minute=1, service="MG1"),
        recorded("e2", "ann", sender=OTHER_SENDER, minute=2, cause="send_blocked"),
        cleared("e3", "ann", sender=OTHER_SENDER, minute=3),
        recorded("e4", "ann", sender="MyBrand", minute=4),
        overridden("o1", "ann", sender="MyBrand", minute=5),
        cleared("e5", "ann", sender="MyBrand", minute=6),
    )

    reloaded = reload(state)
    assert (reloaded.entries, reloaded.removed, reloaded.updated_at) == (
        state.entries,
        state.removed,
        state.updated_at,
    )
    assert (reloaded.history_start, reloaded.history, reloaded.history_length) == (len(state.history), (), 5)


def test_a_reloaded_state_still_drops_an_event_id_it_has_seen() -> None:
    state = fold(recorded("e1", "ann"), overridden("o1", "ann"))

    assert project(reload(state), recorded("e1", "ann")).senders() == set()


def test_an_empty_state_round_trips_through_json() -> None:
    assert reload(PersonOptOuts("ann")) == PersonOptOuts("ann")
    assert PersonOptOuts.from_json("ann", None) == PersonOptOuts("ann")


# ---- bounded: a person's stored state holds their entries, never their events ---------------------


def test_the_stored_state_does_not_grow_with_the_history() -> None:
    once = fold(
        recorded("e0", "ann", minute=0), cleared("c1", "ann", minute=1), recorded("r1", "ann", minute=2)
    )
    toggles: list[AnyPersonEvent] = []
    for i in range(1, 3001):
        toggles.append(cleared(f"c{i}", "ann", minute=2 * i - 1))
        toggles.append(recorded(f"r{i}", "ann", minute=2 * i))
    many = project_all([recorded("e0", "ann", minute=0), *toggles], person_id="ann")

    assert many.history_length == 6001
    assert len(json.dumps(many.to_json())) == len(json.dumps(once.to_json())) + 3  # the count's digits
    assert reload(many).as_list() == many.as_list()


def test_a_redelivered_recording_after_its_removal_changes_nothing_whenever_it_comes() -> None:
    state = fold(
        recorded("e1", "ann", minute=1), cleared("c1", "ann", minute=2), recorded("e9", "ann", minute=3)
    )
    state = project(state, overridden("o1", "ann", minute=4))

    assert project(reload(state), recorded("e1", "ann", minute=1)).senders() == set()
    assert project(reload(state), recorded("e9", "ann", minute=3)).senders() == set()


def test_a_21610_older_than_the_opt_in_that_came_before_it_changes_nothing() -> None:
    # The START was at minute 5; the 21610 of a send at minute 3 reaches the person log after it.
    state = fold(recorded("e1", "ann", minute=1), cleared("c1", "ann", minute=5))

    assert project(state, recorded("b1", "ann", minute=3, cause="send_blocked")).senders() == set()
    assert project(state, recorded("b2", "ann", minute=6, cause="send_blocked")).senders() == {SENDER}


def test_a_state_stored_with_its_history_inline_is_read_and_keeps_its_history_to_be_moved_out() -> None:
    events = [
        recorded("e1", "ann", minute=1),
        overridden("o1", "ann", minute=2),
        recorded("e2", "ann", minute=3),
    ]
    stored_before = {
        "person_id": "ann",
        "history": [event.model_dump(mode="json") for event in events],
        "seen": sorted(event.event_id for event in events),
    }

    state = PersonOptOuts.from_json("ann", stored_before)

    assert state.senders() == {SENDER}
    assert (state.history_start, state.history) == (0, tuple(events))
    assert project(state, recorded("e1", "ann", minute=1)) is state  # still applied once
