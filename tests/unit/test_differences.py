"""How verify words a list that differs from the log's."""

from __future__ import annotations

from projections.differences import empty_list, list_differences
from projections.opt_outs import project_all
from tests.unit.conftest import OTHER_SENDER, SENDER, recorded


def test_equal_lists_have_no_differences() -> None:
    listed = project_all([recorded("e1", "ann", minute=1)], person_id="ann").as_list()

    assert list_differences(listed, listed) == []


def test_an_entry_the_log_does_not_have_and_one_it_has_are_both_named() -> None:
    expected = project_all([recorded("e1", "ann", minute=1)], person_id="ann").as_list()
    found = project_all([recorded("e2", "ann", sender=OTHER_SENDER, minute=1)], person_id="ann").as_list()

    differences = list_differences(expected, found)

    assert differences == [
        f"lists {OTHER_SENDER} at +14155550123 (since 2025-03-01T09:01:00+00:00, keyword STOP), which the"
        " log does not",
        f"does not list {SENDER} at +14155550123 (since 2025-03-01T09:01:00+00:00, keyword STOP), which the"
        " log does",
    ]


def test_an_entry_with_another_cause_or_date_is_a_difference() -> None:
    expected = project_all([recorded("e1", "ann", minute=1)], person_id="ann").as_list()
    found = project_all([recorded("e1", "ann", minute=2, cause="send_blocked")], person_id="ann").as_list()

    (difference,) = list_differences(expected, found)

    assert "send_blocked" in difference and "the log says" in difference


def test_an_unknown_person_has_the_empty_list() -> None:
    assert list_differences(empty_list("bob"), empty_list("bob")) == []
    assert list_differences(empty_list("bob"), project_all([], person_id="bob").as_list()) == []
