"""The JSON API on Faust's web server: lists, history, overrides, health, readiness and metrics.

Views parse the request, call the use cases (streams.services) and map their errors to 4xx and
503. A person's requests are served by the worker that owns the person's partition
(`streams.web.routing`).
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime
from typing import Annotated, Any

import faust
from aiohttp import web
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from projections.point_in_time import as_of
from schemas import inputs
from schemas.errors import AmbiguousEntry, NotOnList
from schemas.inputs import InvalidInput, excerpt
from streams.pipeline.broker_watch import BrokerWatch, readiness, tables_recovered
from streams.pipeline.metrics import CONTENT_TYPE, Metrics
from streams.services.lists import Lists
from streams.services.overrides import (
    IDEMPOTENCY_KEY,
    BadIdempotencyKey,
    KeyReused,
    NotAcknowledged,
    Overrides,
)
from streams.settings import Settings
from streams.web.http_errors import error_response
from streams.web.routing import on_owner

MAX_BODY_BYTES = 16 * 1024
# A path segment that is a person id: any character but '/' (aiohttp's default also refuses '{' and
# '}', which a person id may hold); `person_key` then applies the contract's definition.
PERSON = "{person_id:[^/]+}"


class OverrideRequest(BaseModel):
    """The body of an override: who removes the entry and why (and which phone, when it matters)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    actor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None


