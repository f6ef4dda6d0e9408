"""The JSON API on Faust's web server: lists, history, overrides, health, readiness and metrics.

Views parse the request, call the core and map domain errors to 4xx. A person's requests are served
by the worker that owns the person's partition (`streams.web.routing`).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

import faust
import mode
from aiohttp import web
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from projections.opt_outs import PersonOptOuts
from projections.overrides import override
from projections.point_in_time import as_of
from schemas import inputs
from schemas.errors import AmbiguousEntry, NotOnList
from schemas.events import AnyPersonEvent, OptOutOverridden
from schemas.inputs import InvalidInput, excerpt
from streams.engine.tables import Tables, stored
from streams.pipeline.broker_watch import BrokerWatch, readiness
from streams.pipeline.metrics import CONTENT_TYPE, Metrics
from streams.pipeline.person_history import read_history
from streams.services.override_log import NotAppended, OverrideLog
from streams.settings import Settings
from streams.web.http_errors import error_response
from streams.web.routing import on_owner

MAX_BODY_BYTES = 16 * 1024
# A path segment that is a person id: any character but '/' (aiohttp's default also refuses '{' and
# '}', which a person id may hold); `person_key` then applies the contract's definition.
PERSON = "{person_id:[^/]+}"
IDEMPOTENCY_KEY = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")  # visible ASCII, as HTTP header values are
# The namespace of override ids derived from an Idempotency-Key (uuid5 of person and key).
_OVERRIDE_IDS = uuid.UUID("0b3c5a4e-8f1d-5c2b-9a57-6e0d3f1c2b71")


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


def load_state(tables: Tables, person_id: str) -> PersonOptOuts:
    """The person's list as stored, without its history: the same cost however long that is."""
    return PersonOptOuts.from_json(person_id, stored(tables.opt_outs.get(person_id.encode())))


def load_person(tables: Tables, person_id: str) -> PersonOptOuts:
    """The person's list and their whole history (for the page, an override, a past moment)."""
    state = load_state(tables, person_id)
    earlier = read_history(person_id, state.history_start, tables.opt_outs.get)
    return replace(state, history_start=0, history=(*earlier, *state.history))


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


