"""Stage 2, per person: the list of senders the person opted out of, and its history.

`project(state, event)` folds one event of the person log. Every event id is applied once; the
history holds every event that changed the list, oldest first, so it is the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import singledispatch
from typing import Any

from pydantic import TypeAdapter

from schemas.events import (
    AnyPersonEvent,
    OptOutCleared,
    OptOutEntry,
    OptOutList,
    OptOutOverridden,
    OptOutRecorded,
)

# An entry is one sender at one phone: Twilio blocks per (phone, sender), so a person with two
# phones is listed once per phone that opted out.
EntryKey = tuple[str, str]

_HISTORY: TypeAdapter[list[AnyPersonEvent]] = TypeAdapter(list[AnyPersonEvent])


@dataclass(frozen=True, slots=True)
class PersonOptOuts:
    """One person's list, the changes that made it, and every event id already applied."""

    person_id: str
    entries: Mapping[EntryKey, OptOutEntry] = field(default_factory=dict)
    history: tuple[AnyPersonEvent, ...] = ()
    seen: frozenset[str] = frozenset()
    updated_at: datetime | None = None

    def senders(self) -> set[str]:
        return {sender for sender, _ in self.entries}

    def as_list(self) -> OptOutList:
        """The value of `sms-opt-outs` for this person: oldest entry first."""
        entries = sorted(self.entries.values(), key=lambda e: (e.since, e.sender, e.phone))
        return OptOutList(person_id=self.person_id, opt_outs=tuple(entries), updated_at=self.updated_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "history": [event.model_dump(mode="json") for event in self.history],
            "seen": sorted(self.seen),
        }

    @classmethod
    def from_json(cls, person_id: str, data: Mapping[str, Any] | None) -> PersonOptOuts:
        """The state stored as `to_json` wrote it; the list itself is rebuilt from the history."""
        if not data:
            return cls(person_id)
        # Lax, not strict: the stored form is JSON (timestamps as strings) that we wrote ourselves.
        history = _HISTORY.validate_python(data["history"], strict=False)
        rebuilt = project_all(history, person_id=person_id)
        return replace(rebuilt, seen=frozenset(data["seen"]))


def project(state: PersonOptOuts, event: AnyPersonEvent) -> PersonOptOuts:
    """Fold one event of this person's log. A repeated event id returns `state` itself."""
    if event.event_id in state.seen:
        return state
    return _apply(event, replace(state, seen=state.seen | {event.event_id}))


def project_all(events: Iterable[AnyPersonEvent], *, person_id: str) -> PersonOptOuts:
    """Fold one person's whole log from the empty list."""
    state = PersonOptOuts(person_id)
    for event in events:
        state = project(state, event)
    return state


def project_log(events: Iterable[AnyPersonEvent]) -> dict[str, PersonOptOuts]:
    """Fold a log holding many persons: every person's state."""
    states: dict[str, PersonOptOuts] = {}
    for event in events:
        state = states.get(event.person_id) or PersonOptOuts(event.person_id)
        states[event.person_id] = project(state, event)
    return states


@singledispatch
def _apply(event: Any, state: PersonOptOuts) -> PersonOptOuts:
    raise TypeError(f"no stage 2 rule for {type(event).__name__}")


@_apply.register
def _recorded(event: OptOutRecorded, state: PersonOptOuts) -> PersonOptOuts:
    key = (event.sender, event.phone)
    if key in state.entries:
        return state  # already opted out: the entry keeps its first cause and date
    entry = OptOutEntry(
        sender=event.sender,
        phone=event.phone,
        since=event.occurred_at,
        cause=event.cause,
        keyword=event.keyword,
        messaging_service_sid=event.messaging_service_sid,
    )
    return _changed(state, event, {**state.entries, key: entry})


@_apply.register(OptOutCleared)
@_apply.register(OptOutOverridden)
def _removed(event: OptOutCleared | OptOutOverridden, state: PersonOptOuts) -> PersonOptOuts:
    key = (event.sender, event.phone)
    if key not in state.entries:
        return state  # nothing to remove: the list does not change and the history says nothing
    entries = {k: v for k, v in state.entries.items() if k != key}
    return _changed(state, event, entries)


def _changed(
    state: PersonOptOuts, event: AnyPersonEvent, entries: Mapping[EntryKey, OptOutEntry]
) -> PersonOptOuts:
    return replace(state, entries=entries, history=(*state.history, event), updated_at=event.occurred_at)
