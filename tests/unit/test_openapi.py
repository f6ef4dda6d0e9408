"""The committed OpenAPI document (docs/openapi.json) is the one the code builds and serves."""

from __future__ import annotations

from pathlib import Path

import schemathesis

from streams.web.openapi import PATH, document, render, stale


def test_the_committed_openapi_document_is_not_stale() -> None:
    assert not stale(), "the API's models or views changed: run `make openapi` and commit docs/openapi.json"


def test_a_changed_document_is_stale(tmp_path: Path) -> None:
    changed = tmp_path / "openapi.json"
    changed.write_text(render().replace('"listHistory"', '"history"'))

    assert stale(changed)
    assert PATH.name == "openapi.json"


def test_the_document_is_openapi_3_1_with_every_operation_of_the_api() -> None:
    operations = {
        f"{method.upper()} {path}"
        for result in schemathesis.openapi.from_dict(document()).get_all_operations()
        for operation in [result.ok()]
        for method, path in [(operation.method, operation.path)]
    }

    assert document()["openapi"] == "3.1.0"
    assert operations == {
        "GET /people/{person_id}/sms-opt-outs",
        "GET /people/{person_id}/sms-opt-outs/history",
        "DELETE /people/{person_id}/sms-opt-outs/{sender}",
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /openapi.json",
        "POST /twilio/messages",
        "POST /twilio/status",
    }


def test_every_error_is_the_error_model_and_the_person_id_is_the_contract_s() -> None:
    spec = document()
    listed = spec["paths"]["/people/{person_id}/sms-opt-outs"]["get"]
    person = next(p for p in listed["parameters"] if p["name"] == "person_id")

    assert listed["responses"]["4XX"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "\\x00" in person["schema"]["pattern"] and person["schema"]["not"] == {"pattern": "\\n$"}
