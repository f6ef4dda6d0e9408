"""The JSON Schema of the value of every topic, generated from the models: `make schemas` writes them to
`schemas/json/<topic>.schema.json` (committed, for upstream and downstream teams), and a unit test
fails when they are stale.

`sms-messaging-events` is described as writers may publish it (every version still read, defaults
optional), and as the decoder reads it: what the schema accepts, `decode_messaging_event` accepts
(tests/unit/test_schema_agrees_with_decoder.py holds the two together, and lists what JSON Schema cannot
say). The topics the service writes are described as it writes them (every field present).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas.dead_letters import DeadLetter
from schemas.events import AnyPersonEvent, MessageBlocked, MessageReceived, MessageSent, OptOutList
from schemas.upcasting import (
    MessageBlockedV1,
    MessageReceivedV1,
    MessageReceivedV2,
    MessageSentV1,
    latest_version,
)

DIRECTORY = Path(__file__).resolve().parent / "json"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

Mode = Literal["validation", "serialization"]

# topic -> (the type of its values, how it is described, what a value is)
TOPIC_VALUES: dict[str, tuple[Any, Mode, str]] = {
    "sms-messaging-events": (
        MessageSentV1
        | MessageSent
        | MessageReceivedV1
        | MessageReceivedV2
        | MessageReceived
        | MessageBlockedV1
        | MessageBlocked,
        "validation",
        "A messaging event, keyed by the phone in E.164: exactly one of the variants, told apart by"
        " `type` (required) and `schema_version`: `message.received` 1, 2 (adds `keyword`) or 3 (adds"
        " `channel`); `message.sent` and `message.blocked` 1, or 2 (adds `channel`). A value of an"
        " older version is an SMS. A value without `schema_version` is read at its type's latest"
        " version (its `keyword` then taken from `body` when absent, its `channel` `sms`); a newer"
        " version than these is refused (the service keeps it aside until it reads that version)."
        " Unknown fields are allowed and ignored. The service checks beyond this schema what JSON"
        " Schema cannot say: that `phone` and `sender` are phone numbers without a channel prefix"
        " (with phonenumbers; an SMS sender may also be a short code or an alphanumeric ID, an RCS"
        " sender an agent id), that `keyword` is `body` trimmed and upper-cased, and that the whole"
        " value is at most 64 KiB of JSON.",
    ),
    "sms-person-events": (
        AnyPersonEvent,
        "serialization",
        "A change to one person's SMS opt-out list, keyed by person_id: the audit log.",
    ),
    "sms-opt-outs": (
        OptOutList,
        "serialization",
        "A person's whole current SMS opt-out list, keyed by person_id; compacted: the latest value"
        " per key is the list.",
    ),
    "sms-dead-letters": (
        DeadLetter,
        "serialization",
        "A value the service could not fold, with where it was and why; keyed by the original key.",
    ),
}


# RFC 3339 date-time with an offset, as pydantic's AwareDatetime reads it: years 0001 to 9999, the
# days each month has (29 February in leap years only), seconds 00 to 59 (pydantic refuses a leap
# second), any fraction, `Z` or an offset within ±23:59, `T` and `Z` in either case (RFC 3339 allows
# both). A pattern because `format` is only an annotation to most validators.
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_DATE_TIME = rf"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)[Tt]{_TIME}{_OFFSET}$"
# The service holds times in UTC: a time on the first day with an offset east of UTC, or on the last
# day with one west of it, may fall outside years 1 to 9999 there. Refused whole (a regular expression
# cannot compare the time with the offset): no real event is dated on either day.
_OUT_OF_RANGE_IN_UTC = r"^(?:0001-01-01[Tt][^+]*\+|9999-12-31[Tt][^-]*-)(?:[12]|0[1-9]|00:0[1-9]|00:[1-5])"
# `$` in Python's `re` (and so in the jsonschema package) also matches before a final newline, where
# ECMA-262's, pydantic's and ajv's do not: every pattern that ends in `$` comes with this refusal.
_FINAL_NEWLINE = r"\n$"

_DATE_TIME_DESCRIPTION = (
    "An RFC 3339 date-time with an offset (`Z` or ±hh:mm), e.g. 2025-03-01T09:00:00Z; a time without"
    " one is refused, and so is one on 0001-01-01 with an offset east of UTC or on 9999-12-31 with one"
    " west of it (it may fall outside years 1 to 9999 in UTC). `format` names it; `pattern` and `not`"
    " state it, for validators that take `format` as an annotation only."
)

# What a field of that name holds, in every topic (a name means the same in every event). Whether a
# value is a possible phone number is phonenumbers' to say, not a regular expression's.
_NUMBERS = {
    "phone": "The person's phone number: E.164 (read from writers also as a national number of the"
    " service's default region), on every channel, without Twilio's channel prefix. That it is a possible"
    " phone number is checked by the service, with phonenumbers, beyond this schema.",
    "sender": "Our Twilio sender on the value's `channel`, without Twilio's channel prefix: on `sms` (the"
    " default) an E.164 number, a short code (3 to 8 digits) or an alphanumeric sender ID (up to 11"
    " letters, digits and spaces, at least one letter); on `rcs` an E.164 number or an agent id; on"
    " `whatsapp` an E.164 number. That a number is a possible phone number, and has no prefix, is"
    " checked by the service, with phonenumbers, beyond this schema.",
}

# Rules across fields that a model checks in Python (a model validator), said in JSON Schema.
_NAMES_THE_PERSON_OR_THE_MESSAGE = {
    "anyOf": [
        {"required": ["person_id"], "properties": {"person_id": {"type": "string"}}},
        {"required": ["message_sid"], "properties": {"message_sid": {"type": "string"}}},
    ],
}
_RULES: dict[str, dict[str, Any]] = {
    # MessageBlocked._names_the_person_or_the_message, at every version
    "MessageBlocked": _NAMES_THE_PERSON_OR_THE_MESSAGE,
    "MessageBlockedV1": _NAMES_THE_PERSON_OR_THE_MESSAGE,
}

_COMMENT = (
    "Patterns are ECMA-262 regular expressions without lookaround. Where one ends in `$`, a `not`"
    " refuses a final newline too: `$` in Python's `re` also matches before one."
)


class _Published(GenerateJsonSchema):
    """The models' JSON Schema with what their types check in Python said where JSON Schema can."""

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        json_schema = super().datetime_schema(schema)
        if schema.get("tz_constraint") == "aware":  # every time of the contract: `Timestamp`
            json_schema["description"] = _DATE_TIME_DESCRIPTION
            json_schema["pattern"] = _DATE_TIME
            json_schema["not"] = {"pattern": f"{_OUT_OF_RANGE_IN_UTC}|{_FINAL_NEWLINE}"}
        return json_schema

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if str(json_schema.get("pattern", "")).endswith("$"):
            json_schema["not"] = {"pattern": _FINAL_NEWLINE}
        return json_schema


