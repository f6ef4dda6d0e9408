"""The OpenAPI 3.1 document of the worker's HTTP API, built from the models the views read and write
(`schemas.events`, `streams.web.views`): served at `/openapi.json`, committed as `docs/openapi.json`
(`make openapi` writes it; tests/unit/test_openapi.py fails when it is stale). The operator's HTML
pages, `/login` and Faust's `/router/` are not part of it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import faust
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import models_json_schema

from schemas.events import AnyPersonEvent, OptOutList, OptOutOverridden, PersonId, Timestamp
from schemas.json_schemas import _Published
from streams.services.overrides import IDEMPOTENCY_KEY
from streams.web.views import MAX_BODY_BYTES, OverrideRequest

PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
_REF = "#/components/schemas/{model}"


# ---- answers that are plain JSON in the views, described here ---------------------------------


class Error(BaseModel):
    """Every error the worker answers: `error` says what is wrong (naming an input by a short
    excerpt); some carry more (`problems`, `phones`, `event_id`, `history`)."""

    model_config = ConfigDict(extra="allow")

    error: str
    problems: list[dict[str, str]] | None = Field(None, description="422 on a body: each field at fault.")
    phones: list[str] | None = Field(None, description="409: the phones the sender is listed for.")
    event_id: str | None = Field(None, description="503 on an override: its id, to look for in the history.")
    history: str | None = Field(None, description="503 on an override: where to look for it.")


class ListAsOf(OptOutList):
    """The list as it stood at `as_of`."""

    as_of: Timestamp


class History(BaseModel):
    """A page of the changes of the person's list, oldest first: the newest `limit` before `before`."""

    person_id: PersonId
    history: list[AnyPersonEvent]
    before: int | None = Field(
        description="Where this page starts: `?before=` it for the page before; null at the first change."
    )
    total: int = Field(description="How many changes the history holds.")


class Overridden(OptOutOverridden):
    """The `opt_out.overridden` event appended, and whether the list showed it before the answer."""

    list_updated: bool


class Health(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    ready: bool
    tables_recovered: bool
    rebalancing: bool
    brokers_reachable: bool
    max_lag: int
    lagging: dict[str, int] = Field(description="Each input partition over the threshold, with its lag.")
    app_id: str = Field(description="The generation that answers.")


_MODELS: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
    (Error, "serialization"),
    (OptOutList, "serialization"),
    (ListAsOf, "serialization"),
    (History, "serialization"),
    (Overridden, "serialization"),
    (OverrideRequest, "validation"),
    (Health, "serialization"),
    (Readiness, "serialization"),
]


# ---- the document ---------------------------------------------------------------------------------


