"""What orders the values the workers write for one key: the generation that folded them and the input
offset its store was folded up to, carried as record headers on the tables' changelogs and on
`sms-opt-outs`, and kept per key in the local store next to the value.

Without broker transactions nothing stops a worker paused past its session timeout (a zombie) from
waking and sending the changelog records and lists of the batch it was folding, after the worker
that took its partitions over sent newer ones: in log order, the older value would be the latest,
and a restore, a standby or a consumer of `sms-opt-outs` would keep it. A value folded up to a later
offset of the same input partition is the fold of a longer prefix of it, so the newest value of a
key is the one with the highest (generation, folded-up-to); readers keep that one, and log order only
among values that carry none (written before versions were). The crash soak's zombies found the loss
(docs/decisions/0012-versioned-values.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

GENERATION_HEADER = "optouts-generation"
FOLDED_UP_TO_HEADER = "optouts-folded-up-to"

# A version: (generation, input offset folded up to).
Version = tuple[int, int]

# The key, in a partition's store, of a key's version: no entity id starts with a NUL.
_VERSION_OF = b"\x00v\x00"

# The key of the last input offset a partition's store holds the fold of (streams.engine.table_writes):
# in the store, and first among a batch's records on the changelog, so that a store restored from the
# changelog knows it too. Merged by the highest, never by log order.
FOLDED_UP_TO = b"\x00optouts:folded-up-to"

# The key of the last input offset whose fold's values the store holds every one of: written with
# FOLDED_UP_TO in the store, and last among a batch's records on the changelog. A restore that ends
# between a batch's first and last records (its records span several record batches) has the first
# marker without all the values; the agents read the changelog on before they fold past this one.
HOLDS_UP_TO = b"\x00optouts:holds-up-to"

# Both markers: merged by the highest.
MARKERS = (FOLDED_UP_TO, HOLDS_UP_TO)


def headers(version: Version) -> list[tuple[str, bytes]]:
    """The record headers that carry `version`."""
    generation, offset = version
    return [(GENERATION_HEADER, str(generation).encode()), (FOLDED_UP_TO_HEADER, str(offset).encode())]


def version_of(record_headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Version | None:
    """The version a record's headers carry; None for a record without one (or one not ours)."""
    if not record_headers:
        return None
    found = dict(record_headers)
    try:
        return int(found[GENERATION_HEADER]), int(found[FOLDED_UP_TO_HEADER])
    except (KeyError, ValueError):
        return None


def supersedes(incoming: Version | None, current: Version | None) -> bool:
    """Whether a value of `incoming` version replaces one of `current`: unless both have versions and
    the incoming one is older, the later in the log wins (as before versions)."""
    return incoming is None or current is None or incoming >= current


def version_key(key: bytes) -> bytes:
    return _VERSION_OF + key


def encode_version(version: Version) -> bytes:
    return b"%d:%d" % version


def decode_version(raw: bytes | None) -> Version | None:
    if raw is None:
        return None
    generation, _, offset = raw.partition(b":")
    try:
        return int(generation), int(offset)
    except ValueError:
        return None


def encode_marker(offset: int) -> bytes:
    return str(offset).encode()


def decode_marker(raw: bytes | None, unreadable: int = -1) -> int:
    """A folded-up-to marker's offset; -1 for none, `unreadable` for one that is not ours."""
    if raw is None:
        return -1
    try:
        return int(raw)
    except ValueError:
        return unreadable
