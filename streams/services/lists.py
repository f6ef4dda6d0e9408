"""Reading a person's SMS opt-outs from this worker's table: the list as stored, the whole history,
and a page of it. The JSON API and the operator's pages read through these."""

from __future__ import annotations

from dataclasses import dataclass, replace

from yarl import URL

from projections.opt_outs import PersonOptOuts
from schemas.events import AnyPersonEvent
from streams.engine import faust_hooks
from streams.engine.tables import BytesTable, Tables, stored
from streams.pipeline.person_history import read_history


@dataclass(frozen=True)
class HistoryPage:
    events: list[AnyPersonEvent]
    start: int  # the index of the first event of the page in the whole history
    total: int


@dataclass(frozen=True)
class Lists:
    """The opt-out lists of the people this worker's partitions hold."""

    tables: Tables

    @property
    def table(self) -> BytesTable:
        return self.tables.opt_outs

    def owner(self, person_id: str) -> URL:
        """The web URL of the worker that holds the person's partition (KeyError: none yet)."""
        return faust_hooks.key_owner(self.tables.opt_outs, person_id)

    def state(self, person_id: str) -> PersonOptOuts:
        """The person's list as stored, without its history: the same cost however long that is."""
        return PersonOptOuts.from_json(person_id, stored(self.tables.opt_outs.get(person_id.encode())))

    def person(self, person_id: str) -> PersonOptOuts:
        """The person's list and their whole history (for the page, an override, a past moment)."""
        state = self.state(person_id)
        earlier = read_history(person_id, state.history_start, self.tables.opt_outs.get)
        return replace(state, history_start=0, history=(*earlier, *state.history))

    def history_page(self, person_id: str, limit: int, before: int | None) -> HistoryPage:
        """Up to `limit` changes, the newest first unless `before` says where the page ends."""
        length = self.state(person_id).history_length
        stop = length if before is None else min(before, length)
        start = max(0, stop - limit)
        events = read_history(person_id, length, self.tables.opt_outs.get, start=start, stop=stop)
        return HistoryPage(list(events), start, length)