def override_id(person_id: str, idempotency_key: str | None) -> str:
    """The override's event id: derived from the client's Idempotency-Key when it sent one (a retry
    then makes the same event, which the fold applies once), else a new one."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadRequest(
            422, f"{IDEMPOTENCY_KEY} {excerpt(idempotency_key)} must be 1 to 200 visible ASCII characters"
        )
    return str(uuid.uuid5(_OVERRIDE_IDS, f"{person_id}/{idempotency_key}"))  # no '/' in a person id


def earlier_override(
    history: tuple[AnyPersonEvent, ...] | list[AnyPersonEvent], event_id: str, sender: str, phone: str | None
) -> OptOutOverridden | None:
    """The override already in the history under `event_id` (a retry), or None; a 422 when that id
    is another change, or removed another entry (an Idempotency-Key used twice)."""
    done = next((event for event in history if event.event_id == event_id), None)
    if done is None:
        return None
    if not isinstance(done, OptOutOverridden) or done.sender != sender or phone not in (None, done.phone):
        raise BadRequest(
            422,
            f"this {IDEMPOTENCY_KEY} was used for another change ({done.type} of {done.sender} at"
            f" {done.phone}): use a new key for a new override",
        )
    return done


def register_views(
    app: faust.App, settings: Settings, tables: Tables, metrics: Metrics, watch: BrokerWatch
) -> None:
    overrides = OverrideLog(settings.brokers, settings.send_timeout, client_id=f"{settings.app_id}-overrides")

    @app.service
    class CloseOverrideLog(mode.Service):
        async def on_stop(self) -> None:
            await overrides.close()

    async def for_person(request: Request, person_id: str, handle: Any) -> web.StreamResponse:
        try:
            person_key(person_id)
            return await on_owner(app, tables.opt_outs, person_id, request, handle)
        except BadRequest as bad:
            return bad.response

    @app.page(f"/people/{PERSON}/sms-opt-outs")
    async def opt_outs(view: View, request: Request, person_id: str) -> Response:
        async def handle() -> web.Response:
            if moment is None:
                return web.json_response(load_state(tables, person_id).as_list().model_dump(mode="json"))
            state = load_person(tables, person_id)
            # As it stood then: the history up to `as_of`, folded again.
            listed = as_of(state, moment).as_list().model_dump(mode="json")
            return web.json_response({**listed, "as_of": moment.isoformat().replace("+00:00", "Z")})

        try:
            moment = parse_as_of(request.query.get("as_of"))
        except BadRequest as bad:
            return bad.response
        return await for_person(request, person_id, handle)

    @app.page(f"/people/{PERSON}/sms-opt-outs/history")
    async def history(view: View, request: Request, person_id: str) -> Response:
        async def handle() -> web.Response:
            length = load_state(tables, person_id).history_length
            stop = length if before is None else min(before, length)
            start = max(0, stop - limit)
            page = read_history(person_id, length, tables.opt_outs.get, start=start, stop=stop)
            return web.json_response(
                {
                    "person_id": person_id,
                    "history": [event.model_dump(mode="json") for event in page],
                    # where the page before this one ends (`?before=`), null at the first change
                    "before": start or None,
                    "total": length,
                }
            )

        try:
            limit = page_bound(request.query.get("limit"), "limit", HISTORY_PAGE, low=1, high=HISTORY_PAGE)
            before = page_bound(request.query.get("before"), "before", None, low=0, high=None)
        except BadRequest as bad:
            return bad.response
        return await for_person(request, person_id, handle)

    @app.page(f"/people/{PERSON}/sms-opt-outs/{{sender}}")
    class Override(View):
        async def delete(self, request: Request, person_id: str, sender: str) -> Response:
            async def handle() -> web.Response:
                try:
                    return await remove(request, person_id, sender)
                except BadRequest as bad:
                    return bad.response

            return await for_person(request, person_id, handle)

    async def remove(request: Request, person_id: str, sender: str) -> web.Response:
        body = await read_override(request)
        region = settings.default_region
        try:
            sender = inputs.sender(sender, region)
            phone = inputs.phone(body.phone, region) if body.phone else None
        except InvalidInput as exc:
            raise BadRequest(422, str(exc)) from None
        event_id = override_id(person_id, request.headers.get(IDEMPOTENCY_KEY))
        state = load_person(tables, person_id)
        done = earlier_override(state.history, event_id, sender, phone)
        if done is not None:  # a retry of an override that is in the log: nothing more to append
            return web.json_response({**done.model_dump(mode="json"), "list_updated": True})
        try:
            event = override(
                state,
                sender,
                phone,
                actor=body.actor,
                reason=body.reason,
                override_id=event_id,
                at=datetime.now(UTC),
            )
        except NotOnList as exc:
            raise BadRequest(404, str(exc)) from exc
        except AmbiguousEntry as exc:
            raise BadRequest(409, str(exc), phones=exc.phones) from exc
        await append(event)
        shown = await until_folded(person_id, event)
        return web.json_response({**event.model_dump(mode="json"), "list_updated": shown})

    async def append(event: OptOutOverridden) -> None:
        """Into the person log, acknowledged by the brokers (acks=all); else a 503 whose outcome is
        unknown: a write that was not acknowledged in time may still reach the log."""
        try:
            await overrides.append(event)
        except NotAppended as exc:
            history = f"/people/{urllib.parse.quote(event.person_id, safe='')}/sms-opt-outs/history"
            raise BadRequest(
                503,
                f"the brokers did not acknowledge the override in time ({exc}): it may or may not be"
                f" in the log. Look for event_id {event.event_id} in GET {history} before deciding;"
                f" a retry with the same {IDEMPOTENCY_KEY} never appends a second override",
                headers={"Retry-After": "5"},
                event_id=event.event_id,
                history=history,
            ) from exc

    async def until_folded(person_id: str, event: OptOutOverridden) -> bool:
        """Read-your-write: wait, bounded, until the list shows the override."""
        deadline = time.monotonic() + settings.override_wait
        while True:
            removed = load_state(tables, person_id).removed.get((event.sender, event.phone))
            if removed is not None and removed >= event.occurred_at:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    @app.page("/health")
    async def health(view: View, request: Request) -> Response:
        return view.json({"status": "alive"})

    @app.page("/ready")
    async def ready(view: View, request: Request) -> Response:
        recovery = app.tables.recovery
        status = readiness(
            recovered=recovery.completed.is_set() and not recovery.in_recovery,
            rebalancing=bool(app.rebalancing),
            view=watch.view,
            max_lag=settings.ready_max_lag,
            app_id=app.conf.id,
        )
        return view.json(status, status=200 if status["ready"] else 503)

    @app.page("/metrics")
    async def metrics_view(view: View, request: Request) -> Response:
        return view.bytes(metrics.exposition(), content_type=CONTENT_TYPE)


async def read_override(request: Request) -> OverrideRequest:
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
