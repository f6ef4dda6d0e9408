"""The ids a batch may take as normalised: those it folded and those stored in its partition."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict

from streams.tables import KnownKeys


def test_stored_and_folded_keys_are_known_and_nothing_else(tmp_path: Path) -> None:
    store = Rdict(str(tmp_path / "store"), options=Options(raw_mode=True))
    store.put(b"+14155550123", b"{}")
    known = KnownKeys({b"+14155550124": object()}, store)

    try:
        assert "+14155550123" in known  # stored
        assert "+14155550124" in known  # folded in this batch, not yet stored
        assert "+14155550125" not in known
        assert b"+14155550123" not in known  # only text ids, as events hold them
    finally:
        store.close()
