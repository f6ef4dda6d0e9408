"""What differs between the list the log says a person has and a list found elsewhere (the API, the
table's changelog, `sms-opt-outs`), in words an operator can act on."""

from __future__ import annotations

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
