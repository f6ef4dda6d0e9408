"""An operator's removal of an entry, decided against the person's current list. The decision is pure;
the caller appends the event it returns to the person log."""

from __future__ import annotations

from datetime import datetime

from projections.opt_outs import PersonOptOuts
from schemas.errors import AmbiguousEntry, NotOnList
from schemas.events import OptOutOverridden


def override(
    state: PersonOptOuts,
    sender: str,
    phone: str | None,
    *,
    actor: str,
    reason: str,
    override_id: str,
    at: datetime,
) -> OptOutOverridden:
    """The compensating event that removes `sender` (at `phone`, when given) from the list.
    `sender` is the entry's address key: the number for SMS, `whatsapp:+1...` on WhatsApp.

    Raises NotOnList when there is no such entry, and AmbiguousEntry when the sender is listed for
    several phones and none was named: an override never removes more than the operator said.
    """
    keys = sorted(key for key in state.entries if key[0] == sender and phone in (None, key[1]))
    if not keys:
        raise NotOnList(state.person_id, sender, phone)
    if len(keys) > 1:
        raise AmbiguousEntry(state.person_id, sender, [p for _, p in keys])
    entry = state.entries[keys[0]]
    return OptOutOverridden(
        event_id=override_id,
        occurred_at=at,
        person_id=state.person_id,
        channel=entry.channel,
        sender=entry.sender,
        phone=entry.phone,
        source_event_id=override_id,
        keyword=entry.keyword,
        messaging_service_sid=entry.messaging_service_sid,
        source_channel=entry.channel,
        covers=entry.covers,
        actor=actor,
        reason=reason,
    )
