"""The operator's pages: a look-up form at `/` and a person's page at `/people/{id}` with their SMS
opt-outs (Manage, Remove) and history. Rendered on the server and whole without script: Remove is a
form of its own page, POSTed with the session's CSRF token. The page's script only improves that (a
dialog, the JSON API, freshly rendered sections swapped in); the Content-Security-Policy admits it
and the style sheet by their hashes, and nothing else inline."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from importlib import resources
from string import Template

import aiohttp
import faust
from aiohttp import web
from faust.web import View

from projections.opt_outs import PersonOptOuts
from projections.point_in_time import as_of
from schemas.events import AnyPersonEvent, OptOutEntry
from streams.services.lists import Lists
from streams.settings import Settings
from streams.web.routing import on_owner
from streams.web.sessions import LOGGED_IN, SESSION, VIA_BEARER, Session, Sessions
from streams.web.views import BadRequest, parse_as_of, person_key

TEMPLATES = resources.files("streams.web") / "templates"
_PAGE = Template((TEMPLATES / "page.html").read_text())
_PERSON = Template((TEMPLATES / "person.html").read_text())
_REMOVE = Template((TEMPLATES / "remove.html").read_text())
_LOGOUT = Template((TEMPLATES / "logout.html").read_text())
_LOOKUP = (TEMPLATES / "lookup.html").read_text()
_STYLE = (TEMPLATES / "page.css").read_text()
_SCRIPT = (TEMPLATES / "person.js").read_text()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; img-src 'self' data:;"
    " form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)

# Who made a change that no operator made: the person texting a keyword, or Twilio refusing a send.
_BY = {"keyword": "the person", "opt_in_keyword": "the person", "send_blocked": "Twilio", "override": ""}
_CHANGE = {
    "opt_out.recorded": ("Opted out", ""),
    "opt_out.cleared": ("Opted in", "cleared"),
    "opt_out.overridden": ("Removed by operator", "removed"),
}


def register_pages(app: faust.App, settings: Settings, lists: Lists, sessions: Sessions) -> None:
    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page("/")  # type: ignore[arg-type]
    async def lookup(view: View, request: web.Request) -> web.StreamResponse:
        person_id = request.query.get("person_id", "").strip()
        if person_id:
            raise web.HTTPFound(f"/people/{urllib.parse.quote(person_id, safe='')}")
        return html_response(page("Look up a person · SMS opt-outs", _LOOKUP, account=account(request)))

    # '{' and '}' too: see streams.web.views.PERSON
    # Faust types a page's request and response as its own abstract ones; its aiohttp driver
    # passes aiohttp's request and serves aiohttp's responses, which these handlers use.
    @app.page("/people/{person_id:[^/]+}")  # type: ignore[arg-type]
    async def person(view: View, request: web.Request, person_id: str) -> web.StreamResponse:
        async def handle() -> web.Response:
            state = lists.person(person_id)
            return html_response(person_page(state, moment, account=account(request)))

        try:
            person_key(person_id)
        except BadRequest:
            return html_response(page("Not a person id", "<h1>Not a person id</h1>"), status=422)
        try:
            # The page's date-time input has no zone: its times, like every time shown, are UTC.
            moment = parse_as_of(request.query.get("as_of"), naive_is_utc=True)
        except BadRequest as bad:
            title = "Not a point in time"
            return html_response(page(title, f"<h1>{title}</h1><p>{escape(str(bad))}</p>"), status=422)
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
                return html_response(page("Not a person id", "<h1>Not a person id</h1>"), status=422)
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

    def account(request: web.Request) -> str:
        session = request.get(SESSION)
        if session is None or not request.get(LOGGED_IN):
            return ""
        return _LOGOUT.substitute(csrf=escape(sessions.csrf(session)))

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
    person_href = f"/people/{urllib.parse.quote(form.person_id, safe='')}"
    main = _REMOVE.substitute(
        sender=escape(form.sender),
        phone=escape(form.phone),
        person_id=escape(form.person_id),
        person_href=escape(person_href),
        action=escape(f"{person_href}/remove"),
        csrf=escape(csrf),
        removal=escape(form.removal or secrets.token_urlsafe(18)),
        actor=escape(form.actor),
        reason=escape(form.reason),
        problem=escape(problem),
    )
    return page(f"Remove {form.sender} · SMS opt-outs", main, form.person_id)


def not_from_here(person_id: str) -> str:
    href = escape(f"/people/{urllib.parse.quote(person_id, safe='')}")
    main = (
        "<h1>Nothing was removed</h1><p>This form has expired or did not come from this service.</p>"
        f'<p><a href="{href}">Back to the person\'s page</a></p>'
    )
    return page("Nothing was removed · SMS opt-outs", main, person_id)


def html_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)


def page(title: str, main: str, person_id: str = "", account: str = "") -> str:
    """A whole page around `main`; `account` is the logout form of a logged-in operator."""
    return _PAGE.substitute(
        title=escape(title), main=main, person_id_value=escape(person_id), style=_STYLE, account=account
    )


def person_page(state: PersonOptOuts, moment: datetime | None = None, account: str = "") -> str:
    """The person's page; with `moment`, the list and history as they stood then (nothing to manage)."""
    shown = state if moment is None else as_of(state, moment)
    listed = shown.as_list().opt_outs
    rows = "".join(opt_out_row(state.person_id, entry) for entry in listed) or empty_row(
        5, "No SMS opt-outs."
    )
    changes = "".join(history_row(event) for event in shown.history) or empty_row(8, "No changes yet.")
    main = _PERSON.substitute(
        person_id=escape(state.person_id),
        opt_out_rows=rows,
        history_rows=changes,
        as_of_form=as_of_form(state.person_id, moment),
        as_of_note=(
            f'<p class="as-of-note">As the list stood at <time datetime="{moment.isoformat()}">'
            f"{moment:%Y-%m-%d %H:%M:%S} UTC</time>.</p>"
            if moment is not None
            else ""
        ),
        manage="" if moment is not None else _MANAGE,
        script=_SCRIPT,
    )
    return page(f"{state.person_id} · SMS opt-outs", main, state.person_id, account)


