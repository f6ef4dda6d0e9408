"""A person's history, kept apart from their state in the same table: chunks of `CHUNK` changes under
keys of their own, so that reading a list never reads its history, and appending a change rewrites
one chunk, not the whole history.

A chunk's key is the person's key, a NUL (which no person id holds: `schemas.events`) and the
chunk's number; its value is the JSON list of its changes, oldest first. The chunks live in the
person's partition, beside their state, and go to the table's changelog like any value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pydantic_core
from pydantic import TypeAdapter

from projections.opt_outs import PersonOptOuts
from schemas.events import AnyPersonEvent

CHUNK = 100  # changes per chunk: a toggling person's append rewrites at most this many

_MARK = b"\x00history\x00"
_CHANGES: TypeAdapter[list[AnyPersonEvent]] = TypeAdapter(list[AnyPersonEvent])

Read = Callable[[bytes], bytes | None]


def chunk_key(person_key: bytes, number: int) -> bytes:
    return person_key + _MARK + number.to_bytes(4, "big")


def is_history_key(key: bytes) -> bool:
    """Whether a key of the opt-outs table is a history chunk rather than a person's state."""
    return _MARK in key


def history_writes(
    state: PersonOptOuts, read: Read, *, rewrite: bool = False
) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) chunks to write for the changes `state` holds past `history_start`: the last
    stored chunk completed, then new ones. `rewrite`: every chunk of the history, for a redelivered
    batch (the changelog may lack what the store holds)."""
    key, start = state.person_id.encode(), state.history_start
    if not state.history and not rewrite:
        return
    first = 0 if rewrite else start // CHUNK
    earlier = [
        change for n in range(first, -(-start // CHUNK)) for change in _stored(read, chunk_key(key, n))
    ]
    changes = [*earlier[: start - first * CHUNK], *(event.model_dump(mode="json") for event in state.history)]
    for offset in range(0, len(changes), CHUNK):
        yield chunk_key(key, first + offset // CHUNK), pydantic_core.to_json(changes[offset : offset + CHUNK])


def read_history(
    person_id: str, length: int, read: Read, start: int = 0, stop: int | None = None
) -> list[AnyPersonEvent]:
    """Changes `start` to `stop` (the end: `length`) of the person's history, oldest first."""
    stop = length if stop is None else min(stop, length)
    if start >= stop:
        return []
    key = person_id.encode()
    changes = [
        change
        for number in range(start // CHUNK, (stop - 1) // CHUNK + 1)
        for change in _stored(read, chunk_key(key, number))
    ]
    first = (start // CHUNK) * CHUNK
    return _CHANGES.validate_python(changes[start - first : stop - first], strict=False)


def _stored(read: Read, key: bytes) -> list[object]:
    value = read(key)
    return [] if value is None else list(pydantic_core.from_json(value))
