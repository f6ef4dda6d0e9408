"""`optouts capacity` measures what the capacity model (docs/capacity.md) is built on, from the folds'
own encodings of the bench's generated log."""

from __future__ import annotations

import json
import statistics

from streams.devtools.capacity import measure
from streams.devtools.workload import generate


def test_the_figures_are_those_of_the_generated_log_and_its_folds() -> None:
    figures = measure(3000, 1000, seed=3)
    log = list(generate(3000, 1000, seed=3))

    assert figures["phones"] == len({event["phone"] for event in log})
    assert sum(figures["types"].values()) == 3000
    compact = [len(json.dumps(event, separators=(",", ":"))) for event in log]
    assert figures["messaging_value_bytes"] == round(statistics.fmean(compact), 1)
    assert 0 < figures["person_events_per_messaging_event"] < 1
    assert 0 < figures["persons_listed"] <= figures["persons_with_state"] <= 1000
    # Stored compressed: fewer bytes in RocksDB than the values and their versions take as they are.
    raw = figures["phones"] * (figures["contacts_value_bytes"] + figures["version_bytes_per_key"])
    assert 0 < figures["rocksdb_contacts_bytes"] < raw
