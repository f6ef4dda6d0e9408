"""A person's list as it stood at a moment in the past, from the history."""

from __future__ import annotations

from projections.opt_outs import project_all
from projections.point_in_time import as_of
from tests.unit.conftest import OTHER_SENDER, PHONE, SENDER, at, cleared, overridden, recorded


def test_the_list_as_of_a_moment_holds_what_was_recorded_by_then() -> None:
    state = project_all(
        [recorded("e1", "ann", minute=1), recorded("e2", "ann", sender=OTHER_SENDER, minute=5)],
        person_id="ann",
    )

    then = as_of(state, at(3)).as_list()

    assert [entry.sender for entry in then.opt_outs] == [SENDER]
    assert then.updated_at == at(1)


def test_an_entry_cleared_later_is_on_the_list_as_of_before_the_clearing() -> None:
    state = project_all([recorded("e1", "ann", minute=1), cleared("e2", "ann", minute=4)], person_id="ann")

    assert [e.sender for e in as_of(state, at(3)).as_list().opt_outs] == [SENDER]
    assert as_of(state, at(4)).as_list().opt_outs == ()
    assert state.as_list().opt_outs == ()


def test_an_override_counts_from_its_own_time() -> None:
    state = project_all(
        [recorded("e1", "ann", minute=1), overridden("o1", "ann", minute=6), recorded("e3", "ann", minute=9)],
        person_id="ann",
    )

    assert [e.since for e in as_of(state, at(5)).as_list().opt_outs] == [at(1)]
    assert as_of(state, at(7)).as_list().opt_outs == ()
    assert [e.since for e in as_of(state, at(9)).as_list().opt_outs] == [at(9)]


def test_before_the_first_change_the_list_is_empty() -> None:
    state = project_all([recorded("e1", "ann", minute=1)], person_id="ann")

    then = as_of(state, at(0)).as_list()

    assert (then.person_id, then.opt_outs, then.updated_at) == ("ann", (), None)


def test_as_of_now_is_the_current_list() -> None:
    state = project_all(
        [recorded("e1", "ann", minute=1), recorded("e2", "ann", phone="+14155550199", minute=2)],
        person_id="ann",
    )

    assert as_of(state, at(60)).as_list() == state.as_list()
    assert {entry.phone for entry in state.as_list().opt_outs} == {PHONE, "+14155550199"}
