"""The per-batch rules of the two stages, as plain functions over a `BatchUnit`
(streams.engine.unit_of_work): decode each record once (a bad one is a dead letter), forward one
keyed or placed elsewhere, fold, count duplicates, write each key once per batch (every key it
touched when the batch is a redelivery) and send what the folds emitted. The agents
(streams.pipeline.agents) run them; tests/unit/test_stages.py runs them in memory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from projections.contacts import Contacts, resolve
from projections.keywords import Keywords
from projections.opt_outs import PersonOptOuts, project
from schemas.codec import encode
from schemas.errors import DecodeError, FoldError
from streams.engine.decoded_states import DecodedStates
from streams.engine.tables import KnownKeys, storable, stored
from streams.engine.topics import OPT_OUTS, PERSON_EVENTS
from streams.engine.unit_of_work import BatchUnit
from streams.pipeline.admission import messaging_event
from streams.pipeline.admission import person_event as person_event_of
from streams.pipeline.person_history import history_writes, is_history_key

# Whether a record, decoded, belongs to another key or partition; if so it has been sent there
# (streams.pipeline.forwarding.Forwarding.elsewhere).
Forward = Callable[[Any, bytes, BaseModel], Awaitable[bool]]

DUPLICATE = "duplicate"  # not an event type: the events folded as duplicates


async def resolve_records(
    unit: BatchUnit,
    records: Sequence[Any],
    *,
    keywords: Keywords,
    region: str,
    max_ahead: timedelta,
    forward: Forward,
    decoded: DecodedStates[Contacts] | None = None,
) -> Counter[str]:
    """Stage 1, per phone: fold the batch's messaging events into the contacts; the person events
    the folds emit are sent. The events folded, by type (and `DUPLICATE`). `decoded`: the stage's
    memo of stored contacts (streams.engine.decoded_states), kept from batch to batch."""
    if decoded is None:
        decoded = stored_contacts()
    loaded: dict[bytes, Contacts] = {}  # as stored before this batch
    states: dict[bytes, Contacts] = {}
    known = KnownKeys(states, unit)  # phones stored or folded: not parsed again
    folded: Counter[str] = Counter()
    for record in records:
        try:
            message = messaging_event(record, region=region, max_ahead=max_ahead, known_phones=known)
        except DecodeError as exc:
            await unit.dead_letter(record, exc)
            continue
        key = message.phone.encode()
        if await forward(record, key, message):
            continue
        if key in states:
            contacts = states[key]
        else:
            contacts = loaded[key] = decoded.get(key, unit.get(key))
        try:
            resolution = resolve(contacts, message, keywords)
        except Exception as exc:  # a defect of the fold: this event aside, not the batch
            await unit.dead_letter(record, FoldError(message.type, exc))
            continue
        states[key] = resolution.contacts
        if resolution.contacts is contacts and message.event_id in contacts.applied:
            folded[DUPLICATE] += 1
        for emitted in resolution.emitted:
            await unit.send(PERSON_EVENTS, emitted.person_id.encode(), encode(emitted))
        folded[message.type] += 1
    # A redelivery writes every key it touched (the store may be ahead of its changelog,
    # streams.engine.table_writes); any other batch only the keys whose contacts changed.
    for key, contacts in states.items():
        if unit.redelivered or contacts is not loaded[key]:
            value = storable(contacts.to_json())
            await unit.put(key, value)
            decoded.remember(key, value, contacts)  # the next batch's read of the phone, unless restored
    return folded


def stored_contacts() -> DecodedStates[Contacts]:
    """A memo of stored contacts for `resolve_records`: one per stage 1 agent."""
    return DecodedStates(lambda key, raw: Contacts.from_json(stored(raw)))


async def project_records(
    unit: BatchUnit,
    records: Sequence[Any],
    *,
    max_ahead: timedelta,
    forward: Forward,
    list_size: Callable[[int], None] = lambda size: None,
) -> Counter[str]:
    """Stage 2, per person: fold the batch's person events into the lists; each list that changed
    is sent to sms-opt-outs (`list_size` sees its length). The events folded, by type."""
    folded: Counter[str] = Counter()
    loaded: dict[bytes, PersonOptOuts] = {}  # as stored before this batch
    states: dict[bytes, PersonOptOuts] = {}
    for record in records:
        try:
            person_event = person_event_of(record, max_ahead=max_ahead)
        except DecodeError as exc:
            await unit.dead_letter(record, exc)
            continue
        key = person_event.person_id.encode()
        if await forward(record, key, person_event):
            continue
        if key not in states:
            state = stored(unit.get(key))
            loaded[key] = states[key] = PersonOptOuts.from_json(person_event.person_id, state)
        before_event = states[key]
        try:
            projected = project(before_event, person_event)
        except Exception as exc:  # a defect of the fold: this event aside, not the batch
            await unit.dead_letter(record, FoldError(person_event.type, exc))
            continue
        states[key] = projected
        if projected is before_event:
            folded[DUPLICATE] += 1
        folded[person_event.type] += 1
    for key, state in states.items():
        before = loaded[key]
        # A redelivery writes and sends again all it touched: the crash may have lost the
        # changelog records and the list the store already holds. Otherwise only what changed
        # (a state read with its history inline, as stored before it was kept apart, is moved).
        if unit.redelivered or state is not before or before.history:
            await unit.put(key, storable(state.to_json()))
            for chunk, changes in history_writes(state, unit.get, rewrite=unit.redelivered):
                await unit.put(chunk, changes)
        # The whole list, not only its entries: an opt-out recorded and cleared within
        # one batch leaves the entries as they were but changes the list's history.
        listed = state.as_list()
        if unit.redelivered or listed != before.as_list():
            await unit.send(OPT_OUTS, key, encode(listed))
            list_size(len(state.entries))
    return folded


def published_list(key: bytes, value: bytes) -> bytes | None:
    """The list `sms-opt-outs` holds for a stored person (`key`, `value` of the opt-outs table), as
    stage 2 publishes it; None for a key that is not a person (a chunk of a history)."""
    if is_history_key(key):
        return None
    return encode(PersonOptOuts.from_json(key.decode(), stored(value)).as_list())
