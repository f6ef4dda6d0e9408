"""A stored state is decoded again only when its bytes changed (streams.engine.decoded_states)."""

from __future__ import annotations

from streams.engine.decoded_states import DecodedStates


def test_a_state_is_decoded_again_only_when_its_bytes_changed() -> None:
    decodings: list[tuple[bytes, bytes | None]] = []

    def decode(key: bytes, raw: bytes | None) -> str:
        decodings.append((key, raw))
        return f"{key.decode()}={raw!r}"

    states = DecodedStates(decode, size=2)
    assert states.get(b"a", b"1") == "a=b'1'"
    assert states.get(b"a", b"1") == "a=b'1'"  # the same bytes: the same state, not decoded again
    assert states.get(b"a", b"2") == "a=b'2'"  # written since (by this worker or a restore)
    assert states.get(b"b", None) == "b=None"  # nothing stored: decoded every time, never kept
    assert states.get(b"b", None) == "b=None"
    states.get(b"c", b"3")
    states.get(b"d", b"4")  # full: the longest kept ("a") goes
    states.get(b"a", b"2")
    assert decodings == [
        (b"a", b"1"),
        (b"a", b"2"),
        (b"b", None),
        (b"b", None),
        (b"c", b"3"),
        (b"d", b"4"),
        (b"a", b"2"),
    ]


def test_a_state_written_is_taken_as_it_is_while_the_store_holds_what_was_written() -> None:
    decodings: list[bytes | None] = []

    def decode(key: bytes, raw: bytes | None) -> str:
        decodings.append(raw)
        return f"decoded {raw!r}"

    states = DecodedStates(decode, size=2)
    states.remember(b"a", b"written", "folded")
    assert states.get(b"a", b"written") == "folded"  # what the batch wrote: not decoded again
    assert states.get(b"a", b"restored") == "decoded b'restored'"  # a newer value came in meanwhile
    states.remember(b"b", b"1", "b")
    states.remember(b"c", b"1", "c")  # full: the longest kept ("a") goes
    assert states.get(b"a", b"restored") == "decoded b'restored'"
    assert decodings == [b"restored", b"restored"]
