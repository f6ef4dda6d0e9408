"""Stage 2, per person: the list of senders the person opted out of, and its history.

`project(state, event)` folds one event of the person log. An entry's events are judged by their
`occurred_at`: a removal (opt-in keyword, override) older than the entry it would remove, or a
recording no later than the entry's last removal, is of the past and changes nothing. So a
redelivered event, whenever it comes, changes nothing without a memory of every event id: what a
person's state holds is bounded by their entries, not by their events.

The history (every event that changed the list, oldest first) is the audit trail. It is not part of
the stored state (`to_json`): a state read back holds `history_start` earlier changes, kept by the
shell apart from it (streams.pipeline.person_history), and `history` holds the changes folded since.

Decision record: docs/decisions/0008-before-is-occurred-at.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import singledispatch
from typing import Any

from pydantic import TypeAdapter

from schemas.addresses import address_key
from schemas.events import (
    AnyPersonEvent,
    OptOutCleared,
    OptOutEntry,
    OptOutList,
    OptOutOverridden,
    OptOutRecorded,
)

# An entry is one sender at one phone: Twilio blocks per (phone, sender), so a person with two
# phones is listed once per phone that opted out. The sender is its address key (the number for SMS,
# `whatsapp:+1...` on WhatsApp): one sender on two channels is two entries, each removed on its own.
EntryKey = tuple[str, str]


def entry_key(item: OptOutEntry | AnyPersonEvent) -> EntryKey:
    return (address_key(item.channel, item.sender), item.phone)


_HISTORY: TypeAdapter[list[AnyPersonEvent]] = TypeAdapter(list[AnyPersonEvent])
_ENTRIES: TypeAdapter[list[OptOutEntry]] = TypeAdapter(list[OptOutEntry])
_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)


@dataclass(frozen=True, slots=True)
class PersonOptOuts:
    """One person's list, when each of its entries was last removed, and the changes that made it."""

    person_id: str
    entries: Mapping[EntryKey, OptOutEntry] = field(default_factory=dict)
    # the latest removal of each entry that was ever removed: a recording no later than it is stale
    removed: Mapping[EntryKey, datetime] = field(default_factory=dict)
    # the latest recording of a standing entry, when later than its `since` (a STOP or 21610 that
    # re-confirmed it): a removal older than that is of the past, whatever order they arrived in
    reconfirmed: Mapping[EntryKey, datetime] = field(default_factory=dict)
    updated_at: datetime | None = None
    history_start: int = 0  # changes before `history`, kept apart from the state
    history: tuple[AnyPersonEvent, ...] = ()

    @property
    def history_length(self) -> int:
        return self.history_start + len(self.history)

    def senders(self) -> set[str]:
        return {sender for sender, _ in self.entries}

    def as_list(self) -> OptOutList:
        """The value of `sms-opt-outs` for this person: oldest entry first."""
        entries = sorted(self.entries.values(), key=lambda e: (e.since, e.sender, e.phone, e.channel))
        return OptOutList(person_id=self.person_id, opt_outs=tuple(entries), updated_at=self.updated_at)

    def to_json(self) -> dict[str, Any]:
        """The stored state, without the history: its size depends on the entries alone."""
        return {
            "person_id": self.person_id,
            "entries": [entry.model_dump(mode="json") for entry in self.as_list().opt_outs],
            "removed": [
                [sender, phone, _text(moment)] for (sender, phone), moment in sorted(self.removed.items())
            ],
            "reconfirmed": [
                [sender, phone, _text(moment)] for (sender, phone), moment in sorted(self.reconfirmed.items())
            ],
            "updated_at": None if self.updated_at is None else _text(self.updated_at),
            "history_length": self.history_length,
        }

    @classmethod
    def from_json(cls, person_id: str, data: Mapping[str, Any] | None) -> PersonOptOuts:
        """The state as `to_json` stored it, with its history kept apart (`history_start` changes).

        A state stored before the history was kept apart holds it inline: it is folded again, and
        comes back as `history`, to be kept apart when the state is next written."""
        if not data:
            return cls(person_id)
        if "history" in data:
            # Lax, not strict: the stored form is JSON (timestamps as strings) that we wrote ourselves.
            return project_all(_HISTORY.validate_python(data["history"], strict=False), person_id=person_id)
        entries = _ENTRIES.validate_python(data["entries"], strict=False)
        return cls(
            person_id,
            entries={entry_key(entry): entry for entry in entries},
            removed={
                (sender, phone): _TIME.validate_python(moment) for sender, phone, moment in data["removed"]
            },
            reconfirmed={
                (sender, phone): _TIME.validate_python(moment)
                for sender, phone, moment in data.get("reconfirmed", ())  # stored before it was kept
            },
            updated_at=None if data["updated_at"] is None else _TIME.validate_python(data["updated_at"]),
            history_start=data["history_length"],
        )


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def project(state: PersonOptOuts, event: AnyPersonEvent) -> PersonOptOuts:
    """Fold one event of this person's log; `state` itself when it changes nothing (a redelivery,
    a recording of what stands, a removal of what does not)."""
    return _apply(event, state)


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
    key = entry_key(event)
    entry = state.entries.get(key)
    if entry is not None:
        # Already opted out: the entry keeps its first cause and date, and notes the latest time it
        # was confirmed, which a removal must be later than to take it off.
        if event.occurred_at <= state.reconfirmed.get(key, entry.since):
            return state
        return replace(state, reconfirmed={**state.reconfirmed, key: event.occurred_at})
    removed = state.removed.get(key)
    if removed is not None and event.occurred_at <= removed:
        return state  # removed since (a redelivery, or a 21610 older than an opt-in): of the past
    entry = OptOutEntry(
        channel=event.channel,
        sender=event.sender,
        phone=event.phone,
        since=event.occurred_at,
        cause=event.cause,
        keyword=event.keyword,
        messaging_service_sid=event.messaging_service_sid,
        source_channel=event.source_channel,
        covers=event.covers,
    )
    return _changed(state, event, {**state.entries, key: entry}, state.removed)


@_apply.register(OptOutCleared)
@_apply.register(OptOutOverridden)
def _removed(event: OptOutCleared | OptOutOverridden, state: PersonOptOuts) -> PersonOptOuts:
    key = entry_key(event)
    entry = state.entries.get(key)
    latest = state.removed.get(key)
    removed = (
        state.removed
        if latest is not None and latest >= event.occurred_at
        else {
            **state.removed,
            key: event.occurred_at,
        }
    )
    if entry is None or event.occurred_at < state.reconfirmed.get(key, entry.since):
        # Nothing to remove, or the entry was recorded or confirmed after this event (a redelivery
        # of an older removal, or a STOP or 21610 that occurred after it but arrived before): the
        # list does not change and the history says nothing, but a recording older than this
        # removal, should it come late, is of the past.
        return state if removed is state.removed else replace(state, removed=removed)
    entries = {k: v for k, v in state.entries.items() if k != key}
    reconfirmed = {k: v for k, v in state.reconfirmed.items() if k != key}
    return replace(_changed(state, event, entries, removed), reconfirmed=reconfirmed)


def _changed(
    state: PersonOptOuts,
    event: AnyPersonEvent,
    entries: Mapping[EntryKey, OptOutEntry],
    removed: Mapping[EntryKey, datetime],
) -> PersonOptOuts:
    return replace(
        state, entries=entries, removed=removed, history=(*state.history, event), updated_at=event.occurred_at
    )
