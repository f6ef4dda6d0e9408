"""The last few thousand stored states a stage decoded, by key, with the bytes they were decoded from.

Decoding a stored state (its JSON parsed, the fold's objects built) cost a stage 1 worker more than
a seventh of its time on a log where phones repeat. A state whose stored bytes are the bytes it was
decoded from is the same state, so it is taken as it was: a memo of a pure function of the bytes
(and the key), checked against the store's bytes at every read, never a copy of the store to keep
in step with it. A state a batch wrote is remembered with the bytes it was written as (the folds'
`to_json` and `from_json` round-trip), so the phone's next batch does not decode it either. The
states are immutable (every change to one is a new object), so one may serve many batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Per stage: enough for the phones a busy log repeats within minutes, small enough to leave a
# million-person worker's memory to RocksDB (a decoded state is a few kB at most).
DEFAULT_SIZE = 8192


class DecodedStates(Generic[T]):
    def __init__(self, decode: Callable[[bytes, bytes | None], T], size: int = DEFAULT_SIZE) -> None:
        self._decode = decode  # (key, stored bytes or None) -> state
        self._size = size
        self._memo: dict[bytes, tuple[bytes, T]] = {}

    def remember(self, key: bytes, raw: bytes, state: T) -> None:
        """`state`, just encoded to `raw` and written for `key`: what decoding `raw` gives back (the
        fold's `to_json` and `from_json` round-trip). Taken only while the store holds `raw`: a
        restore that wrote a newer value instead is decoded from its own bytes."""
        if key not in self._memo and len(self._memo) >= self._size:
            del self._memo[next(iter(self._memo))]  # the longest kept
        self._memo[key] = (raw, state)

    def get(self, key: bytes, raw: bytes | None) -> T:
        """The state of `key` whose stored bytes are `raw` (None: nothing stored)."""
        hit = self._memo.get(key)
        if hit is not None and hit[0] == raw:
            return hit[1]
        state = self._decode(key, raw)
        if raw is not None:
            self.remember(key, raw, state)
        return state
