"""The committed JSON Schemas of the topics' values are those the models generate (`make schemas`)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel

from schemas.codec import encode
from schemas.dead_letters import DeadLetter
from schemas.errors import DecodeError
from schemas.events import OptOutEntry, OptOutList
from schemas.json_schemas import DIRECTORY, TOPIC_VALUES, path_for, render, schema_for, stale
from tests.unit.conftest import T0, blocked, cleared, overridden, received, recorded, sent


def test_the_committed_json_schemas_are_not_stale() -> None:
    assert stale() == [], "the models changed: run `make schemas` and commit schemas/json/"


def test_there_is_a_schema_for_the_value_of_every_topic_consumers_read() -> None:
    assert set(TOPIC_VALUES) == {
        "sms-messaging-events",
        "sms-person-events",
        "sms-opt-outs",
        "sms-dead-letters",
    }
    assert {path.name for path in DIRECTORY.glob("*.schema.json")} == {
        f"{t}.schema.json" for t in TOPIC_VALUES
    }


def test_a_changed_model_makes_its_schema_stale(tmp_path: Path) -> None:
    for topic in TOPIC_VALUES:
        (tmp_path / f"{topic}.schema.json").write_text(render(topic))
    (tmp_path / "sms-opt-outs.schema.json").write_text(
        render("sms-opt-outs").replace("updated_at", "changed_at")
    )

    assert stale(tmp_path) == ["sms-opt-outs"]


def test_the_messaging_events_schema_accepts_every_version_of_each_messaging_event() -> None:
    variants = schema_for("sms-messaging-events")["oneOf"]
    versions = [
        schema["properties"]["schema_version"]["const"]
        for schema in (v for v in schema_for("sms-messaging-events")["$defs"].values())
        if schema["properties"]["type"]["const"] == "message.received"
    ]

    assert len(variants) == 7
    assert sorted(versions) == [1, 2, 3]


def test_every_messaging_event_must_name_its_type_and_an_older_version_its_version() -> None:
    # A value without `type` cannot be decoded; one without `schema_version` is read at its type's
    # latest version, so only the older version's variant requires it (and the variants exclude
    # each other).
    required = {
        name: definition["required"]
        for name, definition in schema_for("sms-messaging-events")["$defs"].items()
    }

    assert all(fields[0] == "type" for fields in required.values())
    assert sorted(name for name, fields in required.items() if "schema_version" in fields) == [
        "MessageBlockedV1",
        "MessageReceivedV1",
        "MessageReceivedV2",
        "MessageSentV1",
    ]


def test_every_field_the_service_writes_is_required_in_its_schemas() -> None:
    listed = schema_for("sms-opt-outs")

    assert listed["required"] == ["person_id", "opt_outs", "updated_at"]
    assert "messaging_service_sid" in listed["$defs"]["OptOutEntry"]["required"]


WRITTEN: list[tuple[str, BaseModel]] = [
    ("sms-messaging-events", sent("s1", "person-1", service="MG0001")),
    ("sms-messaging-events", received("r1", " stop ", opt_out_type="STOP")),
    ("sms-messaging-events", received("r2", "  ", sender="MyBrand")),
    ("sms-messaging-events", blocked("b1", "person-1")),
    ("sms-person-events", recorded("p1", "person-1", service="MG0001")),
    ("sms-person-events", recorded("p2", "person-1", cause="send_blocked")),
    ("sms-person-events", cleared("p3", "person-1")),
    ("sms-person-events", overridden("p4", "person-1")),
    (
        "sms-opt-outs",
        OptOutList(
            person_id="person-1",
            opt_outs=(
                OptOutEntry(
                    sender="+14155550100",
                    phone="+14155550123",
                    since=T0 + timedelta(microseconds=250),
                    cause="keyword",
                    keyword="STOP",
                    messaging_service_sid=None,
                ),
            ),
            updated_at=T0,
        ),
    ),
    ("sms-opt-outs", OptOutList(person_id="person-1", opt_outs=(), updated_at=None)),
    (
        "sms-dead-letters",
        DeadLetter.of(
            DecodeError("no 'type' field"),
            topic="sms-messaging-events",
            partition=3,
            offset=42,
            key=b"+14155550123",
            value=b"\xff{}",
            at=T0,
        ),
    ),
]


@pytest.mark.parametrize(("topic", "model"), WRITTEN, ids=lambda x: getattr(x, "type", str(x)))
def test_every_value_the_service_writes_is_valid_under_its_topic_s_schema(
    topic: str, model: BaseModel
) -> None:
    published: dict[str, Any] = json.loads(path_for(topic).read_text())
    validator = Draft202012Validator(published, format_checker=FormatChecker())

    assert list(validator.iter_errors(json.loads(encode(model)))) == []
