"""The events of the contract: frozen, strict pydantic models, one discriminated union per topic.

Every event names the person's number `phone` and our Twilio number `sender`, whichever way the
message went. Numbers are normalised while validating, so every decoded event holds the one form
a phone or sender has everywhere (see `schemas.phones`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.addresses import Channel, covers, normalise_channel_sender
from schemas.phones import normalise_phone

SCHEMA_VERSION: Literal[1] = 1


def _region(info: ValidationInfo) -> str | None:
    # Without a region in the validation context only E.164 parses: a national number is never
    # read with a guessed country.
    context = info.context or {}
    region: str | None = context.get("region")
    return region


def _phone(value: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("known_phones")
    if known is not None and value in known:
        return value  # already E.164: normalising it again would give it back as it is
    return normalise_phone(value, _region(info))


def _sender(value: str, info: ValidationInfo) -> str:
    # A sender is read as its channel's (an RCS agent id is no SMS sender ID): every model with a
    # `channel` declares it before `sender`, so that it is validated first.
    data = getattr(info, "data", None) or {}
    channel = data.get("channel", "sms")
    return normalise_channel_sender(channel if isinstance(channel, str) else "sms", value, _region(info))


# RFC 3339's date-time with an offset, as the contract says: pydantic alone also reads "2025-03-01
# 09:00Z", "+0100" offsets and numbers of seconds given as text, which no schema-checked producer
# writes and a reader of the log would take differently. The calendar is pydantic's to check.
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


def _rfc_3339(value: object) -> object:
    if not isinstance(value, str):
        return value  # a datetime built in code; anything else is the field type's to refuse
    if not _RFC_3339.fullmatch(value):
        raise ValueError("is not an RFC 3339 date-time with an offset, such as 2025-03-01T09:00:00Z")
    return datetime.fromisoformat(value.upper())  # parsed here: a strict field takes no text after this


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is a year before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


Phone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_phone)]
Sender = Annotated[str, StringConstraints(max_length=64), AfterValidator(_sender)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc_3339), AfterValidator(_utc)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]
# A person id is also a URL path segment, and is shown to operators: no '/', no white space, no control
# character, and none of the invisible format characters (zero-width spaces and joiners, bidirectional
# controls, the byte order mark) that make two different ids look alike. Spelled out as ranges, not
# `\s`, so that Python's `re`, pydantic's Rust regex and ECMA-262 (the JSON Schemas) read it alike.
_NOT_IN_PERSON_ID = r"/\x00-\x20\x7f-\xa0\xad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff"
PERSON_ID_PATTERN = rf"^[^{_NOT_IN_PERSON_ID}]{{1,128}}$"
PersonId = Annotated[str, StringConstraints(pattern=PERSON_ID_PATTERN)]
Sid = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
OptOutType = Literal["STOP", "START", "HELP"]
Covers = tuple[str, ...]


def _covers(fields: dict[str, object]) -> Covers:
    channel = fields.get("channel", "sms")
    return covers(channel if isinstance(channel, str) else "sms")


class Event(BaseModel):
    """What every event carries."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    type: str  # each event narrows it to its own literal name; declared here so it comes first
    event_id: Identifier
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: Timestamp

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # Literal[1] takes `true` (True == 1 in Python), even strict: a version is a number.
        if isinstance(value, bool):
            raise ValueError("Input should be a number, not a boolean")
        return value


# ---- sms-messaging-events, keyed by phone ------------------------------------------------------


class MessageSent(Event):
    """We sent a message on `channel` from `sender` to `person_id` at `phone`: the person is a
    recipient of it. Version 2 adds `channel` (version 1 values are SMS)."""

    type: Literal["message.sent"] = "message.sent"
    schema_version: Literal[2] = 2  # type: ignore[assignment]
    channel: Channel = "sms"
    person_id: PersonId
    phone: Phone
    sender: Sender
    message_sid: Sid
    messaging_service_sid: Sid | None = None


def keyword_form(body: str) -> str | None:
    """`body` in the form keywords are matched in (trimmed, upper case), at most 64 characters; None
    for a blank body. The same text the person events derived from the message carry as `keyword`."""
    return body.strip().upper()[:64] or None


