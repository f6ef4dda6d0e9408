"""A realistic, reproducible mix of messaging events for benchmarks and soak runs: mostly sends, some
keywords (with shared phones and opt-ins), other inbound bodies, blocked sends and redeliveries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from schemas.events import keyword_form

_OPT_OUT = ["STOP", "stop", " Stop ", "UNSUBSCRIBE", "quit", "cancel", "END", "optout"]
_OPT_IN = ["START", "yes", "UNSTOP"]
_OTHER = ["Thanks!", "HELP", "info", "Stop please", "who is this?", "ok", "STOP PLEASE", "Stop."]
_START = datetime(2026, 1, 1, tzinfo=UTC)

T = TypeVar("T")


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of event; what is left are blocked sends."""

    sent: float = 0.90
    keyword: float = 0.04
    other_inbound: float = 0.05
    duplicate: float = 0.03  # of all events, a redelivery of an earlier one
    shared_phones: float = 0.05  # of persons, sharing a phone with the next person


# The senders of every log: twenty long codes and two short codes.
SENDERS = [f"+1415555{1000 + i:04d}" for i in range(20)] + ["12345", "67890"]


def phones(persons: int, mix: Mix = Mix()) -> list[str]:
    """Each person's phone in the logs `generate` makes over `persons` persons, by person index."""
    phone_of = [f"+1{2_000_000_000 + i * 7919 % 8_000_000_000:010d}" for i in range(persons)]
    for i in range(0, persons - 1, max(2, round(1 / mix.shared_phones))):
        phone_of[i + 1] = phone_of[i]  # two persons, one phone
    return phone_of


def generate(n: int, persons: int, seed: int = 7, mix: Mix = Mix()) -> Iterator[dict[str, Any]]:
    """`n` events (JSON-able dicts) over `persons` persons, the same for the same arguments."""
    rng = random.Random(seed)
    phone_of = phones(persons, mix)
    recent: Window[tuple[int, str]] = Window(10_000)  # (person, sender) pairs sent to, for keywords
    emitted: Window[dict[str, Any]] = Window(5000)  # what a redelivery repeats
    for i in range(n):
        at = (_START + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
        roll = rng.random()
        if emitted and roll < mix.duplicate:
            yield rng.choice(emitted)
            continue
        roll = rng.random()
        sid = f"SM{rng.getrandbits(128):032x}"
        if roll < mix.sent or not recent:
            person = rng.randrange(persons)
            sender = rng.choice(SENDERS)
            recent.append((person, sender))
            event = _sent(sid, at, person, phone_of[person], sender)
        elif roll < mix.sent + mix.keyword:
            person, sender = rng.choice(recent)
            body = rng.choice(_OPT_IN if rng.random() < 0.2 else _OPT_OUT)
            event = _received(sid, at, phone_of[person], sender, body)
        elif roll < mix.sent + mix.keyword + mix.other_inbound:
            person, sender = rng.choice(recent)
            event = _received(sid, at, phone_of[person], sender, rng.choice(_OTHER))
        else:
            person, sender = rng.choice(recent)
            event = _blocked(sid, at, person, phone_of[person], sender)
        emitted.append(event)
        yield event


class Window(Generic[T]):
    """The last `size` items appended, oldest first: what `items[-size:]` of a list of every item
    would hold, without the list (millions of events) or the copy per look. `random.choice` picks
    from it exactly as from that slice (same length, same index), so a seed gives the same log."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: list[T] = []
        self._oldest = 0  # where the oldest item is once the window is full

    def append(self, item: T) -> None:
        if len(self._items) < self._size:
            self._items.append(item)
        else:
            self._items[self._oldest] = item
            self._oldest = (self._oldest + 1) % self._size

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> T:
        if not 0 <= index < len(self._items):
            raise IndexError(index)
        return self._items[(self._oldest + index) % len(self._items)]


def person_id(index: int) -> str:
    return f"person-{index}"


def _sent(sid: str, at: str, person: int, phone: str, sender: str) -> dict[str, Any]:
    return {
        "type": "message.sent",
        "event_id": sid,
        "schema_version": 1,
        "occurred_at": at,
        "person_id": person_id(person),
        "phone": phone,
        "sender": sender,
        "message_sid": sid,
        "messaging_service_sid": None,
    }


def _received(sid: str, at: str, phone: str, sender: str, body: str) -> dict[str, Any]:
    # At the version our webhook writes (2, with the keyword): version 1 values are upcast first.
    return {
        "type": "message.received",
        "event_id": sid,
        "schema_version": 2,
        "keyword": keyword_form(body),
        "occurred_at": at,
        "phone": phone,
        "sender": sender,
        "body": body,
        "message_sid": sid,
        "account_sid": "AC00000000000000000000000000000000",
        "messaging_service_sid": None,
        "opt_out_type": None,
    }


def _blocked(sid: str, at: str, person: int, phone: str, sender: str) -> dict[str, Any]:
    return {
        "type": "message.blocked",
        "event_id": sid,
        "schema_version": 1,
        "occurred_at": at,
        "person_id": person_id(person),
        "phone": phone,
        "sender": sender,
        "message_sid": sid,
        "error_code": 21610,
        "messaging_service_sid": None,
    }
