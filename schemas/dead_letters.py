"""The value of `sms-dead-letters`: a value the service could not fold, kept aside with where it was
and why, so that it can be read, fixed and published again. Nothing here is ever folded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.errors import DecodeError, FoldError, UnknownSchemaVersion
from schemas.events import Timestamp

Encoding = Literal["utf-8", "base64"]

# A dead letter must fit in one record whatever it keeps: a value of 1 MB would make a dead letter
# over the producer's and brokers' 1 MB limit, and the worker could not keep it aside. Nothing over
# MAX_EVENT_BYTES is ever folded, so its start is enough to see what it was.
MAX_KEPT_VALUE_BYTES = 64 * 1024
MAX_KEPT_KEY_BYTES = 1024


class DeadLetter(BaseModel):
    """Where the value was (`topic[partition]@offset`, with its key), the value itself, and why.

    Key and value are kept byte for byte: as text when they are UTF-8, else in base64
    (`key_encoding`, `value_encoding` say which). A value over 64 KiB or a key over 1 KiB keeps
    only its start (`value_truncated`, `key_truncated`; `value_bytes` is the whole value's size).
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    schema_version: Literal[1] = 1
    topic: str
    partition: int
    offset: int
    key: str | None
    key_encoding: Encoding = "utf-8"
    value: str | None
    value_encoding: Encoding = "utf-8"
    value_bytes: int | None = None  # the size of the whole value (null: no value)
    value_truncated: bool = False
    key_truncated: bool = False
    # unknown_schema_version: a newer producer's event, to fold once the service reads that version;
    # unfoldable: an event the fold raised on (a defect), to publish again once the fold is fixed
    kind: Literal["undecodable", "unknown_schema_version", "unfoldable"]
    reason: str
    event_type: str | None = None
    field: str | None = None
    app_id: str | None = None  # the workers (app id and generation) that kept it aside
    dead_lettered_at: Timestamp

    @classmethod
    def of(
        cls,
        error: DecodeError | FoldError,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        at: datetime,
        app_id: str | None = None,
    ) -> DeadLetter:
        key_text, key_encoding = _as_text(_start(key, MAX_KEPT_KEY_BYTES))
        value_text, value_encoding = _as_text(_start(value, MAX_KEPT_VALUE_BYTES))
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key_text,
            key_encoding=key_encoding,
            value=value_text,
            value_encoding=value_encoding,
            value_bytes=len(value) if value is not None else None,
            value_truncated=value is not None and len(value) > MAX_KEPT_VALUE_BYTES,
            key_truncated=key is not None and len(key) > MAX_KEPT_KEY_BYTES,
            kind=_kind(error),
            reason=str(error),
            event_type=error.event_type,
            field=error.field,
            app_id=app_id,
            dead_lettered_at=at,
        )

    def original_value(self) -> bytes | None:
        """The value exactly as it was on its topic (only its start when `value_truncated`)."""
        return _as_bytes(self.value, self.value_encoding)

    def original_key(self) -> bytes | None:
        return _as_bytes(self.key, self.key_encoding)


def _kind(error: DecodeError | FoldError) -> Literal["undecodable", "unknown_schema_version", "unfoldable"]:
    if isinstance(error, FoldError):
        return "unfoldable"
    return "unknown_schema_version" if isinstance(error, UnknownSchemaVersion) else "undecodable"


def _start(data: bytes | None, limit: int) -> bytes | None:
    return data[:limit] if data is not None else None


def _as_text(data: bytes | None) -> tuple[str | None, Encoding]:
    if data is None:
        return None, "utf-8"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _as_bytes(text: str | None, encoding: Encoding) -> bytes | None:
    if text is None:
        return None
    if encoding == "utf-8":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # a dead letter written by hand: say so rather than guess
        raise ValueError(f"value is not base64: {exc}") from exc
