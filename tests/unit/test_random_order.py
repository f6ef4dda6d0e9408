"""The suite runs as `make test` runs it in a new order each time, from a seed it prints, and that seed
replays the order (pytest-randomly, in the dev extra): a test that needs another to run first fails
on some run instead of passing by the files' order, and a red run can be run again as it was."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests/unit/test_rules.py"  # many tests: two orders drawn at random are never the same


def collected(*options: str) -> tuple[int, list[str]]:
    """The seed a collection of MODULE prints in its header, and the tests in the order it ran them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", MODULE, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seed = re.search(r"^Using --randomly-seed=(\d+)$", done.stdout, re.MULTILINE)
    assert seed, f"no seed in the header: {done.stdout[:500]}"
    return int(seed.group(1)), re.findall(r"<Function (\S+)>", done.stdout)


def test_each_run_takes_the_tests_in_an_order_drawn_from_the_seed_it_prints() -> None:
    seed, order = collected()
    _, replayed = collected(f"--randomly-seed={seed}")
    _, other = collected(f"--randomly-seed={seed + 1}")

    assert len(order) > 40
    assert replayed == order
    assert other != order and sorted(other) == sorted(order)
