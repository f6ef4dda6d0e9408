"""Which inbound messages listed by Twilio a backfill publishes, and in what order.

A message whose sid is already in the log is known: publishing it again would change nothing (the
fold applies an id once), so it is counted and left out. The others are published oldest first.
One exception: a missed keyword older than a keyword the log already holds for the same phone and
sender (RCS and SMS as one, as Twilio unifies them; WhatsApp apart). Twilio applied them in time
order, so the later one is what stands; published now, the old one would be folded after it and
undo it (a missed STOP would cancel a later START). It is counted as superseded and left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from projections.keywords import DEFAULT_KEYWORDS, Intent, Keywords, classify
from schemas.addresses import UNIFIED, address_key
from schemas.events import MessageReceived


@dataclass(frozen=True)
class BackfillPlan:
    publish: tuple[MessageReceived, ...] = ()
    known: tuple[MessageReceived, ...] = ()
    superseded: tuple[MessageReceived, ...] = field(default=())


def plan_backfill(
    listed: Iterable[MessageReceived],
    in_log: Iterable[MessageReceived],
    keywords: Keywords = DEFAULT_KEYWORDS,
) -> BackfillPlan:
    """Split the messages Twilio listed by what the log (`in_log`, its `message.received` events)
    already holds."""
    known_sids: set[str] = set()
    latest_keyword: dict[tuple[str, str], datetime] = {}
    for event in in_log:
        known_sids.add(event.message_sid)
        if _is_keyword(event, keywords):
            key = _phone_and_sender(event)
            latest_keyword[key] = max(event.occurred_at, latest_keyword.get(key, event.occurred_at))

    unique = {event.message_sid: event for event in listed}.values()
    publish: list[MessageReceived] = []
    known: list[MessageReceived] = []
    superseded: list[MessageReceived] = []
    for event in sorted(unique, key=lambda e: (e.occurred_at, e.message_sid)):
        if event.message_sid in known_sids:
            known.append(event)
        elif _is_keyword(event, keywords) and event.occurred_at < latest_keyword.get(
            _phone_and_sender(event), event.occurred_at
        ):
            superseded.append(event)
        else:
            publish.append(event)
    return BackfillPlan(tuple(publish), tuple(known), tuple(superseded))


def _is_keyword(event: MessageReceived, keywords: Keywords) -> bool:
    return classify(event.body, event.opt_out_type, keywords) in (Intent.OPT_OUT, Intent.OPT_IN)


def _phone_and_sender(event: MessageReceived) -> tuple[str, str]:
    # An RCS and an SMS keyword to one address are one opt-out to Twilio (unified); a WhatsApp keyword
    # never stands for the SMS number it shares: there the channel is part of the sender.
    channel = "sms" if event.channel in UNIFIED else event.channel
    return (event.phone, address_key(channel, event.sender))
