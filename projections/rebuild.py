"""What a replay appends to the person log: the facts stage 1 derives from the messaging log that the
person log lacks (a changed fold: a new custom keyword applies to the past), each unless the log
already decides its entry. No I/O: the shell (streams.rebuild) streams the logs through `decided`
partition by partition; `new_facts` is the same rule over whole logs in memory.

"Later" is `occurred_at` (decision 8), so the rule holds partition by partition: a fact about an
entry (person, sender, phone) is superseded by a stage 1 fact about it that occurred later, or by an
override at or after it. The others are appended in time order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from projections.opt_outs import EntryKey, entry_key
from schemas.events import AnyPersonEvent, OptOutOverridden, PersonEvent


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


def decided(fact: PersonEvent, latest_fact: datetime | None, latest_override: datetime | None) -> bool:
    """Whether the log already decides `fact`'s entry: it holds a stage 1 fact about the entry that
    occurred later, or an override at or after it. Folded after that fact, it would undo it (an
    opt-in keyword from last year must not clear last week's STOP, nor a 21610 recorded since)."""
    return (latest_fact is not None and latest_fact > fact.occurred_at) or (
        latest_override is not None and latest_override >= fact.occurred_at
    )


def new_facts(derived: Iterable[PersonEvent], person_log: Iterable[AnyPersonEvent]) -> NewFacts:
    """The derived events whose ids the person log does not hold yet and that the log does not
    decide, in time order."""
    in_log: set[str] = set()
    latest: dict[tuple[str, EntryKey], datetime] = {}
    overridden: dict[tuple[str, EntryKey], datetime] = {}
    for event in person_log:
        in_log.add(event.event_id)
        times = overridden if isinstance(event, OptOutOverridden) else latest
        key = (event.person_id, entry_key(event))
        times[key] = max(times.get(key, event.occurred_at), event.occurred_at)
    missing = {fact.event_id: fact for fact in derived if fact.event_id not in in_log}
    append: list[PersonEvent] = []
    superseded: list[PersonEvent] = []
    for fact in sorted(missing.values(), key=time_order):
        key = (fact.person_id, entry_key(cast("AnyPersonEvent", fact)))
        (superseded if decided(fact, latest.get(key), overridden.get(key)) else append).append(fact)
    return NewFacts(tuple(append), tuple(superseded))
