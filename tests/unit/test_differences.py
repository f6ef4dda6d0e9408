"""How verify words a list, or a phone's contacts, that differ from the log's."""

from __future__ import annotations

import json

from projections.contacts import Contacts, resolve_all
from projections.differences import contacts_differences, empty_list, list_differences
from projections.opt_outs import project_all
from tests.unit.conftest import OTHER_SENDER, PHONE, SENDER, received, recorded, sent


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


def test_contacts_stored_as_the_log_folds_them_have_no_differences() -> None:
    contacts = resolve_all([sent("s1", "ann"), received("r1", "STOP")])[0][PHONE]
    stored = Contacts.from_json(json.loads(json.dumps(contacts.to_json())))

    assert contacts_differences(contacts, stored) == []


def test_a_store_that_lost_a_send_and_a_keyword_names_the_recipient_and_the_event() -> None:
    contacts = resolve_all([sent("s1", "ann"), sent("s2", "bob"), received("r1", "STOP")])[0][PHONE]
    lost = resolve_all([sent("s1", "ann")])[0][PHONE]

    differences = contacts_differences(contacts, lost)

    assert f"recipients of {SENDER} lack bob, which the log has" in differences
    assert "applied r1 to nobody (not applied), the log says ann, bob" in differences
    assert "remembers other latest keywords per sender than the log" in differences
    assert len(differences) == 3
