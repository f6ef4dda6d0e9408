"""Stage 1, per phone: who received SMS from which sender at this phone, and what each inbound
keyword or blocked send means for those persons.

`resolve(contacts, event)` returns the phone's new contacts and the per-person events it emits.
Keyword and blocked events are applied once per `event_id`; a repeat returns the contacts unchanged
and emits the same person events again, to the byte (stage 2 drops them by id), so an emit lost in
a crash after the table was written is made good by the redelivery, whatever the redelivery carries
(a webhook delivered twice is stamped with two receipt times).

"Before" is the events' `occurred_at`, not their order in the log (DESIGN.md): a keyword applies to
the persons whose first send from that sender occurred at or before it, and a send that reaches the
fold after a standing opt-out keyword it occurred before records that opt-out then. For that the
phone keeps each sender's latest keyword by time (`standing`), which is enough: an older keyword of
the other kind than the standing one was undone by it, and changes nothing when it arrives late.

A `message.blocked` without a person (a Twilio status callback that did not name one) goes to every
person who received from that sender at that phone by the time of the 21610: Twilio blocks a phone
and sender, not a message, so each of them is blocked alike. So a send to a recipient already known
changes nothing at all, and the agents write nothing for it (nine events in ten).

Decision record: docs/decisions/0008-before-is-occurred-at.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import singledispatch
from typing import Any, Literal, NamedTuple

from projections.keywords import DEFAULT_KEYWORDS, Intent, Keywords, classify, keyword_text
from schemas.events import (
    MessageBlocked,
    MessageReceived,
    MessageSent,
    MessagingEvent,
    OptOutCleared,
    OptOutRecorded,
    PersonEvent,
)

_DERIVED_IDS = uuid.UUID("7c0f6a52-3c55-4a8e-9d4c-2f1b2d6c9e11")

# The time of a send or keyword stored before times were kept: before everything, so such a
# recipient still counts for every keyword, as it did.
_LONG_AGO = ""


Cause = Literal["keyword", "opt_in_keyword", "send_blocked", ""]


class Applied(NamedTuple):
    """What a keyword or blocked event did: the persons it applied to, in emit order, and every field
    of the person events it emitted, so that a redelivery emits exactly those again."""

    persons: tuple[str, ...]
    cause: Cause  # "": stored before the fields were kept (the redelivery's own are used)
    occurred_at: str  # RFC 3339 in UTC with microseconds: sorts as the time it names
    sender: str
    keyword: str | None
    messaging_service_sid: str | None


class Standing(NamedTuple):
    """A sender's latest opt-out or opt-in keyword from this phone, by time (then event id)."""

    occurred_at: str
    event_id: str
    opt_out: bool


