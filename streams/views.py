"""The JSON API on Faust's web server: lists, history, overrides, health, readiness and metrics.

Views parse the request, call the core and map domain errors to 4xx. A person's requests are served
by the worker that owns the person's partition (`streams.routing`).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
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
from schemas.errors import AmbiguousEntry, InvalidNumber, NotOnList
from schemas.events import PERSON_ID_PATTERN, OptOutOverridden
from schemas.phones import normalise_phone, normalise_sender
from streams.broker_watch import BrokerWatch, readiness
from streams.metrics import CONTENT_TYPE, Metrics
from streams.override_log import NotAppended, OverrideLog
from streams.routing import on_owner
from streams.settings import Settings
from streams.tables import Tables, stored

_PERSON_ID = re.compile(PERSON_ID_PATTERN)
MAX_BODY_BYTES = 16 * 1024


class OverrideRequest(BaseModel):
    """The body of an override: who removes the entry and why (and which phone, when it matters)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    actor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    phone: str | None = None


class BadRequest(Exception):
    def __init__(
        self, status: int, error: str, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(error)
        self.response = web.json_response({"error": error, **details}, status=status, headers=headers)


def person_key(person_id: str) -> str:
    if not _PERSON_ID.match(person_id):
        raise BadRequest(422, f"person id {person_id[:140]!r} must be 1 to 128 characters, no '/' or spaces")
    return person_id


def load_person(tables: Tables, person_id: str) -> PersonOptOuts:
    return PersonOptOuts.from_json(person_id, stored(tables.opt_outs.get(person_id.encode())))


# A '+' of an unencoded UTC offset arrives as a space (form encoding): put it back.
_OFFSET_AS_SPACE = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$")


def parse_as_of(raw: str | None, *, naive_is_utc: bool = False) -> datetime | None:
    """The `as_of` query parameter: an RFC 3339 time with its offset (`2026-11-27T09:05:00Z`), or
    None when absent. The operator's page, whose times are all UTC, may pass one without offset."""
    if raw is None or not raw.strip():
        return None
    text = _OFFSET_AS_SPACE.sub(r"\1+\2", raw.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            422, f"as_of {raw[:64]!r} is not an RFC 3339 time, such as 2026-11-27T09:05:00Z"
        ) from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise BadRequest(422, f"as_of {raw[:64]!r} has no UTC offset: end it with Z or +hh:mm")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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

    @app.page("/people/{person_id}/sms-opt-outs")
    async def opt_outs(view: View, request: Request, person_id: str) -> Response:
        async def handle() -> web.Response:
            state = load_person(tables, person_id)
            if moment is None:
                return web.json_response(state.as_list().model_dump(mode="json"))
            # As it stood then: the history up to `as_of`, folded again.
            listed = as_of(state, moment).as_list().model_dump(mode="json")
            return web.json_response({**listed, "as_of": moment.isoformat().replace("+00:00", "Z")})

        try:
            moment = parse_as_of(request.query.get("as_of"))
        except BadRequest as bad:
            return bad.response
        return await for_person(request, person_id, handle)

    @app.page("/people/{person_id}/sms-opt-outs/history")
    async def history(view: View, request: Request, person_id: str) -> Response:
        async def handle() -> web.Response:
            changes = [event.model_dump(mode="json") for event in load_person(tables, person_id).history]
            return web.json_response({"person_id": person_id, "history": changes})

        return await for_person(request, person_id, handle)

    @app.page("/people/{person_id}/sms-opt-outs/{sender}")
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
        try:
            sender = normalise_sender(sender, settings.default_region)
            phone = normalise_phone(body.phone, settings.default_region) if body.phone else None
        except InvalidNumber as exc:
            raise BadRequest(422, str(exc)) from exc
        try:
            event = override(
                load_person(tables, person_id),
                sender,
                phone,
                actor=body.actor,
                reason=body.reason,
                override_id=str(uuid.uuid4()),
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
        """Into the person log, acknowledged by the brokers (acks=all), or a 503 and never appended."""
        try:
            await overrides.append(event)
        except NotAppended as exc:
            raise BadRequest(
                503, f"the override could not be written to the log: {exc}", headers={"Retry-After": "5"}
            ) from exc

    async def until_folded(person_id: str, event: OptOutOverridden) -> bool:
        """Read-your-write: wait, bounded, until the list shows the override."""
        deadline = time.monotonic() + settings.override_wait
        while True:
            stored_state = stored(tables.opt_outs.get(person_id.encode())) or {}
            if event.event_id in stored_state.get("seen", ()):
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
    raw = await request.content.read(MAX_BODY_BYTES + 1)
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
