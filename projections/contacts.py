"""Stage 1, per phone: who received SMS from which sender at this phone, and what each inbound
keyword or blocked send means for those persons.

`resolve(contacts, event)` returns the phone's new contacts and the per-person events it emits.
Keyword and blocked events are applied once per `event_id`; a repeat returns the contacts unchanged
and emits the same person events again (stage 2 drops them by id), so an emit lost in a crash after
the table was written is made good by the redelivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import singledispatch
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Contacts:
    """What one phone has seen. Mappings are never changed in place: every change is a new object."""

    # sender -> persons who received SMS from it at this phone
    recipients: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # sender -> persons a send to this phone was blocked for (21610): a later opt-in clears them too
    blocked: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # keyword or blocked event id -> persons it was applied to, in emit order
    applied: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipients": {sender: sorted(persons) for sender, persons in self.recipients.items()},
            "blocked": {sender: sorted(persons) for sender, persons in self.blocked.items()},
            "applied": {event_id: list(persons) for event_id, persons in self.applied.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Contacts:
        if not data:
            return EMPTY_CONTACTS
        return cls(
            recipients={s: frozenset(p) for s, p in data["recipients"].items()},
            blocked={s: frozenset(p) for s, p in data["blocked"].items()},
            applied={e: tuple(p) for e, p in data["applied"].items()},
        )


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
    if event.person_id in persons:
        return Resolution(contacts)  # the same object: nothing to write
    recipients = {**contacts.recipients, event.sender: persons | {event.person_id}}
    return Resolution(replace(contacts, recipients=recipients))


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
    # Blocked is not received: the person joins `blocked`, never `recipients`.
    persons = contacts.blocked.get(event.sender, frozenset())
    blocked = {**contacts.blocked, event.sender: persons | {event.person_id}}
    applied = {**contacts.applied, event.event_id: (event.person_id,)}
    changed = replace(contacts, blocked=blocked, applied=applied)
    return Resolution(changed, _emit(event, (event.person_id,), keywords))


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
