"""What Twilio's webhook requests mean: the URL Twilio signed, the form it posted, and the events of
the contract that an inbound message or a status callback becomes. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, get_args
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from schemas.addresses import NO_PHONE_PREFIXES, Channel, as_channel, normalise_channel_sender, split_address
from schemas.errors import InvalidNumber, OptOutsError
from schemas.events import MessageBlocked, MessageReceived, OptOutType
from schemas.phones import normalise_phone

MAX_WEBHOOK_BYTES = 64 * 1024
_MAX_FIELDS = 500  # Twilio posts a few dozen; a form of thousands is not Twilio's

UNSUBSCRIBED = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"
BLOCKING_STATUSES = frozenset({"failed", "undelivered"})

# Message statuses Twilio documents; anything else is counted as "other", so that a metric label
# never takes a value a caller made up.
MESSAGE_STATUSES = frozenset(
    {
        "accepted", "scheduled", "canceled", "queued", "sending", "sent", "failed", "delivered",
        "undelivered", "receiving", "received", "read", "partially_delivered",
    }
)  # fmt: skip
_ERROR_CODE = re.compile(r"[0-9]{1,6}")
_OPT_OUT_TYPES = frozenset(get_args(OptOutType))

E = TypeVar("E", bound=BaseModel)
T = TypeVar("T")

# Event fields, named as the request names what they come from (for errors a person can act on).
_INBOUND_PARAMS = {
    "phone": "parameter From",
    "sender": "parameter To",
    "body": "parameter Body",
    "message_sid": "parameter MessageSid",
    "event_id": "parameter MessageSid",
    "account_sid": "parameter AccountSid",
    "messaging_service_sid": "parameter MessagingServiceSid",
}
_STATUS_PARAMS = {
    "phone": "parameter To",
    "sender": "parameter From",
    "message_sid": "parameter MessageSid",
    "event_id": "parameter MessageSid",
    "person_id": "query parameter person_id",
    "messaging_service_sid": "parameter MessagingServiceSid",
}


class WebhookRejected(OptOutsError):
    """A webhook request that is answered with `status` and publishes nothing; `outcome` names the
    reason in the metrics."""

    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class FormParams(Mapping[str, str]):
    """A posted form with its repeated parameters kept: `getall` is what the twilio package's
    `RequestValidator` signs over; `form[name]` is a parameter's first value."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]

    def __getitem__(self, name: str) -> str:
        for key, value in self._pairs:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key for key, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(key for key, _ in self._pairs))


def parse_form(body: bytes) -> FormParams:
    """The parameters of an `application/x-www-form-urlencoded` body, in order, repeats kept."""
    if len(body) > MAX_WEBHOOK_BYTES:
        raise too_large(len(body))
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(400, "invalid", f"the form is not UTF-8: {exc.reason}") from exc
    except ValueError as exc:
        raise WebhookRejected(400, "invalid", f"the form has over {_MAX_FIELDS} fields") from exc
    return FormParams(pairs)


def too_large(size: int | None) -> WebhookRejected:
    told = f"{size} bytes" if size is not None else "a body"
    return WebhookRejected(413, "too_large", f"{told} is over the {MAX_WEBHOOK_BYTES}-byte limit")


def signed_url(public_base_url: str, path_and_query: str) -> str:
    """The URL Twilio signed: the public base URL it was given (scheme, host, any path prefix a proxy
    strips) plus the path and query as the request reached us, undecoded."""
    return public_base_url.rstrip("/") + path_and_query


class Addresses(NamedTuple):
    """A message's two addresses read: its channel, the person's phone and our sender."""

    channel: Channel
    phone: str
    sender: str


def message_addresses(person: str, ours: str, region: str) -> Addresses | None:
    """The channel, the person's phone (E.164) and our sender of a message between the addresses
    `person` and `ours`, as Twilio wrote them (`whatsapp:+1...`, `rcs:acme_agent`, a plain number).
    None for a channel that has no phones (Messenger). Raises InvalidNumber for an address that
    does not parse, an unknown prefix, or two addresses on different channels."""
    person_channel, person_value = split_address(person)
    our_channel, our_value = split_address(ours)
    if person_channel != our_channel:
        raise InvalidNumber(
            f"{person} and {ours}", f"are on two channels ({person_channel} and {our_channel}), not one"
        )
    if person_channel in NO_PHONE_PREFIXES:
        return None
    phone = normalise_phone(person_value, region)
    channel = as_channel(person_channel)
    return Addresses(channel, phone, normalise_channel_sender(channel, our_value, region))


