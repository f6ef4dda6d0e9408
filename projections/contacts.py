"""Stage 1, per phone: who received SMS from which sender at this phone, and what each inbound
keyword or blocked send means for those persons.

`resolve(contacts, event)` returns the phone's new contacts and the per-person events it emits.
Keyword and blocked events are applied once per `event_id`; a repeat returns the contacts unchanged
and emits the same person events again, to the byte (stage 2 drops them by id), so an emit lost in
a crash after the table was written is made good by the redelivery, whatever the redelivery carries
(a webhook delivered twice is stamped with two receipt times).

"Before" is the events' `occurred_at`, not their order in the log (docs/rules.md): a keyword applies to
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
from schemas.addresses import UNIFIED, address_key, covers, key_channel, key_sender
from schemas.events import (
    MessageBlocked,
    MessageReceived,
    MessageSent,
    MessagingEvent,
    OptOutCleared,
    OptOutRecorded,
    PersonEvent,
    RecordedCause,
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
    channel: str = "sms"  # the channel it came on, and of `sender` (stored before channels: SMS)
    # the other senders (address keys) it covered, each with the persons it applied to there
    covered: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def key(self) -> str:
        return address_key(self.channel, self.sender)

    def persons_at(self, key: str) -> tuple[str, ...] | None:
        """The persons it applied to at sender `key`; None when it does not cover that sender."""
        if key == self.key:
            return self.persons
        return next((persons for covered, persons in self.covered if covered == key), None)

    def with_person(self, key: str, person: str) -> Applied:
        if key == self.key:
            return self._replace(persons=(*self.persons, person))
        if self.persons_at(key) is None:  # a sender it covers that was not known when it was folded
            return self._replace(covered=(*self.covered, (key, (person,))))
        covered = tuple((k, (*p, person) if k == key else p) for k, p in self.covered)
        return self._replace(covered=covered)

    def only(self, key: str, person: str) -> Applied:
        """Itself as applied to `person` at sender `key` alone: what a late send makes it emit."""
        if key == self.key:
            return self._replace(persons=(person,), covered=())
        return self._replace(persons=(), covered=((key, (person,)),))


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
    # Messaging Service sid -> the senders that sent to this phone through it
    services: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        stored = {
            "recipients": {sender: dict(persons) for sender, persons in self.recipients.items()},
            "blocked": {sender: sorted(persons) for sender, persons in self.blocked.items()},
            "applied": _applied_to_json(self.applied),
            "standing": {sender: list(keyword) for sender, keyword in self.standing.items()},
        }
        if self.services:  # left out while empty: the stored form of a phone without any is as it was
            stored["services"] = {sid: sorted(senders) for sid, senders in self.services.items()}
        return stored

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
            services={sid: frozenset(s) for sid, s in data.get("services", {}).items()},
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

    def get(self, event_id: str, default: Any = None) -> Any:
        # Every event of the phone asks (is it a redelivery?), and nearly all are not: Mapping's own
        # `get` would raise and catch a KeyError for each, which cost more than the rest of a send's fold.
        applied = self._read.get(event_id)
        if applied is not None:
            return applied
        stored = self.stored.get(event_id)
        if stored is None:
            return default
        applied = self._read[event_id] = _applied(stored)
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
    return {event_id: _applied_row(a) for event_id, a in applied.items()}


def _applied_row(applied: Applied) -> list[Any]:
    row: list[Any] = [list(applied.persons), *applied[1:6]]
    # The channel fields only when they say more than SMS alone: an SMS keyword is stored as it was.
    if applied.covered:
        row += [applied.channel, [[key, list(persons)] for key, persons in applied.covered]]
    elif applied.channel != "sms":
        row.append(applied.channel)
    return row


def _applied(stored: list[Any]) -> Applied:
    if not stored or isinstance(stored[0], str):  # persons only: stored before the fields were kept
        return Applied(tuple(stored), "", _LONG_AGO, "", None, None)
    persons, *fields = stored
    if len(fields) > 6:
        fields[6] = tuple((key, tuple(p)) for key, p in fields[6])
    return Applied(tuple(persons), *fields)


EMPTY_CONTACTS = Contacts()


@dataclass(frozen=True, slots=True)
class Resolution:
    contacts: Contacts
    emitted: tuple[PersonEvent, ...] = ()


def derived_event_id(source_event_id: str, person_id: str, covered: str | None = None) -> str:
    """The id of the person event that `source_event_id` causes for `person_id`: the same on every
    redelivery and replay, different for every person sharing the phone. `covered`: the sender
    (address key) of another channel it covers, for which it causes a change of its own."""
    name = f"{source_event_id}\x1f{person_id}" + ("" if covered is None else f"\x1f{covered}")
    return str(uuid.uuid5(_DERIVED_IDS, name))


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
    person, sender = event.person_id, address_key(event.channel, event.sender)
    sent_at = _sortable(event.occurred_at)
    persons = contacts.recipients.get(sender, {})
    first = persons.get(person)
    service = event.messaging_service_sid
    in_service = service is None or sender in contacts.services.get(service, frozenset())
    if first is not None and first <= sent_at and in_service:
        return Resolution(contacts)  # the same object: nothing to write (nine events in ten)
    services = contacts.services
    if not in_service and service is not None:
        services = {**services, service: contacts.services.get(service, frozenset()) | {sender}}
    if first is not None and first <= sent_at:
        return Resolution(replace(contacts, services=services))
    recipients = {**contacts.recipients, sender: {**persons, person: sent_at}}
    changed = Contacts(recipients, contacts.blocked, contacts.applied, contacts.standing, services)
    standing = contacts.standing.get(sender)
    if standing is None:
        # A sender no keyword has named yet: one on the other unified channel may cover it (same
        # address or Messaging Service), folded before this sender was known here. It stands for it.
        standing = _covering(contacts, event, sender)
        if standing is not None:
            changed = replace(changed, standing={**contacts.standing, sender: standing})
    if standing is None or not standing.opt_out or sent_at > standing.occurred_at:
        return Resolution(changed)
    # A send that occurred before the standing opt-out keyword but reached the fold after it: the
    # keyword applies to this person now, as it would have had the send come first.
    keyword = contacts.applied[standing.event_id]
    if person in (keyword.persons_at(sender) or ()):
        return Resolution(changed)
    now_applied = keyword.with_person(sender, person)
    applied = {**contacts.applied, standing.event_id: now_applied}
    emitted = _emit(standing.event_id, event.phone, now_applied.only(sender, person))
    return Resolution(replace(changed, applied=applied), emitted)


def _covering(contacts: Contacts, event: MessageSent, sender: str) -> Standing | None:
    """The latest keyword of the other unified channel that covers `sender` (sent `event`), or None."""
    if event.channel not in UNIFIED:
        return None
    service = event.messaging_service_sid
    found: Standing | None = None
    for standing in contacts.standing.values():
        keyword = contacts.applied.get(standing.event_id)
        if keyword is None or keyword.channel not in UNIFIED or keyword.channel == event.channel:
            continue
        same_service = service is not None and keyword.messaging_service_sid == service
        if (keyword.sender == event.sender or same_service) and (found is None or standing > found):
            found = standing
    return found


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
    at = _sortable(event.occurred_at)
    this = Standing(at, event.event_id, opt_out)
    own = address_key(event.channel, event.sender)
    standing = dict(contacts.standing)
    persons_by_key: dict[str, tuple[str, ...]] = {}
    for key in (own, *covered_keys(contacts, event)):
        persons_by_key[key] = _keyword_persons(contacts, key, this)
        if key not in standing or standing[key] < this:
            standing[key] = this
    described = _describe(event, persons_by_key.pop(own), keywords)._replace(
        covered=tuple(persons_by_key.items())
    )
    changed = replace(contacts, applied={**contacts.applied, event.event_id: described}, standing=standing)
    return Resolution(changed, _emit(event.event_id, event.phone, described))


def covered_keys(contacts: Contacts, event: MessageReceived) -> tuple[str, ...]:
    """The senders of other channels a keyword on `event.channel` covers at this phone (Twilio's
    unified opt-out of RCS, SMS and MMS): those with the same address, and those that sent through
    the same Messaging Service. Only senders this phone has seen; sorted. A WhatsApp keyword: none."""
    if event.channel not in UNIFIED:
        return ()
    others = [c for c in UNIFIED if c != event.channel]
    seen = contacts.recipients.keys() | contacts.blocked.keys()
    keys = {address_key(c, event.sender) for c in others} & seen
    service = event.messaging_service_sid
    if service is not None:
        keys |= {k for k in contacts.services.get(service, frozenset()) if key_channel(k) in others}
    return tuple(sorted(keys))


def _keyword_persons(contacts: Contacts, key: str, this: Standing) -> tuple[str, ...]:
    standing = contacts.standing.get(key)
    if standing is not None and standing > this and standing.opt_out != this.opt_out:
        # A keyword of the other kind came after this one: it undid this one before it arrived.
        return ()
    if this.opt_out:
        # Only persons who received from this sender here before: a STOP to a sender you never
        # heard from changes nobody's list.
        return contacts.recipients_by(key, this.occurred_at)
    # Every list where the sender stands for this phone, whatever put it there.
    persons: Iterable[str] = contacts.recipients.get(key, {}).keys() | contacts.blocked.get(key, frozenset())
    return tuple(sorted(persons))


@_apply.register
def _blocked(event: MessageBlocked, contacts: Contacts, keywords: Keywords) -> Resolution:
    sender = address_key(event.channel, event.sender)
    if event.person_id is not None:
        persons: tuple[str, ...] = (event.person_id,)
    else:
        persons = contacts.recipients_by(sender, _sortable(event.occurred_at))
        if not persons:
            # Nobody received from that sender here yet (the `message.sent` not published, or not
            # yet folded): nobody to put it on. Not marked applied, so a redelivery after the
            # `message.sent` arrived still resolves it.
            return Resolution(contacts)
    # Blocked is not received: the persons join `blocked`, never `recipients`.
    already = contacts.blocked.get(sender, frozenset())
    blocked = {**contacts.blocked, sender: already.union(persons)}
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
        return Applied(persons, cause, at, event.sender, keyword, event.messaging_service_sid, event.channel)
    return Applied(
        persons, "send_blocked", at, event.sender, None, event.messaging_service_sid, event.channel
    )


def _emit(source_event_id: str, phone: str, applied: Applied) -> tuple[PersonEvent, ...]:
    """The person events of `applied`, one per person and sender: built from what was kept, never
    from a redelivery, so that they are the same to the byte every time."""
    occurred_at = datetime.fromisoformat(applied.occurred_at)
    targets: list[tuple[str, str, str | None]] = [(applied.key, person, None) for person in applied.persons]
    targets += [(key, person, key) for key, persons in applied.covered for person in persons]
    events: list[PersonEvent] = []
    for key, person_id, covered in targets:
        channel = key_channel(key)
        fields: dict[str, Any] = {
            "event_id": derived_event_id(source_event_id, person_id, covered),
            "occurred_at": occurred_at,
            "person_id": person_id,
            "channel": channel,
            "sender": key_sender(key),
            "phone": phone,
            "keyword": applied.keyword,
            "source_event_id": source_event_id,
            "messaging_service_sid": applied.messaging_service_sid,
            "source_channel": applied.channel,
            "covers": covers(channel),
        }
        if applied.cause == "opt_in_keyword":
            events.append(OptOutCleared(**fields))
        else:
            cause: RecordedCause = "keyword" if applied.cause == "keyword" else "send_blocked"
            events.append(OptOutRecorded(**fields, cause=cause))
    return tuple(events)
