"""An operator removes one sender from a person's list: normalise the names, decide on the folded
history (a retry with the same Idempotency-Key appends nothing), append to the person log, and wait,
bounded, until the list shows it. The JSON API (and through it the operator's page) calls this."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from projections.opt_outs import PersonOptOuts, entry_key
from projections.overrides import override
from schemas import inputs
from schemas.addresses import address_key
from schemas.errors import OptOutsError
from schemas.events import AnyPersonEvent, OptOutOverridden
from schemas.inputs import excerpt
from streams.services.override_log import NotAppended

IDEMPOTENCY_KEY = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")  # visible ASCII, as HTTP header values are
# The namespace of override ids derived from an Idempotency-Key (uuid5 of person and key).
_OVERRIDE_IDS = uuid.UUID("0b3c5a4e-8f1d-5c2b-9a57-6e0d3f1c2b71")


class BadIdempotencyKey(OptOutsError):
    """An Idempotency-Key that is not 1 to 200 visible ASCII characters."""


class KeyReused(OptOutsError):
    """An Idempotency-Key already used for another change: nothing is appended."""


class NotAcknowledged(OptOutsError):
    """The brokers did not acknowledge the override in time: it may or may not be in the log."""

    def __init__(self, event: OptOutOverridden, cause: NotAppended) -> None:
        super().__init__(str(cause))
        self.event = event


class PersonReads(Protocol):
    """What an override reads (streams.services.lists.Lists)."""

    def state(self, person_id: str) -> PersonOptOuts: ...

    def person(self, person_id: str) -> PersonOptOuts: ...


class PersonLog(Protocol):
    """Where an override is appended (streams.services.override_log.OverrideLog): acknowledged, or
    `NotAppended`."""

    async def append(self, event: OptOutOverridden) -> None: ...


@dataclass(frozen=True)
class Removal:
    event: OptOutOverridden
    list_updated: bool  # the list showed it before the wait ended (always, for a retry)


def override_id(person_id: str, idempotency_key: str | None) -> str:
    """The override's event id: derived from the client's Idempotency-Key when it sent one (a retry
    then makes the same event, which the fold applies once), else a new one."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadIdempotencyKey(
            f"{IDEMPOTENCY_KEY} {excerpt(idempotency_key)} must be 1 to 200 visible ASCII characters"
        )
    return str(uuid.uuid5(_OVERRIDE_IDS, f"{person_id}/{idempotency_key}"))  # no '/' in a person id


def earlier_override(
    history: tuple[AnyPersonEvent, ...] | list[AnyPersonEvent], event_id: str, sender: str, phone: str | None
) -> OptOutOverridden | None:
    """The override already in the history under `event_id` (a retry), or None; `KeyReused` when
    that id is another change, or removed another entry (an Idempotency-Key used twice)."""
    done = next((event for event in history if event.event_id == event_id), None)
    if done is None:
        return None
    if (
        not isinstance(done, OptOutOverridden)
        or address_key(done.channel, done.sender) != sender
        or phone not in (None, done.phone)
    ):
        raise KeyReused(
            f"this {IDEMPOTENCY_KEY} was used for another change ({done.type} of {done.sender} at"
            f" {done.phone}): use a new key for a new override"
        )
    return done


@dataclass(frozen=True)
class Overrides:
    lists: PersonReads
    log: PersonLog
    default_region: str
    wait: float  # seconds to wait for the list to show an override (read-your-write)

    async def remove(
        self,
        person_id: str,
        sender: str,
        phone: str | None,
        *,
        actor: str,
        reason: str,
        idempotency_key: str | None,
    ) -> Removal:
        """Raises `InvalidInput`, `BadIdempotencyKey`, `KeyReused`, `NotOnList`, `AmbiguousEntry`
        (nothing appended) or `NotAcknowledged` (outcome unknown)."""
        sender = inputs.sender(sender, self.default_region)
        phone = inputs.phone(phone, self.default_region) if phone else None
        event_id = override_id(person_id, idempotency_key)
        state = self.lists.person(person_id)
        done = earlier_override(state.history, event_id, sender, phone)
        if done is not None:  # a retry of an override that is in the log: nothing more to append
            return Removal(done, list_updated=True)
        event = override(
            state, sender, phone, actor=actor, reason=reason, override_id=event_id, at=datetime.now(UTC)
        )
        try:
            await self.log.append(event)
        except NotAppended as exc:
            raise NotAcknowledged(event, exc) from exc
        return Removal(event, await self.until_folded(person_id, event))

    async def until_folded(self, person_id: str, event: OptOutOverridden) -> bool:
        """Read-your-write: wait, bounded, until the list shows the override."""
        deadline = time.monotonic() + self.wait
        while True:
            removed = self.lists.state(person_id).removed.get(entry_key(event))
            if removed is not None and removed >= event.occurred_at:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
