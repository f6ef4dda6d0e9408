"""The offline fold of both logs, shared by replay and verification: stage 1 over the whole messaging
log, the facts it derives that the person log lacks, and stage 2 over the person log. No I/O: the
shell reads the logs and hands the events over in batches, in each partition's order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve
from projections.keywords import DEFAULT_KEYWORDS, Keywords
from schemas.events import AnyPersonEvent, MessagingEvent, OptOutOverridden, PersonEvent

# The unit of the list: a person's entry for one sender at one phone. A phone's events are folded in
# order, so all the derived events about one entry come from one phone, in that phone's order.
Entry = tuple[str, str, str]  # (person_id, sender, phone)


def entry_of(event: PersonEvent) -> Entry:
    return (event.person_id, event.sender, event.phone)


@dataclass
class MessagingFold:
    """Stage 1 over a whole log, fed batch by batch in partition order: each phone's contacts, every
    person event the fold derives (in fold order, each id once), and the position of every keyword
    or blocked event in the fold (a derived event's place in its phone's order)."""

    keywords: Keywords = DEFAULT_KEYWORDS
    contacts: dict[str, Contacts] = field(default_factory=dict)
    derived: dict[str, PersonEvent] = field(default_factory=dict)  # by event id, in fold order
    positions: dict[str, int] = field(default_factory=dict)  # source event id -> position
    folded: int = 0

    def add(self, events: Iterable[MessagingEvent]) -> None:
        for event in events:
            if event.type != "message.sent":  # only these derive person events
                self.positions.setdefault(event.event_id, self.folded)
            self.folded += 1
            resolution = resolve(self.contacts.get(event.phone, EMPTY_CONTACTS), event, self.keywords)
            if resolution.contacts is not EMPTY_CONTACTS:
                self.contacts[event.phone] = resolution.contacts
            for emitted in resolution.emitted:
                self.derived.setdefault(emitted.event_id, emitted)


@dataclass(frozen=True)
class NewFacts:
    """What stage 1 derives that the person log lacks: `append` goes to the end of the log; each of
    `superseded` is already decided by a later fact about its entry that is in the log."""

    append: tuple[PersonEvent, ...]
    superseded: tuple[PersonEvent, ...]


def new_facts(
    derived: Iterable[PersonEvent], positions: Mapping[str, int], person_log: Iterable[AnyPersonEvent]
) -> NewFacts:
    """The derived events whose ids the person log does not hold yet: facts a changed fold (a new
    custom keyword) finds in the past.

    Appended, they are folded after everything already in the log. Whether an entry is on a list
    depends only on the last event about it (recorded: on it; cleared or overridden: off), so a new
    fact is appended only when no fact about the same entry that is already in the log is later:
    a derived event from a later message of the phone (one whose source is not in `positions` came
    after the part of the log that was folded), or an override at or after its time. A superseded
    fact would otherwise undo what came after it: a new opt-in keyword from last year must not clear
    the STOP sent last week.
    """
    in_log: set[str] = set()
    latest_source: dict[Entry, float] = {}
    latest_override: dict[Entry, datetime] = {}
    for event in person_log:
        in_log.add(event.event_id)
        entry = entry_of(event)
        if isinstance(event, OptOutOverridden):
            latest_override[entry] = max(latest_override.get(entry, event.occurred_at), event.occurred_at)
        else:
            position = positions.get(event.source_event_id, math.inf)
            latest_source[entry] = max(latest_source.get(entry, -math.inf), position)
    append: list[PersonEvent] = []
    superseded: list[PersonEvent] = []
    for fact in derived:
        if fact.event_id in in_log:
            continue
        entry = entry_of(fact)
        overridden = latest_override.get(entry)
        later = latest_source.get(entry, -math.inf) > positions.get(fact.source_event_id, math.inf) or (
            overridden is not None and overridden >= fact.occurred_at
        )
        (superseded if later else append).append(fact)
    return NewFacts(tuple(append), tuple(superseded))
