"""The generated workload: the same log for the same seed, whichever commit generates it (`optouts bench
--baseline` folds one commit's log against another's and compares them)."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from streams.devtools.workload import Window, generate


def digest(n: int, persons: int, seed: int) -> str:
    sha = hashlib.sha256()
    for event in generate(n, persons, seed):
        sha.update(json.dumps(event, sort_keys=True).encode() + b"\n")
    return sha.hexdigest()


@pytest.mark.parametrize(
    ("n", "persons", "seed", "expected"),
    [
        # Recorded from the generator as of 40f7b2e (a list of every event, sliced per redelivery).
        (3000, 1000, 7, "83dcb92728af7f7dbb19301628629c21dd902e84f8306d614b37802a71d75700"),
        # Long enough that both windows are full and wrap: 5,000 events, 10,000 sends.
        (30_000, 1000, 11, "341a80d0f07000af15522ca669c50aa887bf739b088795b727da3e08f93114d3"),
    ],
)
def test_a_seed_generates_the_same_log_as_before(n: int, persons: int, seed: int, expected: str) -> None:
    assert digest(n, persons, seed) == expected


@pytest.mark.parametrize("size", [1, 3, 10])
def test_a_window_holds_and_picks_what_the_tail_of_a_list_would(size: int) -> None:
    window: Window[int] = Window(size)
    everything: list[int] = []
    for item in range(4 * size + 1):
        window.append(item)
        everything.append(item)
        tail = everything[-size:]
        assert len(window) == len(tail)
        assert [window[i] for i in range(len(window))] == tail
        seed = random.randrange(1 << 30)
        assert random.Random(seed).choice(window) == random.Random(seed).choice(tail)
    with pytest.raises(IndexError):
        window[size]
