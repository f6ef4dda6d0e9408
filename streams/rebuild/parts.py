"""How a rebuild splits the partitions among its processes: part K of N takes every partition whose
number is K modulo N, of both logs alike (the workers' co-partitioning: a phone's events and a
person's events are each in one partition, numbered the same in every topic)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    index: int = 0
    count: int = 1

    def partitions(self, total: int) -> list[int]:
        return [p for p in range(total) if p % self.count == self.index]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def part_argument(text: str) -> Part:
    """`K/N` (0 <= K < N) for argparse."""
    index, slash, count = text.partition("/")
    try:
        part = Part(int(index), int(count))
    except ValueError:
        part = Part(-1, 0)
    if not slash or not 0 <= part.index < part.count:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 0 <= K < N (e.g. 0/2)")
    return part


def processes_argument(text: str) -> int:
    """A number of processes, or `auto` (the machine's cores), for argparse."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more, or auto)")
    return count


def sample_argument(text: str) -> float:
    """A fraction of the persons, 0 < f <= 1, for argparse."""
    try:
        fraction = float(text)
    except ValueError:
        fraction = 0.0
    if not 0 < fraction <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction of the persons (0 < FRACTION <= 1)")
    return fraction