class BadRequest(Exception):
    def __init__(
        self, status: int, error: str, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(error)
        self.response = error_response(status, error, headers, **details)


def person_key(person_id: str) -> str:
    """The person id of a path, as the log defines it (`schemas.inputs.person_id`), or a 422."""
    try:
        return inputs.person_id(person_id)
    except InvalidInput as exc:
        raise BadRequest(422, str(exc)) from None


# A '+' of an unencoded UTC offset arrives as a space (form encoding): put it back.
_OFFSET_AS_SPACE = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$")


def parse_as_of(raw: str | None, *, naive_is_utc: bool = False) -> datetime | None:
    """The `as_of` query parameter: an RFC 3339 time with its offset (`2026-11-27T09:05:00Z`), in
    UTC, or None when absent. The operator's page, whose times are all UTC, may pass one without an
    offset, or its field left empty."""
    if raw is None or (naive_is_utc and not raw.strip()):
        return None
    try:
        return inputs.timestamp(_OFFSET_AS_SPACE.sub(r"\1+\2", raw.strip()), naive_is_utc=naive_is_utc)
    except InvalidInput as exc:
        raise BadRequest(422, f"as_of {excerpt(raw)} {exc.problem}") from None


# Changes a history page holds at most (the newest first, unless `before` says where to end).
HISTORY_PAGE = 1000


def page_bound(raw: str | None, name: str, default: int | None, *, low: int, high: int | None) -> int | None:
    """A paging query parameter: a whole number from `low` to `high`, `default` when absent."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        most = f" to {high}" if high is not None else " or more"
        raise BadRequest(422, f"{name} {excerpt(raw)} must be a whole number from {low}{most}")
    return int(raw)


def register_views(
    app: faust.App,
    settings: Settings,
    lists: Lists,
    overrides: Overrides,
    metrics: Metrics,
    watch: BrokerWatch,
) -> None:
    async def for_person(request: web.Request, person_id: str, handle: Any) -> web.StreamResponse:
        try:
            person_key(person_id)
            return await on_owner(app, lists.owner, person_id, request, handle)
        except BadRequest as bad:
            return bad.response

    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page(f"/people/{PERSON}/sms-opt-outs")  # type: ignore[arg-type]
    async def opt_outs(view: View, request: web.Request, person_id: str) -> web.StreamResponse:
        async def handle() -> web.Response:
            if moment is None:
                return web.json_response(lists.state(person_id).as_list().model_dump(mode="json"))
            state = lists.person(person_id)
            # As it stood then: the history up to `as_of`, folded again.
            listed = as_of(state, moment).as_list().model_dump(mode="json")
            return web.json_response({**listed, "as_of": moment.isoformat().replace("+00:00", "Z")})

        try:
            moment = parse_as_of(request.query.get("as_of"))
        except BadRequest as bad:
            return bad.response
        return await for_person(request, person_id, handle)

    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page(f"/people/{PERSON}/sms-opt-outs/history")  # type: ignore[arg-type]
    async def history(view: View, request: web.Request, person_id: str) -> web.StreamResponse:
        async def handle() -> web.Response:
            page = lists.history_page(person_id, HISTORY_PAGE if limit is None else limit, before)
            return web.json_response(
                {
                    "person_id": person_id,
                    "history": [event.model_dump(mode="json") for event in page.events],
                    # where the page before this one ends (`?before=`), null at the first change
                    "before": page.start or None,
                    "total": page.total,
                }
            )

        try:
            limit = page_bound(request.query.get("limit"), "limit", None, low=1, high=HISTORY_PAGE)
            before = page_bound(request.query.get("before"), "before", None, low=0, high=None)
        except BadRequest as bad:
            return bad.response
        return await for_person(request, person_id, handle)

    @app.page(f"/people/{PERSON}/sms-opt-outs/{{sender}}")
    class Override(View):
        async def delete(self, request: web.Request, person_id: str, sender: str) -> web.StreamResponse:
            async def handle() -> web.Response:
                try:
                    return await remove(request, person_id, sender)
                except BadRequest as bad:
                    return bad.response

            return await for_person(request, person_id, handle)

    async def remove(request: web.Request, person_id: str, sender: str) -> web.Response:
        body = await read_override(request)
        try:
            removal = await overrides.remove(
                person_id,
                sender,
                body.phone,
                actor=body.actor,
                reason=body.reason,
                idempotency_key=request.headers.get(IDEMPOTENCY_KEY),
            )
        except (InvalidInput, BadIdempotencyKey, KeyReused) as exc:
            raise BadRequest(422, str(exc)) from None
        except NotOnList as exc:
            raise BadRequest(404, str(exc)) from exc
        except AmbiguousEntry as exc:
            raise BadRequest(409, str(exc), phones=exc.phones) from exc
        except NotAcknowledged as exc:
            raise not_acknowledged(exc) from exc
        return web.json_response(
            {**removal.event.model_dump(mode="json"), "list_updated": removal.list_updated}
        )

    @app.page("/health")
    async def health(view: View, request: Request) -> Response:
        return view.json({"status": "alive"})

    @app.page("/ready")
    async def ready(view: View, request: Request) -> Response:
        status = readiness(
            recovered=tables_recovered(app),
            rebalancing=bool(app.rebalancing),
            view=watch.view,
            max_lag=settings.ready_max_lag,
            app_id=app.conf.id,
        )
        return view.json(status, status=200 if status["ready"] else 503)

    @app.page("/metrics")
    async def metrics_view(view: View, request: Request) -> Response:
        return view.bytes(metrics.exposition(), content_type=CONTENT_TYPE)


async def read_override(request: web.Request) -> OverrideRequest:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is over {MAX_BODY_BYTES} bytes")
    raw = await request.read()  # all of it, however many writes it came in (within client_max_size)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        return OverrideRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "problem": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        raise BadRequest(422, "the body must be JSON with 'actor' and 'reason'", problems=problems) from exc


def not_acknowledged(exc: NotAcknowledged) -> BadRequest:
    """A 503 whose outcome is unknown: a write that was not acknowledged in time may still reach the
    log."""
    event = exc.event
    history = f"/people/{urllib.parse.quote(event.person_id, safe='')}/sms-opt-outs/history"
    return BadRequest(
        503,
        f"the brokers did not acknowledge the override in time ({exc}): it may or may not be"
        f" in the log. Look for event_id {event.event_id} in GET {history} before deciding;"
        f" a retry with the same {IDEMPOTENCY_KEY} never appends a second override",
        headers={"Retry-After": "5"},
        event_id=event.event_id,
        history=history,
    )
