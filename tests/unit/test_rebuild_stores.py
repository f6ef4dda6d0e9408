"""The pieces a rebuild's processes are made of: a partition's local store (commits, its own records
apart from the entities), the split of the partitions into parts, the counts a part reports, and the
order new facts are judged in."""

from __future__ import annotations

import argparse
import platform
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.contacts import resolve_all
from projections.keywords import DEFAULT_KEYWORDS
from projections.rebuild import new_facts
from streams.engine.native_heap import fix_mmap_threshold
from streams.rebuild.local_store import LocalStore
from streams.rebuild.parts import Part, part_argument, processes_argument, sample_argument
from streams.rebuild.tally import Tally
from tests.unit.test_properties import PROPERTIES
from tests.unit.test_rebuild import WITH_ARRET, build, live, steps


def test_what_was_put_after_the_last_commit_is_gone_when_the_store_is_opened_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "contacts-0")
    store.put(b"+14155550101", b"kept")
    store.set_meta("next", 7)
    store.commit()
    store.put(b"+14155550102", b"lost")
    store.set_meta("next", 9)
    assert store.get(b"+14155550102") == b"lost" and store.meta("next") == 9  # read before the commit
    store.db.close()  # a kill: nothing more is committed

    again = LocalStore(tmp_path / "contacts-0")

    assert again.get(b"+14155550101") == b"kept" and again.get(b"+14155550102") is None
    assert again.meta("next") == 7
    again.close()


def test_the_entities_leave_out_the_stores_own_records_and_indexes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lists-0")
    store.put(b"ann", b"state")
    store.put(b"ann\x00history\x00\x00\x00\x00\x00", b"[]")
    store.put(b"\x01event-1", b"logged")
    store.put(b"\x02event-2", b"fact")
    store.set_meta("done", True)
    store.commit()

    assert [key for key, _ in store.entities()] == [b"ann", b"ann\x00history\x00\x00\x00\x00\x00"]
    assert list(store.scan(b"\x02")) == [(b"\x02event-2", b"fact")]
    store.clear(b"\x01")
    assert list(store.scan(b"\x01")) == [] and store.get(b"\x02event-2") == b"fact"
    store.close()


def test_the_parts_take_every_partition_once() -> None:
    parts = [Part(index, 3) for index in range(3)]

    taken = [partition for part in parts for partition in part.partitions(8)]

    assert sorted(taken) == list(range(8))
    assert Part().partitions(4) == [0, 1, 2, 3]
    assert part_argument("1/3") == Part(1, 3) and str(Part(1, 3)) == "1/3"


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0", "1/"])
def test_a_part_that_is_not_k_of_n_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not K/N"):
        part_argument(text)


def test_processes_and_samples_are_checked() -> None:
    assert processes_argument("2") == 2 and processes_argument("auto") >= 1
    assert sample_argument("0.25") == 0.25 and sample_argument("1") == 1.0
    for bad in ("0", "-2", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            processes_argument(bad)
    for bad in ("0", "1.5", "half"):
        with pytest.raises(argparse.ArgumentTypeError):
            sample_argument(bad)


def test_a_tally_survives_its_store_and_adds_up() -> None:
    one = Tally(messaging_events=3, skipped=Counter({"undecodable": 2}), misplaced=Counter({"crc32": 1}))
    two = Tally(messaging_events=4, skipped=Counter({"undecodable": 1, "unfoldable": 1}))

    total = Tally.from_json(one.to_json()) + two

    assert total.messaging_events == 7
    assert total.skipped == Counter({"undecodable": 3, "unfoldable": 1})
    assert total.misplaced == Counter({"crc32": 1})
    assert one.to_json()["skipped"] == {"undecodable": 2}


@PROPERTIES
@given(st.lists(steps, max_size=30), st.randoms())
def test_the_new_facts_do_not_depend_on_the_order_they_come_from_the_exchange_in(
    plan: list[tuple[object, ...]], shuffler: random.Random
) -> None:
    log = [build(i, step) for i, step in enumerate(plan)]
    before = live(log, DEFAULT_KEYWORDS)
    _, derived = resolve_all([e for e in log if e.type.startswith("message.")], WITH_ARRET)  # type: ignore[misc]
    shuffled = list(derived)
    shuffler.shuffle(shuffled)

    assert new_facts(shuffled, before) == new_facts(derived, before)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    assert fix_mmap_threshold()