def inbound_message(form: FormParams, *, region: str, received_at: datetime) -> MessageReceived | None:
    """The `message.received` of an inbound-message webhook; None for a message on a channel that
    has no phones (Messenger: nothing on it is an SMS opt-out, nor has a phone to key it by).

    Its `event_id` is the `MessageSid`, not the `I-Twilio-Idempotency-Token` header: the sid is
    covered by the signature and is the same on every delivery of the message (Twilio's retries, a
    redelivery from the console, and `optouts backfill`, which can only know the sid). The token is
    not signed, so a replayed request with a fresh token would pass as new if it were the id, and
    de-duplication is what stops replays (the signature has no timestamp).
    """
    sid = _required(form, "MessageSid")
    addresses = _addresses(form, "From", "To", region)
    if addresses is None:
        return None
    fields = {
        "event_id": sid,
        "occurred_at": received_at,
        "channel": addresses.channel,
        "phone": addresses.phone,
        "sender": addresses.sender,
        # Twilio always posts Body, empty for a media-only message; missing, it cannot be a keyword.
        "body": _optional(form, "Body") or "",
        "message_sid": sid,
        "account_sid": _required(form, "AccountSid"),
        "messaging_service_sid": _optional(form, "MessagingServiceSid") or None,
        "opt_out_type": _opt_out_type(_optional(form, "OptOutType")),
    }
    return _build(MessageReceived, fields, _INBOUND_PARAMS)


@dataclass(frozen=True)
class StatusCallback:
    """A status callback: its status and error code as metric labels, and the `message.blocked` it
    means, if any (only a 21610 with status failed or undelivered means one)."""

    status: str
    error_code: str
    blocked: MessageBlocked | None


def status_callback(
    form: FormParams, person_id: str | None, *, region: str, received_at: datetime
) -> StatusCallback:
    """What a status callback means. `person_id` is the query parameter the sender put in the
    callback URL; without it stage 1 names every person who received from that sender at that phone
    by then (docs/rules.md)."""
    sid = _required(form, "MessageSid")
    status = _required(form, "MessageStatus").strip().lower()
    code = (_optional(form, "ErrorCode") or "").strip()
    labels = (
        status if status in MESSAGE_STATUSES else "other",
        code if _ERROR_CODE.fullmatch(code) else ("none" if not code else "other"),
    )
    if code != UNSUBSCRIBED or status not in BLOCKING_STATUSES:
        return StatusCallback(*labels, blocked=None)
    addresses = _addresses(form, "To", "From", region)
    if addresses is None:
        return StatusCallback(*labels, blocked=None)
    fields = {
        # One event per (MessageSid, status): Twilio may call back more than once for a message.
        "event_id": f"{sid}:{status}",
        "occurred_at": received_at,
        "channel": addresses.channel,
        "person_id": person_id,
        "phone": addresses.phone,
        "sender": addresses.sender,
        "message_sid": sid,
        "messaging_service_sid": _optional(form, "MessagingServiceSid") or None,
    }
    return StatusCallback(*labels, blocked=_build(MessageBlocked, fields, _STATUS_PARAMS))


def _required(form: FormParams, name: str) -> str:
    value = _optional(form, name)
    if value is None:
        raise WebhookRejected(400, "invalid", f"parameter {name} is missing")
    return value


def _optional(form: FormParams, name: str) -> str | None:
    values = form.getall(name)
    if len(set(values)) > 1:
        # Which one Twilio meant cannot be told; a repeat of one value is harmless.
        raise WebhookRejected(400, "invalid", f"parameter {name} is given {len(values)} times, differently")
    return values[0] if values else None


def _addresses(form: FormParams, person: str, ours: str, region: str) -> Addresses | None:
    person_address = _read(person, lambda: split_address(_required(form, person)))
    our_address = _read(ours, lambda: split_address(_required(form, ours)))
    if person_address.channel != our_address.channel:
        raise WebhookRejected(
            400,
            "invalid",
            f"parameters {person} and {ours} are on two channels"
            f" ({person_address.channel} and {our_address.channel}), not one",
        )
    if person_address.channel in NO_PHONE_PREFIXES:
        return None
    channel = as_channel(person_address.channel)
    phone = _read(person, lambda: normalise_phone(person_address.value, region))
    sender = _read(ours, lambda: normalise_channel_sender(channel, our_address.value, region))
    return Addresses(channel, phone, sender)


def _read(name: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except InvalidNumber as exc:
        raise WebhookRejected(400, "invalid", f"parameter {name}: {exc}") from exc


def _opt_out_type(value: str | None) -> str | None:
    # Twilio documents STOP, START and HELP; a value it adds later is left for the body to decide
    # rather than refused, so that the message is still recorded.
    text = (value or "").strip().upper()
    return text if text in _OPT_OUT_TYPES else None


def _build(model: type[E], fields: dict[str, Any], params: dict[str, str]) -> E:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        # The message, never the value: the value may be the body of someone's text.
        message = error["msg"].removeprefix("Value error, ")
        raise WebhookRejected(400, "invalid", f"{params.get(field, field)}: {message}") from exc
