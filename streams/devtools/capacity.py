"""`optouts capacity`: the bytes the capacity model in docs/capacity.md is built on, measured by folding
the bench's generated log offline with the service's own folds and encodings (no broker): per input
event, per person event, per stored phone and person, on the logs and in RocksDB.

One JSON line on stdout; the model's arithmetic is in the doc, with every assumption it makes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rocksdict import Rdict

from projections.contacts import resolve_all
from projections.opt_outs import project_log
from schemas.codec import decode_messaging_event, decode_person_event, encode
from streams.devtools.workload import generate
from streams.engine.tables import storable
from streams.engine.versions import encode_version, headers, version_key

# A Kafka record's own bytes in a record batch of many (varint lengths, offset and time deltas, an
# attributes byte), the batch's 61-byte header spread over its records: about 12 bytes a record.
RECORD_OVERHEAD = 12


def add_capacity_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    capacity = commands.add_parser(
        "capacity", help="measure the bytes per event and per stored state the capacity model uses"
    )
    capacity.add_argument("-n", "--events", type=int, default=400_000, help="input events (400000)")
    capacity.add_argument("--persons", type=int, default=200_000, help="distinct persons (200000)")
    capacity.add_argument("--seed", type=int, default=7)
    capacity.set_defaults(handler=lambda args, settings: capacity_command(args), could_not_run=1)


def capacity_command(args: argparse.Namespace) -> int:
    print(json.dumps(measure(args.events, args.persons, args.seed)), flush=True)
    return 0


def measure(events: int, persons: int, seed: int = 7) -> dict[str, Any]:
    started = time.perf_counter()
    values = [json.dumps(event, separators=(",", ":")).encode() for event in generate(events, persons, seed)]
    decoded = [decode_messaging_event(value, region="US") for value in values]
    contacts, emitted = resolve_all(decoded)
    person_events = [encode(event) for event in emitted]
    lists = project_log(decode_person_event(value) for value in person_events)  # as stage 2 reads them
    contact_values = {phone.encode(): storable(state.to_json()) for phone, state in contacts.items()}
    person_values = {person.encode(): storable(state.to_json()) for person, state in lists.items()}
    published = [encode(state.as_list()) for state in lists.values() if state.entries]
    version_bytes = _header_bytes(headers((0, 10**9))) + len(encode_version((0, 10**9)))
    return {
        "events": events,
        "persons": persons,
        "seed": seed,
        "types": dict(Counter(event.type for event in decoded)),
        "messaging_value_bytes": _mean(len(v) for v in values),
        "messaging_key_bytes": _mean(len(e.phone) for e in decoded),
        "person_events_per_messaging_event": round(len(emitted) / events, 4),
        "person_event_value_bytes": _mean(len(v) for v in person_events),
        "phones": len(contact_values),
        "contacts_value_bytes": _mean(len(v) for v in contact_values.values()),
        "contacts_value_bytes_p99": _percentile([len(v) for v in contact_values.values()], 0.99),
        "persons_with_state": len(person_values),
        "opt_outs_value_bytes": _mean(len(v) for v in person_values.values()),
        "persons_listed": len(published),
        "list_value_bytes": _mean(len(v) for v in published),
        "version_bytes_per_key": version_bytes,  # headers on the changelog, a key beside it in the store
        "record_overhead_bytes": RECORD_OVERHEAD,
        "rocksdb_contacts_bytes": _rocksdb_bytes(contact_values),
        "rocksdb_opt_outs_bytes": _rocksdb_bytes(person_values),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _rocksdb_bytes(values: dict[bytes, bytes]) -> int:
    """The bytes of a RocksDB holding `values` and their versions, compacted (its default compression)."""
    directory = Path(tempfile.mkdtemp(prefix="optouts-capacity-"))
    try:
        db = Rdict(str(directory / "db"))
        version = encode_version((0, 10**9))
        for key, value in values.items():
            db[key] = value
            db[version_key(key)] = version
        db.flush()
        db.compact_range(None, None)
        db.close()
        return sum(path.stat().st_size for path in (directory / "db").glob("*.sst"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _header_bytes(pairs: list[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(value) + 2 for name, value in pairs)


def _mean(sizes: Iterable[int]) -> float:
    listed = list(sizes)
    return round(statistics.fmean(listed), 1) if listed else 0.0


def _percentile(sizes: list[int], share: float) -> int:
    if not sizes:
        return 0
    ordered = sorted(sizes)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
