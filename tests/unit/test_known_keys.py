"""What a batch reads from its partition's store: each value once, and the ids it may take as normalised
(those it folded and those stored)."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict

from streams.engine.tables import BatchReads, KnownKeys


def test_stored_and_folded_keys_are_known_and_nothing_else(tmp_path: Path) -> None:
    store = Rdict(str(tmp_path / "store"), options=Options(raw_mode=True))
    store.put(b"+14155550123", b"{}")
    known = KnownKeys({b"+14155550124": object()}, BatchReads(store))

    try:
        assert "+14155550123" in known  # stored
        assert "+14155550124" in known  # folded in this batch, not yet stored
        assert "+14155550125" not in known
        assert b"+14155550123" not in known  # only text ids, as events hold them
    finally:
        store.close()


def test_a_batch_reads_each_stored_value_once(tmp_path: Path) -> None:
    store = Rdict(str(tmp_path / "store"), options=Options(raw_mode=True))
    store.put(b"+14155550123", b"first")
    reads = BatchReads(store)

    try:
        assert reads.get(b"+14155550123") == b"first"
        assert reads.get(b"+14155550199") is None
        store.put(b"+14155550123", b"second")  # the batch's own writes reach the store only when it is done
        store.put(b"+14155550199", b"new")
        assert (reads.get(b"+14155550123"), reads.get(b"+14155550199")) == (b"first", None)
    finally:
        store.close()