@dataclass(frozen=True, slots=True)
class Contacts:
    """What one phone has seen. Mappings are never changed in place: every change is a new object."""

    # sender -> person -> when their first send from it to this phone occurred
    recipients: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # sender -> persons a send to this phone was blocked for (21610): a later opt-in clears them too
    blocked: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # keyword or blocked event id -> what it did
    applied: Mapping[str, Applied] = field(default_factory=dict)
    # sender -> its latest keyword from this phone
    standing: Mapping[str, Standing] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipients": {sender: dict(persons) for sender, persons in self.recipients.items()},
            "blocked": {sender: sorted(persons) for sender, persons in self.blocked.items()},
            "applied": _applied_to_json(self.applied),
            "standing": {sender: list(keyword) for sender, keyword in self.standing.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Contacts:
        if not data:
            return EMPTY_CONTACTS
        return cls(
            recipients={s: _first_sends(p) for s, p in data["recipients"].items()},
            blocked={s: frozenset(p) for s, p in data["blocked"].items()},
            applied=StoredApplied(data["applied"]),
            # (contacts stored before 21610s went to every recipient hold "recent_sends": not read)
            standing={s: Standing._make(k) for s, k in data.get("standing", {}).items()},
        )

    def recipients_by(self, sender: str, moment: str) -> tuple[str, ...]:
        """The persons who received from `sender` at this phone at or before `moment`, sorted."""
        return tuple(sorted(p for p, first in self.recipients.get(sender, {}).items() if first <= moment))


def _first_sends(stored: Mapping[str, str] | list[str]) -> Mapping[str, str]:
    # A list: persons stored before their first send's time was kept.
    return dict.fromkeys(stored, _LONG_AGO) if isinstance(stored, list) else stored


class StoredApplied(Mapping[str, Applied]):
    """`applied` as stored, each entry read when asked for: most events of a phone (sends) never look
    past the recipients, and reading every keyword the phone ever sent cost more than their fold."""

    __slots__ = ("_read", "stored")

    def __init__(self, stored: Mapping[str, list[Any]]) -> None:
        self.stored = stored
        self._read: dict[str, Applied] = {}

    def __getitem__(self, event_id: str) -> Applied:
        applied = self._read.get(event_id)
        if applied is None:
            applied = self._read[event_id] = _applied(self.stored[event_id])
        return applied

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.stored

    def __iter__(self) -> Iterator[str]:
        return iter(self.stored)

    def __len__(self) -> int:
        return len(self.stored)


def _applied_to_json(applied: Mapping[str, Applied]) -> Mapping[str, list[Any]]:
    if isinstance(applied, StoredApplied):
        return applied.stored  # as it was read: never changed in place
    return {event_id: [list(a.persons), *a[1:]] for event_id, a in applied.items()}


def _applied(stored: list[Any]) -> Applied:
    if not stored or isinstance(stored[0], str):  # persons only: stored before the fields were kept
        return Applied(tuple(stored), "", _LONG_AGO, "", None, None)
    persons, *fields = stored
    return Applied(tuple(persons), *fields)


EMPTY_CONTACTS = Contacts()


@dataclass(frozen=True, slots=True)
class Resolution:
    contacts: Contacts
    emitted: tuple[PersonEvent, ...] = ()


def derived_event_id(source_event_id: str, person_id: str) -> str:
    """The id of the person event that `source_event_id` causes for `person_id`: the same on every
    redelivery and replay, different for every person sharing the phone."""
    return str(uuid.uuid5(_DERIVED_IDS, f"{source_event_id}\x1f{person_id}"))


def resolve(contacts: Contacts, event: MessagingEvent, keywords: Keywords = DEFAULT_KEYWORDS) -> Resolution:
    """Fold one messaging event of this phone into its contacts."""
    applied = contacts.applied.get(event.event_id)
    if applied is not None:
        if not applied.cause:  # stored before the fields were kept: the redelivery's own
            applied = _describe(event, applied.persons, keywords)
        return Resolution(contacts, _emit(event.event_id, event.phone, applied))
    return _apply(event, contacts, keywords)


def resolve_all(
    events: Iterable[MessagingEvent], keywords: Keywords = DEFAULT_KEYWORDS
) -> tuple[dict[str, Contacts], list[PersonEvent]]:
    """Fold a whole log, phone by phone: the contacts of every phone and every event emitted."""
    by_phone: dict[str, Contacts] = {}
    emitted: list[PersonEvent] = []
    for event in events:
        resolution = resolve(by_phone.get(event.phone, EMPTY_CONTACTS), event, keywords)
        by_phone[event.phone] = resolution.contacts
        emitted.extend(resolution.emitted)
    return by_phone, emitted


@singledispatch
def _apply(event: Any, contacts: Contacts, keywords: Keywords) -> Resolution:
    raise TypeError(f"no stage 1 rule for {type(event).__name__}")


@_apply.register
def _sent(event: MessageSent, contacts: Contacts, keywords: Keywords) -> Resolution:
    person, sender = event.person_id, event.sender
    sent_at = _sortable(event.occurred_at)
    persons = contacts.recipients.get(sender, {})
    first = persons.get(person)
    if first is not None and first <= sent_at:
        return Resolution(contacts)  # the same object: nothing to write (nine events in ten)
    recipients = {**contacts.recipients, sender: {**persons, person: sent_at}}
    changed = Contacts(recipients, contacts.blocked, contacts.applied, contacts.standing)
    standing = contacts.standing.get(sender)
    if standing is None or not standing.opt_out or sent_at > standing.occurred_at:
        return Resolution(changed)
    # A send that occurred before the standing opt-out keyword but reached the fold after it: the
    # keyword applies to this person now, as it would have had the send come first.
    keyword = contacts.applied[standing.event_id]
    if person in keyword.persons:
        return Resolution(changed)
    now_applied = keyword._replace(persons=(*keyword.persons, person))
    applied = {**contacts.applied, standing.event_id: now_applied}
    emitted = _emit(standing.event_id, event.phone, now_applied._replace(persons=(person,)))
    return Resolution(replace(changed, applied=applied), emitted)


def _sortable(moment: datetime) -> str:
    # Always with microseconds and four-digit years, so that the strings sort as the times they name
    # (in UTC the offset is "+00:00": replaced with the "Z" they were always stored with).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@_apply.register
def _received(event: MessageReceived, contacts: Contacts, keywords: Keywords) -> Resolution:
    intent = classify(event.body, event.opt_out_type, keywords)
    if intent is not Intent.OPT_OUT and intent is not Intent.OPT_IN:
        return Resolution(contacts)  # HELP and any other body change nothing, however often
    opt_out = intent is Intent.OPT_OUT
    sender, at = event.sender, _sortable(event.occurred_at)
    this = Standing(at, event.event_id, opt_out)
    standing = contacts.standing.get(sender)
    later = standing is not None and standing > this
    recipients = contacts.recipients.get(sender, {})
    if later and standing is not None and standing.opt_out != opt_out:
        # A keyword of the other kind came after this one: it undid this one before it arrived.
        persons: Iterable[str] = ()
    elif opt_out:
        # Only persons who received from this sender here before: a STOP to a sender you never
        # heard from changes nobody's list.
        persons = contacts.recipients_by(sender, at)
    else:
        # Every list where the sender stands for this phone, whatever put it there.
        persons = recipients.keys() | contacts.blocked.get(sender, frozenset())
    described = _describe(event, tuple(sorted(persons)), keywords)
    changed = replace(
        contacts,
        applied={**contacts.applied, event.event_id: described},
        standing=contacts.standing if later else {**contacts.standing, sender: this},
    )
    return Resolution(changed, _emit(event.event_id, event.phone, described))


@_apply.register
def _blocked(event: MessageBlocked, contacts: Contacts, keywords: Keywords) -> Resolution:
    if event.person_id is not None:
        persons: tuple[str, ...] = (event.person_id,)
    else:
        persons = contacts.recipients_by(event.sender, _sortable(event.occurred_at))
        if not persons:
            # Nobody received from that sender here yet (the `message.sent` not published, or not
            # yet folded): nobody to put it on. Not marked applied, so a redelivery after the
            # `message.sent` arrived still resolves it.
            return Resolution(contacts)
    # Blocked is not received: the persons join `blocked`, never `recipients`.
    already = contacts.blocked.get(event.sender, frozenset())
    blocked = {**contacts.blocked, event.sender: already.union(persons)}
    described = _describe(event, persons, keywords)
    applied = {**contacts.applied, event.event_id: described}
    changed = replace(contacts, blocked=blocked, applied=applied)
    return Resolution(changed, _emit(event.event_id, event.phone, described))


def _describe(event: MessagingEvent, persons: tuple[str, ...], keywords: Keywords) -> Applied:
    """What a keyword or blocked event does to `persons`: the fields of the events it emits."""
    at = _sortable(event.occurred_at)
    if isinstance(event, MessageReceived):
        keyword = keyword_text(event.body)[:64] or None
        intent = classify(event.body, event.opt_out_type, keywords)
        cause: Cause = "keyword" if intent is Intent.OPT_OUT else "opt_in_keyword"
        return Applied(persons, cause, at, event.sender, keyword, event.messaging_service_sid)
    return Applied(persons, "send_blocked", at, event.sender, None, event.messaging_service_sid)


def _emit(source_event_id: str, phone: str, applied: Applied) -> tuple[PersonEvent, ...]:
    """The person events of `applied`, one per person: built from what was kept, never from a
    redelivery, so that they are the same to the byte every time."""
    occurred_at = datetime.fromisoformat(applied.occurred_at)
    if applied.cause == "opt_in_keyword":
        return tuple(
            OptOutCleared(
                event_id=derived_event_id(source_event_id, person_id),
                occurred_at=occurred_at,
                person_id=person_id,
                sender=applied.sender,
                phone=phone,
                keyword=applied.keyword,
                source_event_id=source_event_id,
                messaging_service_sid=applied.messaging_service_sid,
            )
            for person_id in applied.persons
        )
    return tuple(
        OptOutRecorded(
            event_id=derived_event_id(source_event_id, person_id),
            occurred_at=occurred_at,
            person_id=person_id,
            sender=applied.sender,
            phone=phone,
            cause="keyword" if applied.cause == "keyword" else "send_blocked",
            keyword=applied.keyword,
            source_event_id=source_event_id,
            messaging_service_sid=applied.messaging_service_sid,
        )
        for person_id in applied.persons
    )
