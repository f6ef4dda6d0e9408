"""What a rebuild of one partition counted, kept in its store with its progress so that a resumed
rebuild reports the whole of it; summed over the partitions and the processes of a replay."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Tally:
    messaging_events: int = 0
    person_events: int = 0
    appended: int = 0  # facts of the fold the person log lacked, appended to it
    superseded: int = 0  # such facts a later fact in the log about their entry decides: not appended
    pending: int = 0  # verify: facts the person log lacks that it does not decide (folded, not appended)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> records the agents dead-letter too
    miskeyed: int = 0  # keyed by another form of their entity: not folded where they are
    misplaced: Counter[str] = field(default_factory=Counter)  # on another partition: likely cause -> how many
    republished: int = 0  # of those, the ones the running generation had not forwarded yet
    phones: int = 0
    persons: int = 0
    persons_listed: int = 0
    entries: int = 0

    def to_json(self) -> dict[str, Any]:
        # Not `asdict`: it rebuilds a Counter from its items, counting the (key, count) pairs.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: dict(value) if isinstance(value, Counter) else value for name, value in values.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Tally:
        tally = cls()
        for name, value in (data or {}).items():
            current = getattr(tally, name, None)
            setattr(tally, name, Counter(value) if isinstance(current, Counter) else value)
        return tally

    def __add__(self, other: Tally) -> Tally:
        total = Tally()
        for f in fields(self):
            setattr(total, f.name, getattr(self, f.name) + getattr(other, f.name))
        return total
