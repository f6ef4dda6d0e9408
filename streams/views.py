"""The read API on Faust's web server: lists, history, health, readiness and metrics.

Views only parse the request, read the table and shape the answer; a person's list is read on the
worker that owns the person's partition (Faust's table routing forwards the request there).
"""

from __future__ import annotations

import re
from typing import Any

import faust
from faust.web import Request, Response, View

from projections.opt_outs import PersonOptOuts
from schemas.events import PERSON_ID_PATTERN
from streams.metrics import CONTENT_TYPE, Metrics
from streams.tables import Tables

_PERSON_ID = re.compile(PERSON_ID_PATTERN)


def register_views(app: faust.App, tables: Tables, metrics: Metrics) -> None:
    def person(view: View, person_id: str) -> PersonOptOuts | Response:
        if not _PERSON_ID.match(person_id):
            return view.json(
                {"error": f"person id {person_id[:140]!r} must be 1 to 128 characters, no '/' or spaces"},
                status=422,
            )
        return PersonOptOuts.from_json(person_id, tables.opt_outs.get(person_id.encode()))

    @app.page("/people/{person_id}/sms-opt-outs")
    @app.table_route(table=tables.opt_outs, match_info="person_id")
    async def opt_outs(view: View, request: Request, person_id: str) -> Response:
        state = person(view, person_id)
        if isinstance(state, PersonOptOuts):
            return view.json(state.as_list().model_dump(mode="json"))
        return state

    @app.page("/people/{person_id}/sms-opt-outs/history")
    @app.table_route(table=tables.opt_outs, match_info="person_id")
    async def history(view: View, request: Request, person_id: str) -> Response:
        state = person(view, person_id)
        if isinstance(state, PersonOptOuts):
            changes = [event.model_dump(mode="json") for event in state.history]
            return view.json({"person_id": person_id, "history": changes})
        return state

    @app.page("/health")
    async def health(view: View, request: Request) -> Response:
        return view.json({"status": "alive"})

    @app.page("/ready")
    async def ready(view: View, request: Request) -> Response:
        status = readiness(app)
        return view.json(status, status=200 if status["ready"] else 503)

    @app.page("/metrics")
    async def metrics_view(view: View, request: Request) -> Response:
        return view.bytes(metrics.exposition(), content_type=CONTENT_TYPE)


def readiness(app: faust.App) -> dict[str, Any]:
    """Ready = partitions assigned, tables recovered from their changelogs, not rebalancing.

    Being caught up is not judged from the brokers' high watermarks: some brokers (Tansu) answer a
    watermark short of the log end, which would make a worker look ready or behind when it is not.
    """
    recovery = app.tables.recovery
    recovered = recovery.completed.is_set() and not recovery.in_recovery
    rebalancing = bool(app.rebalancing)
    return {
        "ready": recovered and not rebalancing,
        "tables_recovered": recovered,
        "rebalancing": rebalancing,
    }