class MessageReceived(Event):
    """Someone at `phone` texted `body` to our `sender` (Twilio's inbound-message webhook).

    Version 2 adds `keyword`: the body trimmed and upper-cased, at most 64 characters (null for a
    blank body), the keyword text the lists show; readers need not repeat Twilio's matching rule.
    Version 1 values, without it, are still accepted. Version 3 adds `channel` (older values are
    SMS): `rcs` or `whatsapp` when Twilio's `From` and `To` carried that prefix.
    """

    # Read through `schemas.upcasting` (version 1 gets its keyword there); built here, `keyword`
    # comes from `body`, and a given one must agree with it.

    type: Literal["message.received"] = "message.received"
    schema_version: Literal[3] = 3  # type: ignore[assignment]
    channel: Channel = "sms"
    phone: Phone
    sender: Sender
    body: Annotated[str, StringConstraints(max_length=4096)]
    message_sid: Sid
    account_sid: Sid
    messaging_service_sid: Sid | None = None
    opt_out_type: OptOutType | None = None
    keyword: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default_factory=lambda fields: keyword_form(fields.get("body", ""))
    )

    @model_validator(mode="after")
    def _keyword_is_the_body_s(self) -> MessageReceived:
        if self.keyword != keyword_form(self.body):
            raise ValueError(f"keyword {self.keyword!r} is not the body trimmed and upper-cased")
        return self


class MessageBlocked(Event):
    """Twilio refused a send to `person_id` at `phone` with 21610: they unsubscribed from `sender`.

    `person_id` may be null when `message_sid` is given (a status callback that did not name the
    person): stage 1 then names every person who received from `sender` at `phone` by `occurred_at`
    (Twilio blocks a phone and a sender, not one message; docs/rules.md).
    Version 2 adds `channel` (version 1 values are SMS).
    """

    type: Literal["message.blocked"] = "message.blocked"
    schema_version: Literal[2] = 2  # type: ignore[assignment]
    channel: Channel = "sms"
    person_id: PersonId | None
    phone: Phone
    sender: Sender
    message_sid: Sid | None = None
    error_code: Literal[21610] = 21610
    messaging_service_sid: Sid | None = None

    @model_validator(mode="after")
    def _names_the_person_or_the_message(self) -> MessageBlocked:
        if self.person_id is None and self.message_sid is None:
            raise ValueError("person_id is null and so is message_sid: no way to tell whose send was blocked")
        return self


MessagingEvent = Annotated[MessageSent | MessageReceived | MessageBlocked, Field(discriminator="type")]


# ---- sms-person-events, keyed by person: the audit log --------------------------------------------

RecordedCause = Literal["keyword", "send_blocked"]


class PersonEvent(Event):
    """A change to one person's list; `source_event_id` is the event that caused it.

    `channel` is the channel of `sender` (the entry's); `source_channel` the channel the keyword or
    blocked send came on (an RCS STOP records the SMS senders it covers: `channel` "sms",
    `source_channel` "rcs"); `covers` the channels Twilio blocks for that entry. Optional, added
    without a new version: a value without them is SMS, as every value before them was."""

    person_id: PersonId
    channel: Channel = "sms"
    sender: Sender
    phone: Phone
    source_event_id: Identifier
    keyword: Annotated[str, StringConstraints(max_length=64)] | None = None
    messaging_service_sid: Sid | None = None
    source_channel: Channel = Field(default_factory=lambda fields: fields.get("channel", "sms"))
    covers: Covers = Field(default_factory=_covers)


class OptOutRecorded(PersonEvent):
    """The person opted out of `sender` at `phone`: by a keyword, or Twilio blocked a send (21610)."""

    type: Literal["opt_out.recorded"] = "opt_out.recorded"
    cause: RecordedCause


class OptOutCleared(PersonEvent):
    """Someone at `phone` texted an opt-in keyword to `sender`: the entry goes."""

    type: Literal["opt_out.cleared"] = "opt_out.cleared"
    cause: Literal["opt_in_keyword"] = "opt_in_keyword"


class OptOutOverridden(PersonEvent):
    """An operator removed the entry from our list (not from Twilio), saying who and why."""

    type: Literal["opt_out.overridden"] = "opt_out.overridden"
    cause: Literal["override"] = "override"
    actor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


AnyPersonEvent = Annotated[OptOutRecorded | OptOutCleared | OptOutOverridden, Field(discriminator="type")]


# ---- sms-opt-outs, keyed by person, compacted: the current list -----------------------------------


class OptOutEntry(BaseModel):
    """One sender on a person's list, with when and why it got there."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    channel: Channel = "sms"
    sender: Sender
    phone: Phone
    since: Timestamp
    cause: RecordedCause
    keyword: str | None
    messaging_service_sid: Sid | None
    source_channel: Channel = Field(default_factory=lambda fields: fields.get("channel", "sms"))
    covers: Covers = Field(default_factory=_covers)


class OptOutList(BaseModel):
    """A person's whole current list: the value of `sms-opt-outs`."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    person_id: PersonId
    opt_outs: tuple[OptOutEntry, ...]
    updated_at: Timestamp | None
