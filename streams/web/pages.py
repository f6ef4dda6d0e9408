"""The operator's pages: a look-up form at `/` and a person's page at `/people/{id}` with their SMS
opt-outs (Manage, Remove) and history. Rendered on the server and whole without script: Remove is a
form of its own page, POSTed with the session's CSRF token. The page's script only improves that (a
dialog, the JSON API, freshly rendered sections swapped in); the Content-Security-Policy admits it
and the style sheet by their hashes, and nothing else inline."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import faust
from aiohttp import web
from faust.web import View

from projections.opt_outs import PersonOptOuts
from projections.point_in_time import as_of
from schemas.addresses import address_key
from schemas.events import OptOutEntry
from streams.services.lists import Lists
from streams.settings import Settings
from streams.web.rendering import SCRIPT, Link, html_response, message, render
from streams.web.routing import on_owner
from streams.web.sessions import LOGGED_IN, SESSION, VIA_BEARER, Session, Sessions
from streams.web.views import BadRequest, parse_as_of, person_key


def register_pages(app: faust.App, settings: Settings, lists: Lists, sessions: Sessions) -> None:
    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page("/")  # type: ignore[arg-type]
    async def lookup(view: View, request: web.Request) -> web.StreamResponse:
        person_id = request.query.get("person_id", "").strip()
        if person_id:
            raise web.HTTPFound(f"/people/{urllib.parse.quote(person_id, safe='')}")
        return html_response(
            render("lookup.html", title="Look up a person · SMS opt-outs", logout_csrf=logout_csrf(request))
        )

    # '{' and '}' too: see streams.web.views.PERSON
    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page("/people/{person_id:[^/]+}")  # type: ignore[arg-type]
    async def person(view: View, request: web.Request, person_id: str) -> web.StreamResponse:
        async def handle() -> web.Response:
            state = lists.person(person_id)
            return html_response(person_page(state, moment, logout_csrf=logout_csrf(request)))

        try:
            person_key(person_id)
        except BadRequest:
            return html_response(message("Not a person id"), status=422)
        try:
            # The page's date-time input has no zone: its times, like every time shown, are UTC.
            moment = parse_as_of(request.query.get("as_of"), naive_is_utc=True)
        except BadRequest as bad:
            return html_response(message("Not a point in time", str(bad)), status=422)
        return await on_owner(app, lists.owner, person_id, request, handle)

    @app.page("/people/{person_id:[^/]+}/remove")
    class Removal(View):
        """Remove one sender from the list without script: GET shows the form, POST appends the
        override through the JSON API, so the form and the API never differ in what a removal does
        (forwarding to the owner, idempotency, errors), then goes back to the person's page."""

        async def get(self, request: web.Request, person_id: str) -> web.Response:
            try:
                person_key(person_id)
            except BadRequest:
                return html_response(message("Not a person id"), status=422)
            form = RemovalForm(person_id, request.query.get("sender", ""), request.query.get("phone", ""))
            return with_session(request, lambda session: removal_page(form, sessions.csrf(session)))

        async def post(self, request: web.Request, person_id: str) -> web.Response:
            fields = await request.post()
            form = RemovalForm(
                person_id,
                *(str(fields.get(name, "")) for name in ("sender", "phone", "actor", "reason", "removal")),
            )
            session = request.get(SESSION)
            if not request.get(VIA_BEARER) and not sessions.csrf_matches(session, fields.get("csrf")):
                # A form from another site, or one older than its session: nothing is removed, and
                # nothing it filled in is offered again.
                return html_response(not_from_here(person_id), status=403)
            status, error = await remove_through_api(request, form)
            if status == 200:
                raise web.HTTPSeeOther(f"/people/{urllib.parse.quote(person_id, safe='')}")
            csrf = sessions.csrf(session) if session is not None else ""
            return html_response(removal_page(form, csrf, error), status=status)

    def with_session(
        request: web.Request, render: Callable[[Session], str], status: int = 200
    ) -> web.Response:
        """A page with a form: it needs a session for its CSRF token, which a browser without one
        (OPTOUTS_AUTH=off, or the token in a header) is given here."""
        session = request.get(SESSION)
        fresh = session is None
        if session is None:
            session = sessions.new()
        response = html_response(render(session), status=status)
        if fresh:
            sessions.set_cookie(response, request, session)
        return response

    def logout_csrf(request: web.Request) -> str | None:
        """The CSRF token of a logged-in operator's logout form; None: no form."""
        session = request.get(SESSION)
        if session is None or not request.get(LOGGED_IN):
            return None
        return sessions.csrf(session)

    async def remove_through_api(request: web.Request, form: RemovalForm) -> tuple[int, str]:
        """(status, error) of the API's DELETE for this form, asked of this worker as a client would."""
        person, sender = (urllib.parse.quote(part, safe="") for part in (form.person_id, form.sender))
        url = f"{str(app.conf.canonical_url).rstrip('/')}/people/{person}/sms-opt-outs/{sender}"
        headers = {
            name: request.headers[name] for name in ("Authorization", "Cookie") if name in request.headers
        }
        if form.removal:
            headers["Idempotency-Key"] = form.removal  # the same form sent twice removes once
        body = {"actor": form.actor, "reason": form.reason, **({"phone": form.phone} if form.phone else {})}
        timeout = aiohttp.ClientTimeout(total=settings.send_timeout + settings.override_wait + 5)
        try:
            async with app.http_client.delete(url, json=body, headers=headers, timeout=timeout) as answer:
                if answer.status == 200:
                    return 200, ""
                try:
                    error = str((await answer.json(content_type=None)).get("error", ""))
                except (ValueError, AttributeError):
                    error = ""
                return answer.status, error or f"The removal failed ({answer.status})."
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 503, f"The service did not answer ({type(exc).__name__}): nothing is known to be removed."