_MANAGE = '<button id="manage" type="button" aria-pressed="false">Manage</button>'


def as_of_form(person_id: str, moment: datetime | None) -> str:
    """A date-time input (UTC) that shows the list as it stood then, and a way back to now."""
    value = f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}" if moment is not None else ""
    back = f'<a href="/people/{urllib.parse.quote(person_id, safe="")}">Now</a>' if moment is not None else ""
    return (
        '<form class="as-of" method="get" role="search">'
        '<label for="as-of">As of (UTC)</label>'
        f'<input id="as-of" name="as_of" type="datetime-local" step="1" value="{value}">'
        f'<button type="submit">Show</button>{back}</form>'
    )


def opt_out_row(person_id: str, entry: OptOutEntry) -> str:
    service = (
        f'<div class="small">via service {escape(entry.messaging_service_sid)}</div>'
        if entry.messaging_service_sid
        else ""
    )
    return (
        f'<tr data-sender="{escape(entry.sender)}" data-phone="{escape(entry.phone)}">'
        f'<td class="mono">{escape(entry.sender)}{service}</td>'
        f'<td class="mono">{escape(entry.phone)}</td>'
        f"<td>{when(entry.since)}</td>"
        f"<td>{cause(entry.cause, entry.keyword)}</td>"
        f'<td class="manage-col"><a class="remove button" href="{escape(removal_href(person_id, entry))}">'
        "Remove</a></td></tr>"
    )


def removal_href(person_id: str, entry: OptOutEntry) -> str:
    query = urllib.parse.urlencode({"sender": entry.sender, "phone": entry.phone})
    return f"/people/{urllib.parse.quote(person_id, safe='')}/remove?{query}"


def history_row(event: AnyPersonEvent) -> str:
    change, style = _CHANGE[event.type]
    actor = escape(getattr(event, "actor", "")) or f'<span class="small">{_BY[event.cause]}</span>'
    reason = escape(getattr(event, "reason", ""))
    return (
        f"<tr><td>{when(event.occurred_at)}</td>"
        f'<td><span class="badge {style}">{change}</span></td>'
        f'<td class="mono">{escape(event.sender)}</td><td class="mono">{escape(event.phone)}</td>'
        f"<td>{cause(event.cause, event.keyword)}</td><td>{actor}</td><td>{reason}</td>"
        f'<td class="mono small">{escape(event.source_event_id)}</td></tr>'
    )


def cause(kind: str, keyword: str | None) -> str:
    if kind == "send_blocked":
        return '<span class="badge blocked">Send blocked (21610)</span>'
    if kind in ("keyword", "opt_in_keyword"):
        return f'Replied <span class="mono">{escape(keyword or "?")}</span>'
    return "Operator override"


def when(moment: datetime) -> str:
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M} UTC</time>'


def empty_row(columns: int, text: str) -> str:
    return f'<tr><td class="empty" colspan="{columns}">{escape(text)}</td></tr>'
