"""The committed JSON Schemas of the topics' values are those the models generate (`make schemas`)."""

from __future__ import annotations

from pathlib import Path

from schemas.json_schemas import DIRECTORY, TOPIC_VALUES, render, schema_for, stale


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


def test_the_messaging_events_schema_accepts_both_versions_of_received_messages() -> None:
    variants = schema_for("sms-messaging-events")["anyOf"]
    versions = [
        schema["properties"]["schema_version"]["const"]
        for schema in (v for v in schema_for("sms-messaging-events")["$defs"].values())
        if schema["properties"]["type"]["const"] == "message.received"
    ]

    assert len(variants) == 4
    assert sorted(versions) == [1, 2]


def test_every_field_the_service_writes_is_required_in_its_schemas() -> None:
    listed = schema_for("sms-opt-outs")

    assert listed["required"] == ["person_id", "opt_outs", "updated_at"]
    assert "messaging_service_sid" in listed["$defs"]["OptOutEntry"]["required"]
