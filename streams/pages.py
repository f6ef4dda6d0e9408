"""The operator's pages: a look-up form at `/` and a person's page at `/people/{id}` with their SMS
opt-outs (Manage, Remove) and history. Rendered on the server; the page's script only calls the
JSON API and swaps in freshly rendered sections."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from html import escape
from importlib import resources
from string import Template

import faust
from aiohttp import web
from faust.web import Request, Response, View

from projections.opt_outs import PersonOptOuts
from projections.point_in_time import as_of
from schemas.events import AnyPersonEvent, OptOutEntry
from streams.routing import on_owner
from streams.tables import Tables
from streams.views import BadRequest, load_person, parse_as_of, person_key

_TEMPLATES = resources.files("streams") / "templates"
_PAGE = Template((_TEMPLATES / "page.html").read_text())
_PERSON = Template((_TEMPLATES / "person.html").read_text())
_LOOKUP = (_TEMPLATES / "lookup.html").read_text()

# Who made a change that no operator made: the person texting a keyword, or Twilio refusing a send.
_BY = {"keyword": "the person", "opt_in_keyword": "the person", "send_blocked": "Twilio", "override": ""}
_CHANGE = {
    "opt_out.recorded": ("Opted out", ""),
    "opt_out.cleared": ("Opted in", "cleared"),
    "opt_out.overridden": ("Removed by operator", "removed"),
}


def register_pages(app: faust.App, tables: Tables) -> None:
    @app.page("/")
    async def lookup(view: View, request: Request) -> Response:
        person_id = request.query.get("person_id", "").strip()
        if person_id:
            raise web.HTTPFound(f"/people/{urllib.parse.quote(person_id, safe='')}")
        return html_response(page("Look up a person · SMS opt-outs", _LOOKUP))

    @app.page("/people/{person_id:[^/]+}")  # '{' and '}' too: see streams.views.PERSON
    async def person(view: View, request: Request, person_id: str) -> Response:
        async def handle() -> web.Response:
            return html_response(person_page(load_person(tables, person_id), moment))

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
        return await on_owner(app, tables.opt_outs, person_id, request, handle)


def html_response(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def page(title: str, main: str, person_id: str = "") -> str:
    return _PAGE.substitute(title=escape(title), main=main, person_id_value=escape(person_id))


def person_page(state: PersonOptOuts, moment: datetime | None = None) -> str:
    """The person's page; with `moment`, the list and history as they stood then (nothing to manage)."""
    shown = state if moment is None else as_of(state, moment)
    listed = shown.as_list().opt_outs
    rows = "".join(opt_out_row(entry) for entry in listed) or empty_row(5, "No SMS opt-outs.")
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
    )
    return page(f"{state.person_id} · SMS opt-outs", main, state.person_id)


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


def opt_out_row(entry: OptOutEntry) -> str:
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
        '<td class="manage-col"><button type="button" class="remove">Remove</button></td></tr>'
    )


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
