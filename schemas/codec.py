"""Bytes to events and back: the one place where a value becomes an event or our `DecodeError`.

Every failure to read a value (a `ValidationError`, a null value, anything a validator or a conversion
raises) leaves here as `DecodeError`: the agents keep such a value aside and go on with the next, so
one bad record can never take the records fetched with it down too."""

from __future__ import annotations

import json
import re
from collections.abc import Container
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json

from schemas.errors import DecodeError, UnknownSchemaVersion
from schemas.events import AnyPersonEvent, Event, MessagingEvent, OptOutList
from schemas.upcasting import latest_version, upcast

_MESSAGING: TypeAdapter[MessagingEvent] = TypeAdapter(MessagingEvent)
_PERSON: TypeAdapter[AnyPersonEvent] = TypeAdapter(AnyPersonEvent)
_OPT_OUT_LIST: TypeAdapter[OptOutList] = TypeAdapter(OptOutList)

MAX_EVENT_BYTES = 64 * 1024
# How far an event's `occurred_at` may be ahead of the time its record was logged (the Kafka
# timestamp): clocks of upstream hosts drift by seconds, never by minutes. Further ahead it is a
# mistake (a date typed by hand, a wrong time zone), and folded it would date an entry in the future.
MAX_AHEAD = timedelta(minutes=5)

T = TypeVar("T")
E = TypeVar("E", bound=Event)


def decode_messaging_event(
    data: bytes | str | None, *, region: str, known_phones: Container[str] | None = None
) -> MessagingEvent:
    """Decode a value of `sms-messaging-events`; national numbers are read in `region`.

    `known_phones` holds numbers known to be in E.164 already (the keys of our own store, each
    normalised when it was first written): an event's `phone` found there is taken as it is,
    without parsing it again (parsing is the costliest part of decoding)."""
    context: dict[str, Any] = {"region": region}
    if known_phones is not None:
        context["known_phones"] = known_phones
    return _decode(_MESSAGING, data, context)


def decode_person_event(data: bytes | str | None) -> AnyPersonEvent:
    """Decode a value of `sms-person-events` (numbers there are already E.164)."""
    return _decode(_PERSON, data, None)


def decode_opt_out_list(data: bytes | str | None) -> OptOutList:
    """Decode a value of `sms-opt-outs`."""
    return _decode(_OPT_OUT_LIST, data, None)


def not_ahead(event: E, logged_at: datetime | None, max_ahead: timedelta = MAX_AHEAD) -> E:
    """`event`, unless its `occurred_at` is more than `max_ahead` after `logged_at` (its record's
    timestamp; None: not known, nothing to check): then a `DecodeError` saying so."""
    if logged_at is not None and event.occurred_at > logged_at + max_ahead:
        raise DecodeError(
            f"{event.type}: field 'occurred_at' = {event.occurred_at.isoformat()!r} is more than"
            f" {max_ahead} ahead of the time its record was logged ({logged_at.isoformat()})",
            event_type=event.type,
            field="occurred_at",
        )
    return event


def encode(model: BaseModel) -> bytes:
    """The JSON bytes of an event or list, as they go on a topic."""
    return model.model_dump_json().encode()


def _decode(adapter: TypeAdapter[T], data: bytes | str | None, context: dict[str, Any] | None) -> T:
    if data is None:
        raise DecodeError("no value (null): a tombstone is not an event")
    if not isinstance(data, bytes | str):
        raise DecodeError(f"a value of type {type(data).__name__}, not bytes")
    size = len(data) if isinstance(data, bytes) else len(data.encode(errors="surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise DecodeError(f"value of {size} bytes is over the {MAX_EVENT_BYTES}-byte limit")
    try:
        return _validate(adapter, _without_byte_order_mark(data), context)
    except DecodeError:
        raise
    except Exception as exc:  # whatever a validator or a conversion raised: still this value's fault
        raise DecodeError(
            f"cannot be read: {type(exc).__name__}: {_shorten(str(exc))}", event_type=_event_type(data)
        ) from exc


def _validate(adapter: TypeAdapter[T], data: bytes | str, context: dict[str, Any] | None) -> T:
    if _older_version(data):
        return _decode_other_version(adapter, data, context, None)
    try:
        return adapter.validate_json(data, context=context)
    except ValidationError as exc:
        if any(error["loc"][-1:] == ("schema_version",) for error in exc.errors(include_url=False)):
            return _decode_other_version(adapter, data, context, exc)
        raise _decode_error(exc, data) from exc


def _without_byte_order_mark(data: bytes | str) -> bytes | str:
    # Some producers' text writers start with one (.NET's, Windows tools'); RFC 8259 lets a reader
    # ignore it, and refusing would keep every event of such a producer aside.
    if isinstance(data, bytes):
        return data[3:] if data[:3] == b"\xef\xbb\xbf" else data
    return data[1:] if data[:1] == "\ufeff" else data


# A value's type and version, found in its text without parsing it: most producers write an older
# version of an event than the latest (`message.sent` 1 for years), and a validation that fails on
# the version first (every field validated, an error built) cost more than the upcast itself.
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_.]{1,40})"')
_VERSION = re.compile(rb'"schema_version"\s*:\s*([0-9]{1,3})[,}\s]')


