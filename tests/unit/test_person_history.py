"""A person's history kept apart from their state, in chunks: appended a chunk at a time, read back
whole or a page at a time, and written again whole for a redelivered batch."""

from __future__ import annotations

from projections.opt_outs import PersonOptOuts, project, project_all
from schemas.events import AnyPersonEvent
from streams.pipeline.person_history import CHUNK, chunk_key, history_writes, is_history_key, read_history
from tests.unit.conftest import cleared, recorded

Store = dict[bytes, bytes]


def toggles(count: int, start: int = 0) -> list[AnyPersonEvent]:
    """`count` changes of ann's list: recorded, cleared, recorded, ..."""
    return [
        recorded(f"r{i}", "ann", minute=i) if i % 2 == 0 else cleared(f"c{i}", "ann", minute=i)
        for i in range(start, start + count)
    ]


def written(state: PersonOptOuts, store: Store, *, rewrite: bool = False) -> PersonOptOuts:
    """`state`'s history written to `store` as the agent writes it, and the state as read back."""
    store.update(history_writes(state, store.get, rewrite=rewrite))
    return PersonOptOuts.from_json(state.person_id, state.to_json())


def test_the_history_written_batch_by_batch_reads_back_whole_and_in_order() -> None:
    store: Store = {}
    events = toggles(2 * CHUNK + 37)
    state = PersonOptOuts("ann")
    for start in range(0, len(events), 29):  # batches that end inside chunks
        for event in events[start : start + 29]:
            state = project(state, event)
        state = written(state, store)

    assert read_history("ann", state.history_length, store.get) == events
    assert sorted(store) == [chunk_key(b"ann", n) for n in range(3)]


def test_a_page_of_the_history_reads_only_the_chunks_it_needs() -> None:
    store: Store = {}
    events = toggles(3 * CHUNK)
    written(project_all(events, person_id="ann"), store)
    asked: list[bytes] = []

    def read(key: bytes) -> bytes | None:
        asked.append(key)
        return store.get(key)

    page = read_history("ann", len(events), read, start=CHUNK + 10, stop=CHUNK + 20)

    assert page == events[CHUNK + 10 : CHUNK + 20]
    assert asked == [chunk_key(b"ann", 1)]


def test_a_redelivered_batch_writes_every_chunk_again_as_it_was() -> None:
    store: Store = {}
    events = toggles(CHUNK + 5)
    state = written(project_all(events, person_id="ann"), store)

    again = dict(history_writes(state, store.get, rewrite=True))

    assert again == store


def test_history_keys_are_told_from_person_keys() -> None:
    assert is_history_key(chunk_key(b"ann", 0))
    assert not is_history_key(b"ann")
    assert not is_history_key(b"{3F2504E0-4F89-11D3-9A0C-0305E82C3301}")