@dataclass(frozen=True)
class RemovalForm:
    person_id: str
    sender: str
    phone: str = ""
    actor: str = ""
    reason: str = ""
    removal: str = ""  # the form's own id: the override's Idempotency-Key


def removal_page(form: RemovalForm, csrf: str, problem: str = "") -> str:
    person_href = _person_href(form.person_id)
    return render(
        "remove.html",
        title=f"Remove {form.sender} · SMS opt-outs",
        person_id=form.person_id,
        sender=form.sender,
        phone=form.phone,
        person_href=person_href,
        action=f"{person_href}/remove",
        csrf=csrf,
        removal=form.removal or secrets.token_urlsafe(18),
        actor=form.actor,
        reason=form.reason,
        problem=problem,
    )


def not_from_here(person_id: str) -> str:
    return message(
        "Nothing was removed",
        "This form has expired or did not come from this service.",
        link=Link(_person_href(person_id), "Back to the person's page"),
        title="Nothing was removed · SMS opt-outs",
        person_id=person_id,
    )


def person_page(state: PersonOptOuts, moment: datetime | None = None, logout_csrf: str | None = None) -> str:
    """The person's page; with `moment`, the list and history as they stood then (nothing to manage)."""
    shown = state if moment is None else as_of(state, moment)
    return render(
        "person.html",
        title=f"{state.person_id} · SMS opt-outs",
        person_id=state.person_id,
        logout_csrf=logout_csrf,
        opt_outs=shown.as_list().opt_outs,
        history=shown.history,
        moment=moment,
        # The date-time input's value: it has no zone, and every time shown is UTC.
        as_of_value=f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}" if moment is not None else "",
        person_href=_person_href(state.person_id),
        removal_href=lambda entry: removal_href(state.person_id, entry),
        script=SCRIPT,
    )


def removal_href(person_id: str, entry: OptOutEntry) -> str:
    # The sender as the list keys it: `whatsapp:+1...` is another entry than the SMS `+1...`.
    query = urllib.parse.urlencode({"sender": address_key(entry.channel, entry.sender), "phone": entry.phone})
    return f"{_person_href(person_id)}/remove?{query}"


def _person_href(person_id: str) -> str:
    return f"/people/{urllib.parse.quote(person_id, safe='')}"
