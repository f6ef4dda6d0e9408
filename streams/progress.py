"""Progress of a long read for an operator's terminal: events done, events/s, % of the log, ETA, on
stderr so that stdout stays for the result. On a terminal a bar (rich) redrawn in place; otherwise
(a pipe, a log file, a test) a plain line at most every `interval` seconds, or nothing (`quiet`) for
work that prints its own lines there."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        *,
        interval: float = 1.0,
        out: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.interval = interval
        self.out = out or sys.stderr
        self.started = time.monotonic()
        self._shown = self.started
        self.quiet = quiet
        self._finished = False
        self._bar = _bar(label, total, self.out) if self.out.isatty() else None

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Events per second so far."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._bar.task_ids[0], completed=self.done, rate=self.rate)
            return
        now = time.monotonic()
        if not self.quiet and now - self._shown >= self.interval:
            self._shown = now
            self._print(self.line())

    def line(self) -> str:
        percent = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.rate
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return (
            f"{self.label}: {self.done:,} of {self.total:,} events ({percent:.0f}%),"
            f" {rate:,.0f} events/s, ETA {eta:.0f} s"
        )

    def finish(self) -> None:
        """The summary line, once however often it is called (a `finally` may call it again)."""
        if self._finished:
            return
        self._finished = True
        if self._bar is not None:
            self._bar.stop()  # the bar stays on the screen as it ended; the summary goes under it
        elif self.quiet:
            return
        self._print(f"{self.label}: {self.done:,} events in {self.seconds:.1f} s ({self.rate:,.0f} events/s)")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _bar(label: str, total: int, out: TextIO) -> Bar:
    bar = Bar(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("events, {task.fields[rate]:,.0f}/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=out),
        # A fold of a million events advances thousands of times a second: redraw a few times a second.
        refresh_per_second=4,
    )
    bar.add_task(label, total=total or None, rate=0.0)
    bar.start()
    return bar


def say(text: str) -> None:
    """A line of progress that is not a count: on stderr, at once."""
    print(text, file=sys.stderr, flush=True)
