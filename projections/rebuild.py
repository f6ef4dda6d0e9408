"""What a replay appends to the person log: the facts stage 1 derives from the messaging log that the
person log lacks (a changed fold: a new custom keyword applies to the past), each only when folding
it changes its person's state. No I/O: the shell (streams.rebuild) streams the logs through it
partition by partition; `new_facts` is the same rule over whole logs in memory.

Stage 2 judges every event by its `occurred_at` (projections.opt_outs), so a new fact that the log
already decides (an opt-in keyword from last year, after which the person sent STOP last week; a
21610 older than an override of its entry) folds to the state it was: it is not appended. The facts
that do change a state are appended in time order, each folded after those before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from projections.opt_outs import PersonOptOuts, project, project_log
from schemas.events import AnyPersonEvent, PersonEvent


@dataclass(frozen=True)
class NewFacts:
    """What stage 1 derives that the person log lacks: `append` goes to the end of the log; each of
    `superseded` changes nothing, its entry decided by what the log holds."""

    append: tuple[PersonEvent, ...]
    superseded: tuple[PersonEvent, ...]


def time_order(fact: PersonEvent) -> tuple[str, str]:
    """The order new facts are appended in: by `occurred_at`, then id (a fixed-width UTC text, so
    that a store's byte order of it is time order)."""
    return (fact.occurred_at.isoformat(timespec="microseconds"), fact.event_id)


def admit(state: PersonOptOuts, fact: PersonEvent) -> PersonOptOuts | None:
    """`state` with `fact` folded, or None when the fact changes nothing (superseded)."""
    projected = project(state, cast("AnyPersonEvent", fact))  # stage 1 derives recordings and clearings
    return None if projected is state else projected


def new_facts(derived: Iterable[PersonEvent], person_log: Iterable[AnyPersonEvent]) -> NewFacts:
    """The derived events whose ids the person log does not hold yet and that change a state, folded
    after the whole log, in time order."""
    events = list(person_log)
    in_log = {event.event_id for event in events}
    missing = {fact.event_id: fact for fact in derived if fact.event_id not in in_log}
    states = project_log(events)
    append: list[PersonEvent] = []
    superseded: list[PersonEvent] = []
    for fact in sorted(missing.values(), key=time_order):
        admitted = admit(states.get(fact.person_id) or PersonOptOuts(fact.person_id), fact)
        if admitted is None:
            superseded.append(fact)
        else:
            states[fact.person_id] = admitted
            append.append(fact)
    return NewFacts(tuple(append), tuple(superseded))
