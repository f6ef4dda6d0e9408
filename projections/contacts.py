"""Stage 1, per phone: who received SMS from which sender at this phone, and what each inbound
keyword or blocked send means for those persons.

`resolve(contacts, event)` returns the phone's new contacts and the per-person events it emits.
Keyword and blocked events are applied once per `event_id`; a repeat returns the contacts unchanged
and emits the same person events again (stage 2 drops them by id), so an emit lost in a crash after
the table was written is made good by the redelivery.

A `message.blocked` without a person (a Twilio status callback that did not name one) is resolved
from the recent message sids of the phone: the last `RECENT_SENDS` sends to it, by time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import singledispatch
from typing import Any, NamedTuple

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

# Sends remembered per phone to resolve a status callback's 21610 to the person it was sent to.
# Twilio reports a Messaging Service's 21610 within seconds to minutes of the send; 32 sends to one
# phone in that time is far more than any sender does, and it bounds what a phone's entry holds.
RECENT_SENDS = 32


class RecentSend(NamedTuple):
    """One send to this phone: its message sid, when, and to whom. Ordered by time, then sid.

    A named tuple rather than a dataclass: a phone that is texted often holds RECENT_SENDS of them,
    all read and written again with every send, and a tuple is built, compared and encoded in C."""

    occurred_at: str  # RFC 3339 in UTC with microseconds: sorts as the time it names
    message_sid: str
    person_id: str


@dataclass(frozen=True, slots=True)
class Contacts:
    """What one phone has seen. Mappings are never changed in place: every change is a new object."""

    # sender -> persons who received SMS from it at this phone
    recipients: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # sender -> persons a send to this phone was blocked for (21610): a later opt-in clears them too
    blocked: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # keyword or blocked event id -> persons it was applied to, in emit order
    applied: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the latest RECENT_SENDS sends to this phone, oldest first: the latest by time, not by arrival,
    # so a late redelivery of an old send changes nothing and a replay keeps the same ones
    recent_sends: tuple[RecentSend, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "recipients": {sender: sorted(persons) for sender, persons in self.recipients.items()},
            "blocked": {sender: sorted(persons) for sender, persons in self.blocked.items()},
            "applied": {event_id: list(persons) for event_id, persons in self.applied.items()},
            "recent_sends": [list(send) for send in self.recent_sends],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Contacts:
        if not data:
            return EMPTY_CONTACTS
        return cls(
            recipients={s: frozenset(p) for s, p in data["recipients"].items()},
            blocked={s: frozenset(p) for s, p in data["blocked"].items()},
            applied={e: tuple(p) for e, p in data["applied"].items()},
            # absent from contacts stored before sends were remembered
            recent_sends=tuple(map(RecentSend._make, data.get("recent_sends", ()))),
        )

    def person_sent(self, message_sid: str) -> str | None:
        """The person the remembered send `message_sid` went to, if it is one of the recent sends."""
        return next((s.person_id for s in self.recent_sends if s.message_sid == message_sid), None)


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
    if event.event_id in contacts.applied:
        persons = contacts.applied[event.event_id]
        return Resolution(contacts, _emit(event, persons, keywords))
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
    persons = contacts.recipients.get(event.sender, frozenset())
    recent = _remember(contacts.recent_sends, event)
    if event.person_id in persons and recent == contacts.recent_sends:
        return Resolution(contacts)  # the same object: nothing to write
    recipients = {**contacts.recipients, event.sender: persons | {event.person_id}}
    # Built, not `replace()`d: this is the rule nine events in ten take, and replace() costs more
    # than the rule itself.
    return Resolution(Contacts(recipients, contacts.blocked, contacts.applied, recent))


def _remember(recent: tuple[RecentSend, ...], event: MessageSent) -> tuple[RecentSend, ...]:
    send = RecentSend(_sortable(event.occurred_at), event.message_sid, event.person_id)
    if not recent or send > recent[-1]:
        return (*recent, send)[-RECENT_SENDS:]  # the usual case: sends arrive in time order
    if send in recent:
        return recent
    return tuple(sorted((*recent, send)))[-RECENT_SENDS:]


def _sortable(moment: datetime) -> str:
    # Always with microseconds and four-digit years, so that the strings sort as the times they name
    # (in UTC the offset is "+00:00": replaced with the "Z" they were always stored with).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@_apply.register
def _received(event: MessageReceived, contacts: Contacts, keywords: Keywords) -> Resolution:
    intent = classify(event.body, event.opt_out_type, keywords)
    if intent is Intent.OPT_OUT:
        # Only persons who received from this sender here: a STOP to a sender you never heard
        # from changes nobody's list.
        persons = contacts.recipients.get(event.sender, frozenset())
    elif intent is Intent.OPT_IN:
        # Every list where the sender stands for this phone, whatever put it there.
        persons = contacts.recipients.get(event.sender, frozenset()) | contacts.blocked.get(
            event.sender, frozenset()
        )
    else:
        return Resolution(contacts)  # HELP and any other body change nothing, however often
    applied_to = tuple(sorted(persons))
    applied = {**contacts.applied, event.event_id: applied_to}
    return Resolution(replace(contacts, applied=applied), _emit(event, applied_to, keywords))


@_apply.register
def _blocked(event: MessageBlocked, contacts: Contacts, keywords: Keywords) -> Resolution:
    person_id = event.person_id or contacts.person_sent(event.message_sid or "")
    if person_id is None:
        # A sid this phone does not remember (older than the recent sends, or a send never
        # published): nobody to put it on. Not marked applied, so a redelivery after the
        # `message.sent` arrived still resolves it.
        return Resolution(contacts)
    # Blocked is not received: the person joins `blocked`, never `recipients`.
    persons = contacts.blocked.get(event.sender, frozenset())
    blocked = {**contacts.blocked, event.sender: persons | {person_id}}
    applied = {**contacts.applied, event.event_id: (person_id,)}
    changed = replace(contacts, blocked=blocked, applied=applied)
    return Resolution(changed, _emit(event, (person_id,), keywords))


def _emit(event: MessagingEvent, persons: tuple[str, ...], keywords: Keywords) -> tuple[PersonEvent, ...]:
    if isinstance(event, MessageBlocked):
        return tuple(
            OptOutRecorded(
                event_id=derived_event_id(event.event_id, person_id),
                occurred_at=event.occurred_at,
                person_id=person_id,
                sender=event.sender,
                phone=event.phone,
                cause="send_blocked",
                source_event_id=event.event_id,
                messaging_service_sid=event.messaging_service_sid,
            )
            for person_id in persons
        )
    if not isinstance(event, MessageReceived):
        return ()
    intent = classify(event.body, event.opt_out_type, keywords)
    keyword = keyword_text(event.body)[:64] or None
    if intent is Intent.OPT_OUT:
        return tuple(
            OptOutRecorded(
                event_id=derived_event_id(event.event_id, person_id),
                occurred_at=event.occurred_at,
                person_id=person_id,
                sender=event.sender,
                phone=event.phone,
                cause="keyword",
                keyword=keyword,
                source_event_id=event.event_id,
                messaging_service_sid=event.messaging_service_sid,
            )
            for person_id in persons
        )
    return tuple(
        OptOutCleared(
            event_id=derived_event_id(event.event_id, person_id),
            occurred_at=event.occurred_at,
            person_id=person_id,
            sender=event.sender,
            phone=event.phone,
            keyword=keyword,
            source_event_id=event.event_id,
            messaging_service_sid=event.messaging_service_sid,
        )
        for person_id in persons
    )
