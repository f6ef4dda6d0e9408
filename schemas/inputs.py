"""One reading of the values people type (a person id, a sender, a time) for the HTTP API's paths and
queries and the command line: the types of `schemas.events`, so that the edge accepts what the log
accepts and nothing else. A refusal names the field and a short excerpt of the value, never all of it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.addresses import address_key, sender_address
from schemas.errors import InvalidNumber, OptOutsError
from schemas.events import PersonId, Phone, Sender, Timestamp

EXCERPT = 40  # characters of a refused value shown back: enough to recognise it, never a whole payload

_PERSON_ID: TypeAdapter[str] = TypeAdapter(PersonId)
_SENDER: TypeAdapter[str] = TypeAdapter(Sender)
_PHONE: TypeAdapter[str] = TypeAdapter(Phone)
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
# The operator page's date-time input (`<input type=datetime-local>`): no offset, seconds optional.
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")


class InvalidInput(OptOutsError, ValueError):
    """A value given to the API or the command line that the contract refuses."""

    def __init__(self, field: str, value: str, problem: str) -> None:
        super().__init__(f"{field} {excerpt(value)} {problem}")
        self.field = field
        self.problem = problem


def excerpt(value: str, limit: int = EXCERPT) -> str:
    """`value` quoted as Python would (control and invisible characters escaped), cut to `limit`."""
    if len(value) <= limit:
        return repr(value)
    quoted = repr(value[:limit])
    return f"{quoted[:-1]}…{quoted[-1]} ({len(value)} characters)"


def person_id(value: str) -> str:
    """A person id as the log takes it: 1 to 128 characters, no '/', no white space, no control or
    invisible (zero-width, bidirectional) characters."""
    try:
        return _PERSON_ID.validate_python(value, strict=True)
    except ValidationError:
        raise InvalidInput(
            "person id",
            value,
            "is not a person id: 1 to 128 characters, without '/', white space, control characters"
            " or invisible ones (zero-width, bidirectional)",
        ) from None


def sender(value: str, region: str) -> str:
    """A sender as the lists key it: E.164, a short code or an alphanumeric sender ID for SMS, with
    its channel prefix on another channel (`whatsapp:+14155550100`, `rcs:acme_agent`)."""
    try:
        channel, normalised = sender_address(value, region)
    except InvalidNumber as exc:
        raise InvalidInput("sender", value, exc.reason) from None
    if channel == "sms":  # as it always was read, so that its refusals say the same
        checked: str = _validated(_SENDER, "sender", value, {"region": region})
        return checked
    return address_key(channel, normalised)


def phone(value: str, region: str) -> str:
    """A person's phone in E.164 (a national number is read in `region`)."""
    normalised: str = _validated(_PHONE, "phone", value, {"region": region})
    return normalised


def timestamp(value: str, *, naive_is_utc: bool = False) -> datetime:
    """An RFC 3339 date-time with its offset, in UTC; with `naive_is_utc`, the operator page's
    `2026-11-27T09:05` without an offset is read as UTC too."""
    text = value.strip()
    if naive_is_utc and _LOCAL_TIME.fullmatch(text):
        text = (text if text.count(":") == 2 else text + ":00") + "Z"
    moment: datetime = _validated(_TIMESTAMP, "time", text, None, shown=value)
    return moment


def _validated(
    adapter: TypeAdapter[Any],
    field: str,
    value: str,
    context: dict[str, Any] | None,
    shown: str | None = None,
) -> Any:
    try:
        return adapter.validate_python(value, strict=True, context=context)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        cause = error.get("ctx", {}).get("error")
        # A number that does not parse says why without repeating the value (it is shown cut).
        problem = error["msg"].removeprefix("Value error, ")
        if isinstance(cause, InvalidNumber):
            problem = cause.reason
        raise InvalidInput(field, value if shown is None else shown, problem) from None
