"""What orders two values of one key (streams.engine.versions): the generation, then the input offset
the store was folded up to; log order among values without a version."""

from __future__ import annotations

from streams.engine.versions import decode_version, encode_version, headers, supersedes, version_of


def test_a_version_survives_the_headers_and_the_store() -> None:
    assert version_of(headers((3, 12_345))) == (3, 12_345)
    assert decode_version(encode_version((3, 12_345))) == (3, 12_345)


def test_records_without_our_headers_have_no_version() -> None:
    assert version_of(None) is None
    assert version_of([]) is None
    assert version_of([("traceparent", b"00-abc")]) is None
    assert version_of([("optouts-generation", b"x"), ("optouts-folded-up-to", b"1")]) is None
    assert decode_version(None) is None
    assert decode_version(b"garbage") is None


def test_an_older_version_never_replaces_a_newer_one_and_the_unversioned_follow_the_log() -> None:
    assert not supersedes((0, 10), (0, 20))  # a zombie's late write of an older fold
    assert supersedes((0, 20), (0, 20))  # the same fold again (a redelivery): the same value
    assert supersedes((0, 30), (0, 20))
    assert supersedes((1, 0), (0, 99))  # a new generation's, whatever offsets
    assert not supersedes((0, 99), (1, 0))
    assert supersedes(None, (0, 20)) and supersedes((0, 20), None) and supersedes(None, None)
