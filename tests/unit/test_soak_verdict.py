"""What the chaos soak counts as a failure: anything that makes the lists or the stores other than the
pure fold of the log, lag included; how it cuts the log into steps and orders its faults; what it
refuses to run."""

from __future__ import annotations

import argparse

import pytest

from streams.devtools.soak import EXIT_FAILED, add_soak_commands, cut, problems, schedule, soak_command
from streams.pipeline.generations import Generation
from streams.rebuild.verify import Verification
from streams.settings import Settings


def verification(**found: object) -> Verification:
    result = Verification(Generation("optouts-soak"), persons=3)
    for name, value in found.items():
        setattr(result, name, value)
    return result


def test_a_verification_that_found_nothing_is_no_problem() -> None:
    assert problems(verification()) == []


def test_every_kind_of_disagreement_is_a_problem_of_its_own() -> None:
    found = verification(
        differences={"ann": ["API does not list 12345"]},
        not_judged={"bob"},
        contacts_differences={"+14155550123": ["store (x) recipients of 12345 lack ann, which the log has"]},
        behind=7,
        pending_facts=1,
        superseded_facts=1,
        underived=["e1"],
    )

    lines = problems(found)

    assert lines[:3] == [
        "person ann: API does not list 12345",
        "person bob: changed while verifying",
        "phone +14155550123: store (x) recipients of 12345 lack ann, which the log has",
    ]
    assert "7 events" in lines[3] and "2 facts" in lines[4] and "e1" in lines[5]
    assert len(lines) == 6


def test_the_log_is_cut_in_consecutive_slices_one_per_step() -> None:
    events = [{"n": i} for i in range(11)]

    slices = cut(events, 3)

    assert [len(part) for part in slices] == [4, 4, 3]
    assert [event for part in slices for event in part] == events


def test_the_schedule_holds_each_fault_as_often_as_asked_in_an_order_the_seed_gives() -> None:
    faults = schedule(7, kill=3, wipe=1, zombie=2, stall=2)

    assert sorted(faults) == sorted(["kill"] * 3 + ["wipe"] + ["zombie"] * 2 + ["stall"] * 2)
    assert schedule(7, kill=3, wipe=1, zombie=2, stall=2) == faults
    assert len({schedule(seed, kill=3, wipe=1, zombie=2, stall=2) for seed in range(10)}) > 1


def soak_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_soak_commands(parser.add_subparsers())
    return parser.parse_args(["soak", *argv])


@pytest.mark.parametrize(
    ("argv", "brokers", "why"),
    [
        (["--stalls", "1"], "127.0.0.1:9", "--stalls needs the embedded broker"),
        (["--workers", "0"], "", "at least one worker"),
        (["--kills", "-1"], "", "0 or more"),
        (["-n", "3", "--kills", "2", "--zombies", "1"], "", "more than the faults"),
    ],
)
def test_a_soak_it_cannot_run_as_asked_is_refused_before_it_starts_anything(
    argv: list[str], brokers: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before the broker, the proxy or a worker starts: none of them could run here.
    assert soak_command(soak_args(*argv), Settings(kafka_brokers=brokers)) == EXIT_FAILED
    assert why in capsys.readouterr().err