def _schema(type_: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(type_).json_schema(schema_generator=_Published)
    return schema


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    said = {
        "401": "Without the operator token (`Authorization: Bearer TOKEN`).",
        "404": "No such entry, or no such path.",
        "409": "The sender is listed for several phones: name one in `phone`.",
        "413": f"A body over {MAX_BODY_BYTES} bytes.",
        "503": "Not now (tables recovering, partitions moving, brokers not acknowledging): see Retry-After.",
    }
    answers = {str(status): _json("Error", said.get(str(status), "Refused.")) for status in statuses}
    answers["4XX"] = _json(
        "Error", "Any other refusal: a bad path, query, header or body, a Host not allowed."
    )
    return answers


_PERSON = {
    "name": "person_id",
    "in": "path",
    "required": True,
    "description": "1 to 128 characters, without '/', white space, control or invisible characters.",
    "schema": _schema(PersonId),
}
_TOKEN: list[dict[str, list[str]]] = [{"operatorToken": []}]


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, as served and committed."""
    _, defs = models_json_schema(_MODELS, ref_template=_REF, schema_generator=_Published)
    person = {"tags": ["people"], "security": _TOKEN}
    paths: dict[str, Any] = {
        "/people/{person_id}/sms-opt-outs": {
            "get": {
                **person,
                "operationId": "listOptOuts",
                "summary": "The senders the person opted out of (an unknown person: an empty list).",
                "parameters": [
                    _PERSON,
                    {
                        "name": "as_of",
                        "in": "query",
                        "required": False,
                        "description": "The list as it stood then: RFC 3339 with an offset.",
                        "schema": _schema(Timestamp),
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The list (with `as_of` when asked for).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        {"$ref": _REF.format(model="OptOutList")},
                                        {"$ref": _REF.format(model="ListAsOf")},
                                    ]
                                }
                            }
                        },
                    },
                    **_errors(401, 503),
                },
            }
        },
        "/people/{person_id}/sms-opt-outs/history": {
            "get": {
                **person,
                "operationId": "listHistory",
                "summary": "The changes of the person's list, oldest first, a page at a time.",
                "parameters": [
                    _PERSON,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "Changes on the page, the newest before `before` (1 to 1000; 1000).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "description": "The page ends before this change (from 0); the end when absent.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {"200": _json("History", "A page of the history."), **_errors(401, 422, 503)},
            }
        },
        "/people/{person_id}/sms-opt-outs/{sender}": {
            "delete": {
                **person,
                "operationId": "removeOptOut",
                "summary": "Remove a sender from the person's list: an audited override (not in Twilio).",
                "parameters": [
                    _PERSON,
                    {
                        "name": "sender",
                        "in": "path",
                        "required": True,
                        "description": "The sender in any form: `+14155550100`, `(415) 555-0100`, `12345`.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                    {
                        "name": IDEMPOTENCY_KEY,
                        "in": "header",
                        "required": False,
                        "description": "The override's id derives from it: a retry appends nothing new.",
                        "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="OverrideRequest")}}
                    },
                },
                "responses": {
                    "200": _json(
                        "Overridden", "Appended (or, with the same Idempotency-Key, appended before)."
                    ),
                    **_errors(401, 404, 409, 413, 503),
                },
            }
        },
        "/health": {
            "get": {
                "tags": ["operations"],
                "operationId": "health",
                "summary": "Alive while the process serves HTTP.",
                "responses": {"200": _json("Health", "Alive."), **_errors()},
            }
        },
        "/ready": {
            "get": {
                "tags": ["operations"],
                "operationId": "ready",
                "summary": "Tables recovered, no rebalance, brokers reachable, lag under the threshold.",
                "responses": {
                    "200": _json("Readiness", "Ready."),
                    "503": _json("Readiness", "Not ready: the body says why."),
                    **_errors(),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "operationId": "metrics",
                "summary": "Prometheus text format.",
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(),
                },
            }
        },
        **{
            f"/twilio/{name}": {
                "post": {
                    "tags": ["twilio"],
                    "operationId": f"twilio{name.capitalize()}",
                    "summary": summary,
                    "parameters": [
                        {
                            "name": "X-Twilio-Signature",
                            "in": "header",
                            "required": False,
                            "description": "Twilio's signature of the public URL and the parameters.",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "In Kafka (acks=all): an empty TwiML answer.",
                            "content": {
                                "text/xml": {"schema": {"type": "string"}},
                                "application/xml": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(403, 413, 503),
                    },
                }
            }
            for name, summary in (
                ("messages", "Twilio's inbound-message webhook (form-encoded, signed)."),
                ("status", "Twilio's message status callback (form-encoded, signed)."),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sms-optouts",
            "version": "1",
            "description": "Per-person SMS opt-out lists, their history and overrides. Errors are"
            ' `{"error": ...}` (docs/http-api.md).',
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "OPTOUTS_OPERATOR_TOKEN, or the token the worker generated at start.",
                }
            },
        },
    }


def register_openapi(app: faust.App) -> None:
    served = document()

    @app.page("/openapi.json")
    async def openapi(view: View, request: Request) -> Response:
        return view.json(served)


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def stale(path: Path = PATH) -> bool:
    return not path.exists() or path.read_text() != render()


def main(argv: list[str]) -> int:
    """`python -m streams.web.openapi` writes docs/openapi.json; with `--check`, exits 1 when it is stale."""
    if "--check" in argv:
        if stale():
            print(f"{PATH} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(render())
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