def schema_for(topic: str) -> dict[str, Any]:
    value_type, mode, description = TOPIC_VALUES[topic]
    schema = TypeAdapter(value_type).json_schema(mode=mode, schema_generator=_Published)
    definitions = [schema, *schema.get("$defs", {}).values()]
    if mode == "serialization":
        # The service writes every field of its models (no field is ever left out of a dump).
        for definition in definitions:
            if "properties" in definition:
                definition["required"] = list(definition["properties"])
    else:
        _as_the_decoder_reads(schema)
    for definition in definitions:
        for name, text in _NUMBERS.items():
            if name in definition.get("properties", {}):
                definition["properties"][name].update(description=text, pattern=r"\S")
        definition.update(_RULES.get(definition.get("title", ""), {}))
    return {
        "$schema": _DRAFT,
        "title": f"value of {topic}",
        "description": description,
        "$comment": _COMMENT,
        **schema,
    }


def _as_the_decoder_reads(schema: dict[str, Any]) -> None:
    """A union of events as the decoder reads it: one variant exactly, told apart by `type` (a
    discriminator: required even where its model has a default), and an older version's variant
    only for a value that names its version (a value without one is read at the latest)."""
    if "anyOf" in schema:
        schema["oneOf"] = schema.pop("anyOf")
    for definition in schema.get("$defs", {}).values():
        properties = definition.get("properties", {})
        if "const" not in properties.get("type", {}):
            continue
        required = {"type", *definition.get("required", [])}
        version = properties.get("schema_version", {}).get("const")
        if version is not None and version < latest_version(properties["type"]["const"]):
            required.add("schema_version")
        elif version is not None:
            properties["schema_version"]["description"] = (
                "The version of this event type; a value without one is read at this, the latest."
            )
        definition["required"] = [name for name in properties if name in required]


def render(topic: str) -> str:
    return json.dumps(schema_for(topic), indent=2, ensure_ascii=False) + "\n"


def path_for(topic: str, directory: Path = DIRECTORY) -> Path:
    return directory / f"{topic}.schema.json"


def stale(directory: Path = DIRECTORY) -> list[str]:
    """The topics whose committed schema is missing or differs from the models."""
    return [
        topic
        for topic in TOPIC_VALUES
        if not path_for(topic, directory).exists() or path_for(topic, directory).read_text() != render(topic)
    ]


def main(argv: list[str]) -> int:
    """`python -m schemas.json_schemas` writes every file; with `--check`, exits 1 when one is stale."""
    if "--check" in argv:
        outdated = stale()
        for topic in outdated:
            print(f"{path_for(topic)} is stale: run `make schemas`", file=sys.stderr)
        return 1 if outdated else 0
    DIRECTORY.mkdir(exist_ok=True)
    for topic in TOPIC_VALUES:
        path_for(topic).write_text(render(topic))
        print(f"wrote {path_for(topic)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
