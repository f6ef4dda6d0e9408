"""Long work shows its progress the way terminals expect: a bar with rate and ETA on a terminal,
plain lines a log or a test can read everywhere else."""

from __future__ import annotations

import io

from streams.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_plain_lines_with_rate_and_eta() -> None:
    out = io.StringIO()
    progress = Progress("stage 1", 1000, interval=0.0, out=out)

    progress.advance(250)
    progress.finish()

    first, last = out.getvalue().splitlines()
    assert first.startswith("stage 1: 250 of 1,000 events (25%),") and "events/s, ETA" in first
    assert last.startswith("stage 1: 250 events in ")


def test_a_terminal_gets_a_bar_and_the_summary_line_under_it() -> None:
    out = Terminal()
    progress = Progress("stage 1", 1000, interval=0.0, out=out)

    progress.advance(1000)
    progress.finish()

    shown = out.getvalue()
    assert "━" in shown and "100%" in shown and "ETA" in shown
    assert "of 1,000 events (" not in shown  # no plain lines under the bar
    assert shown.splitlines()[-1].endswith("events/s)") and "stage 1: 1,000 events in " in shown


def test_quiet_work_prints_nothing_but_its_own_lines_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress("[soak] streaming", 1000, interval=0.0, out=out, quiet=True)

    progress.advance(500)
    progress.finish()

    assert out.getvalue() == ""


def test_the_summary_is_shown_once_however_often_finish_is_called() -> None:
    out = io.StringIO()
    progress = Progress("stage 1", 10, out=out)

    progress.advance(10)
    progress.finish()
    progress.finish()

    assert len(out.getvalue().splitlines()) == 1
