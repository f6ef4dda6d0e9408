"""A changed fold (replay, verify) finds the facts the person log lacks, appending only those that change
a list: none that the log already decides."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve, resolve_all
from projections.keywords import DEFAULT_KEYWORDS, Keywords
from projections.opt_outs import project_log
from projections.rebuild import NewFacts, new_facts
from schemas.events import AnyPersonEvent, MessagingEvent, OptOutOverridden
from tests.unit.conftest import PHONE, SENDER, blocked, overridden, received, sent
from tests.unit.test_properties import PROPERTIES, Log, logs, person_log, repeated_later

WITH_ARRET = DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"], opt_in=["ALLOW"])


def live(log: Sequence[MessagingEvent | OptOutOverridden], keywords: Keywords) -> list[AnyPersonEvent]:
    """The person log the agents write with `keywords`: derived events and overrides, in order."""
    contacts: dict[str, Contacts] = {}
    out: list[AnyPersonEvent] = []
    for event in log:
        if isinstance(event, OptOutOverridden):
            out.append(event)
            continue
        resolution = resolve(contacts.get(event.phone, EMPTY_CONTACTS), event, keywords)
        contacts[event.phone] = resolution.contacts
        out.extend(resolution.emitted)  # type: ignore[arg-type]
    return out


def replay(
    log: Sequence[MessagingEvent | OptOutOverridden], person_log: list[AnyPersonEvent], keywords: Keywords
) -> NewFacts:
    _, derived = resolve_all([event for event in log if not isinstance(event, OptOutOverridden)], keywords)
    return new_facts(derived, person_log)


def listed(events: Sequence[AnyPersonEvent]) -> dict[str, set[tuple[str, str]]]:
    return {person: set(state.entries) for person, state in project_log(events).items() if state.entries}


# ---- an unchanged fold ---------------------------------------------------------------------------


@PROPERTIES
@given(logs(min_size=1), st.data())
def test_a_replay_with_an_unchanged_fold_finds_no_new_facts(log: Log, data: st.DataObject) -> None:
    facts = replay(repeated_later(log, data.draw), person_log(log), DEFAULT_KEYWORDS)

    assert facts == NewFacts((), ())


# ---- a changed fold, applied to the past ----------------------------------------------------------


def test_a_new_opt_out_keyword_puts_a_past_message_on_the_list() -> None:
    log = [sent("s1", "ann"), received("r1", "arret", minute=1)]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    (fact,) = facts.append
    assert (fact.person_id, fact.keyword, fact.occurred_at) == ("ann", "ARRET", log[1].occurred_at)
    assert listed(before) == {}
    assert listed([*before, *facts.append]) == {"ann": {(SENDER, PHONE)}}


def test_a_new_opt_out_keyword_does_not_undo_a_later_opt_in() -> None:
    log = [sent("s1", "ann"), received("r1", "ARRET", minute=1), received("r2", "START", minute=2)]

    facts = replay(log, live(log, DEFAULT_KEYWORDS), WITH_ARRET)

    assert facts.append == ()
    assert [fact.source_event_id for fact in facts.superseded] == ["r1"]


def test_a_new_opt_in_keyword_does_not_clear_a_later_stop() -> None:
    log = [sent("s1", "ann"), received("r1", "ALLOW", minute=1), received("r2", "STOP", minute=2)]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    assert facts.append == ()
    assert listed([*before, *facts.append]) == {"ann": {(SENDER, PHONE)}}


def test_a_new_opt_in_keyword_does_not_clear_a_21610_recorded_since() -> None:
    # Found by the property below: the second 21610 changed no state (the entry stood since the
    # first), so a rule judging new facts by state change appended the opt-in and lost the entry.
    log = [blocked("b1", "ann"), received("r1", "ALLOW", minute=1), blocked("b2", "ann", minute=2)]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    assert facts.append == () and [fact.source_event_id for fact in facts.superseded] == ["r1"]
    assert listed([*before, *facts.append]) == listed(live(log, WITH_ARRET)) == {"ann": {(SENDER, PHONE)}}


def test_a_new_fact_before_an_override_of_its_entry_is_decided_by_the_override() -> None:
    log = [
        blocked("b1", "ann", minute=1),
        sent("s1", "ann", minute=2),
        received("r1", "arret", minute=3),
        overridden("o1", "ann", minute=4),
    ]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    assert [fact.source_event_id for fact in facts.superseded] == ["r1"]
    assert listed([*before, *facts.append]) == {}


def test_a_new_fact_after_an_override_is_appended() -> None:
    log = [
        blocked("b1", "ann", minute=1),
        overridden("o1", "ann", minute=2),
        sent("s1", "ann", minute=3),
        received("r1", "arret", minute=4),
    ]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    assert listed([*before, *facts.append]) == {"ann": {(SENDER, PHONE)}}


def test_facts_of_a_later_part_of_the_log_than_was_folded_decide_their_entries() -> None:
    folded = [sent("s1", "ann"), received("r1", "arret", minute=1)]
    # The running workers already folded a later START the replay's snapshot does not reach.
    after = live([*folded, received("r2", "START", minute=2)], DEFAULT_KEYWORDS)

    facts = replay(folded, after, WITH_ARRET)

    assert facts.append == ()


BODIES = ("STOP", "START", "ARRET", "arret", "ALLOW", "HELP", "hello")
person_at_phone = st.sampled_from([("ann", "+14155550101"), ("bob", "+14155550101"), ("cat", "+14155550102")])
senders = st.sampled_from(["+14155550100", "12345"])
steps = st.one_of(
    st.tuples(st.just("sent"), person_at_phone, senders),
    st.tuples(
        st.just("received"),
        st.sampled_from(["+14155550101", "+14155550102"]),
        senders,
        st.sampled_from(BODIES),
    ),
    st.tuples(st.just("blocked"), person_at_phone, senders),
    st.tuples(st.just("override"), person_at_phone, senders),
)


def build(index: int, step: tuple[object, ...]) -> MessagingEvent | OptOutOverridden:
    if step[0] == "received":
        _, phone, sender, body = step
        return received(f"r{index}", str(body), phone=str(phone), sender=str(sender), minute=index)
    kind, (person, phone), sender = step  # type: ignore[misc]
    make = {"sent": sent, "blocked": blocked, "override": overridden}[str(kind)]
    return make(f"{kind}{index}", person, phone=phone, sender=sender, minute=index)  # type: ignore[operator]


@PROPERTIES
@given(st.lists(steps, max_size=30))
def test_a_replay_with_new_keywords_lists_what_the_new_fold_would_have_listed_all_along(
    plan: list[tuple[object, ...]],
) -> None:
    log = [build(i, step) for i, step in enumerate(plan)]
    before = live(log, DEFAULT_KEYWORDS)

    facts = replay(log, before, WITH_ARRET)

    assert listed([*before, *facts.append]) == listed(live(log, WITH_ARRET))