def _older_version(data: bytes | str) -> bool:
    """Whether `data` looks like an event of a version older than its type's latest: a guess that
    picks the path; either path decodes every value right."""
    raw = data if isinstance(data, bytes) else data.encode(errors="surrogatepass")
    kind, version = _TYPE.search(raw), _VERSION.search(raw)
    return (
        kind is not None
        and version is not None
        and int(version.group(1)) < latest_version(kind.group(1).decode())
    )


def _decode_other_version(
    adapter: TypeAdapter[T], data: bytes | str, context: dict[str, Any] | None, exc: ValidationError | None
) -> T:
    # A value that is not at its type's latest version gets here (or one that looked like it: `exc`
    # is None then, and a value that is not older is validated as it is, for the error it makes).
    # Parsed by pydantic-core's parser, the one `validate_json` reads the latest versions with: a
    # third of the `json` module's time (most events on the log are older versions), and no JSON
    # that the latest version's path refuses (a lone surrogate, another encoding) is read here.
    try:
        value = from_json(data)
    except ValueError:
        return _validate_as_it_is(adapter, data, context)  # not JSON: the same error as the latest's
    if not isinstance(value, dict):
        return _validate_as_it_is(adapter, data, context)
    event_type, version = value.get("type"), value.get("schema_version", 1)
    if type(version) is float and version.is_integer():
        version = int(version)  # 1.0 is 1 to JSON, as it is to the schema
    if isinstance(event_type, str) and type(version) is int:
        latest = latest_version(event_type)
        if version > latest:
            raise UnknownSchemaVersion(event_type, version, latest) from exc
        upcast_value = upcast(value)
        if upcast_value is not value:
            try:
                # From the parsed value: the same checks as from its text (times are read from text
                # by their own validator), without writing it out and parsing it again.
                return adapter.validate_python(upcast_value, context=context)
            except ValidationError as again:
                raise _decode_error(again, data) from again
    if exc is None:
        return _validate_as_it_is(adapter, data, context)
    raise _decode_error(exc, data) from exc


def _validate_as_it_is(adapter: TypeAdapter[T], data: bytes | str, context: dict[str, Any] | None) -> T:
    try:
        return adapter.validate_json(data, context=context)
    except ValidationError as exc:
        raise _decode_error(exc, data) from exc


def _decode_error(exc: ValidationError, data: bytes | str) -> DecodeError:
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    event_type = _event_type(data)
    if error["type"] == "json_invalid":
        return DecodeError(f"not JSON: {error['msg']}")
    if error["type"] == "union_tag_not_found":
        return DecodeError("no 'type' field: cannot tell which event this is")
    if error["type"] == "union_tag_invalid":
        return DecodeError(f"unknown event type {event_type!r}", event_type=event_type)
    # For a tagged union the first location is the tag itself; the rest is the field path.
    field = ".".join(loc[1:]) if loc and loc[0] == event_type else ".".join(loc)
    if error["type"] == "missing":
        return DecodeError(f"{event_type}: field {field!r} is missing", event_type=event_type, field=field)
    message = error["msg"].removeprefix("Value error, ")
    if loc == [event_type]:  # a rule across fields of a known event (a model validator)
        return DecodeError(f"{event_type}: {message}", event_type=event_type)
    value = _shown(field, error.get("input"))
    if not field:
        return DecodeError(f"value {value}: {message}", event_type=event_type)
    return DecodeError(
        f"{event_type}: field {field!r} = {value}: {message}", event_type=event_type, field=field
    )


def _event_type(data: bytes | str) -> str | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


# A message's text is the person's, and a reason is logged and kept in sms-dead-letters: say how long
# it was, never what it said (the value itself stays in the dead letter, to be published again).
_PRIVATE_FIELDS = frozenset({"body"})


def _shown(field: str, value: Any) -> str:
    if field in _PRIVATE_FIELDS:
        size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        return f"<{size}, not shown>"
    return _shorten(value)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
