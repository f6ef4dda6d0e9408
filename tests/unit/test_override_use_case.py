"""The override use case without a broker or a web server: a list read from memory, a log that
keeps what is appended (and folds it, as the agents would), or that refuses it."""

from __future__ import annotations

import asyncio

import pytest

from projections.opt_outs import PersonOptOuts, project, project_all
from schemas.errors import NotOnList
from schemas.events import OptOutOverridden
from schemas.inputs import InvalidInput
from streams.services.override_log import NotAppended
from streams.services.overrides import (
    BadIdempotencyKey,
    KeyReused,
    NotAcknowledged,
    Overrides,
    Removal,
    override_id,
)
from tests.unit.conftest import OTHER_SENDER, SENDER, recorded


class InMemoryPeople:
    """The person's list, and the log an override is appended to, folded as it is appended."""

    def __init__(self, state: PersonOptOuts, *, refuse: bool = False) -> None:
        self.folded = state
        self.appended: list[OptOutOverridden] = []
        self.refuse = refuse

    def state(self, person_id: str) -> PersonOptOuts:
        return self.folded

    def person(self, person_id: str) -> PersonOptOuts:
        return self.folded

    async def append(self, event: OptOutOverridden) -> None:
        if self.refuse:
            raise NotAppended("timed out")
        self.appended.append(event)
        self.folded = project(self.folded, event)


def overrides_of(people: InMemoryPeople, wait: float = 1.0) -> Overrides:
    return Overrides(people, people, default_region="US", wait=wait)


def remove(overrides: Overrides, sender: str = SENDER, key: str | None = "k1") -> Removal:
    return asyncio.run(overrides.remove("ann", sender, None, actor="op", reason="asked", idempotency_key=key))


def listed() -> InMemoryPeople:
    return InMemoryPeople(project_all([recorded("e1", "ann", minute=5)], person_id="ann"))


def test_a_removal_appends_one_override_and_waits_until_the_list_shows_it() -> None:
    people = listed()

    removal = remove(overrides_of(people))

    assert [event.sender for event in people.appended] == [SENDER]
    assert removal.list_updated
    assert not people.folded.entries


def test_a_retry_with_the_same_key_appends_nothing_more() -> None:
    people = listed()
    overrides = overrides_of(people)
    first = remove(overrides)

    again = remove(overrides)

    assert len(people.appended) == 1
    assert again.event == first.event


def test_a_key_used_for_another_sender_is_refused() -> None:
    people = InMemoryPeople(
        project_all(
            [recorded("e1", "ann", minute=5), recorded("e2", "ann", minute=6, sender=OTHER_SENDER)],
            person_id="ann",
        )
    )
    overrides = overrides_of(people)
    remove(overrides)

    with pytest.raises(KeyReused, match="use a new key"):
        remove(overrides, sender=OTHER_SENDER)
    assert len(people.appended) == 1


def test_a_sender_not_on_the_list_appends_nothing() -> None:
    people = InMemoryPeople(PersonOptOuts("ann"))

    with pytest.raises(NotOnList):
        remove(overrides_of(people))
    assert people.appended == []


def test_a_sender_that_is_not_a_sender_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        remove(overrides_of(listed()), sender="not a sender!")


def test_an_unacknowledged_append_names_the_override() -> None:
    people = listed()
    people.refuse = True

    with pytest.raises(NotAcknowledged) as refused:
        remove(overrides_of(people))
    assert refused.value.event.sender == SENDER


def test_the_wait_ends_when_the_list_does_not_show_the_override() -> None:
    class Unfolded(InMemoryPeople):
        async def append(self, event: OptOutOverridden) -> None:
            self.appended.append(event)  # in the log, not folded yet

    people = Unfolded(listed().folded)

    removal = remove(overrides_of(people, wait=0.05))

    assert not removal.list_updated


def test_an_idempotency_key_makes_the_same_id_and_a_bad_one_is_refused() -> None:
    assert override_id("ann", "k1") == override_id("ann", "k1") != override_id("bob", "k1")
    with pytest.raises(BadIdempotencyKey):
        override_id("ann", "with space")
