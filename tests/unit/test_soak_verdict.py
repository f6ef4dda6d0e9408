"""What the crash soak counts as a failure: anything that makes the lists or the stores other than the
pure fold of the log, lag included; and how it cuts the log between the worker's incarnations."""

from __future__ import annotations

from streams.devtools.soak import cut, problems
from streams.pipeline.generations import Generation
from streams.rebuild.verify import Verification


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


def test_the_log_is_cut_in_consecutive_slices_one_per_incarnation() -> None:
    events = [{"n": i} for i in range(11)]

    slices = cut(events, 3)

    assert [len(part) for part in slices] == [4, 4, 3]
    assert [event for part in slices for event in part] == events
