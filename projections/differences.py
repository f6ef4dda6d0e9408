"""What differs between the list the log says a person has and a list found elsewhere (the API, the
table's changelog, `sms-opt-outs`), and between a phone's contacts as the log folds them and as
stored, in words an operator can act on."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from projections.contacts import Applied, Contacts
from schemas.events import OptOutEntry, OptOutList


def empty_list(person_id: str) -> OptOutList:
    """What a person nobody published a list for has: no opt-outs."""
    return OptOutList(person_id=person_id, opt_outs=(), updated_at=None)


def list_differences(expected: OptOutList, found: OptOutList) -> list[str]:
    """Each way `found` differs from `expected` (the log's list); empty when they agree."""
    want = {(e.sender, e.phone): e for e in expected.opt_outs}
    have = {(e.sender, e.phone): e for e in found.opt_outs}
    differences = [
        f"lists {_entry(have[key])}, which the log does not" for key in sorted(have.keys() - want.keys())
    ]
    differences += [
        f"does not list {_entry(want[key])}, which the log does" for key in sorted(want.keys() - have.keys())
    ]
    for key in sorted(want.keys() & have.keys()):
        if have[key] != want[key]:
            differences.append(f"lists {_entry(have[key])}, the log says {_entry(want[key])}")
    if not differences and found.updated_at != expected.updated_at:
        differences.append(f"updated_at is {_time(found)}, the log says {_time(expected)}")
    return differences


def _entry(entry: OptOutEntry) -> str:
    cause = f"{entry.cause} {entry.keyword}" if entry.keyword else entry.cause
    service = f", service {entry.messaging_service_sid}" if entry.messaging_service_sid else ""
    return f"{entry.sender} at {entry.phone} (since {entry.since.isoformat()}, {cause}{service})"


def _time(listed: OptOutList) -> str:
    return listed.updated_at.isoformat() if listed.updated_at else "none"


def contacts_differences(expected: Contacts, found: Contacts) -> list[str]:
    """Each way a phone's stored contacts (stage 1's state) differ from the log's; empty when equal.
    A recipient the store lacks is a keyword that will miss that person."""
    differences = _persons_differ("recipients", expected.recipients, found.recipients)
    for sender in sorted(expected.recipients.keys() & found.recipients.keys()):
        first, stored = expected.recipients[sender], found.recipients[sender]
        if any(first[p] != stored[p] for p in first.keys() & stored.keys()):
            differences.append(f"recipients of {sender} were first texted at other times than the log says")
    differences += _persons_differ("blocked", expected.blocked, found.blocked)
    applied_ids = expected.applied.keys() | found.applied.keys()
    for event_id in sorted(applied_ids):
        want, have = expected.applied.get(event_id), found.applied.get(event_id)
        if want != have:
            differences.append(f"applied {event_id} to {_names(have)}, the log says {_names(want)}")
    if expected.standing != found.standing:
        differences.append("remembers other latest keywords per sender than the log")
    return differences


def _persons_differ(
    what: str, expected: Mapping[str, Collection[str]], found: Mapping[str, Collection[str]]
) -> list[str]:
    differences = []
    for sender in sorted(expected.keys() | found.keys()):
        want, have = set(expected.get(sender, ())), set(found.get(sender, ()))
        if have - want:
            differences.append(f"{what} of {sender} include {_names(have - want)}, which the log does not")
        if want - have:
            differences.append(f"{what} of {sender} lack {_names(want - have)}, which the log has")
    return differences


def _names(persons: Collection[str] | Applied | None) -> str:
    if isinstance(persons, Applied):
        persons = persons.persons
    return "nobody (not applied)" if persons is None else ", ".join(sorted(persons)) or "nobody"
