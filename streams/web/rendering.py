"""The operator's pages from Jinja2 templates (streams/web/templates) with autoescape on, and the
Content-Security-Policy that admits their one style sheet and one script by hash, nothing else inline."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

_LOADER = jinja2.PackageLoader("streams.web", "templates")
_TEMPLATES = jinja2.Environment(
    loader=_LOADER,
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,  # a name a page forgets to pass fails its test, not silently
    keep_trailing_newline=True,
)
# Read as they are and put in the page as they are: a byte changed between here and the page would
# no longer match its hash in the policy, and the browser would refuse it.
STYLE = Markup(_LOADER.get_source(_TEMPLATES, "page.css")[0])
SCRIPT = Markup(_LOADER.get_source(_TEMPLATES, "person.js")[0])


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; img-src 'self' data:;"
    " form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)


def render(
    template: str, *, title: str, person_id: str = "", logout_csrf: str | None = None, **context: Any
) -> str:
    """A whole page: `template` (which extends page.html) with the header's look-up box holding
    `person_id` and, for a logged-in operator, the logout form with its CSRF token."""
    return _TEMPLATES.get_template(template).render(
        title=title, person_id=person_id, logout_csrf=logout_csrf, style=STYLE, **context
    )


@dataclass(frozen=True)
class Link:
    href: str
    text: str


def message(
    heading: str,
    *paragraphs: str,
    link: Link | None = None,
    title: str | None = None,
    person_id: str = "",
) -> str:
    """A page that says what went wrong: `heading` (the title too, unless given), the paragraphs and
    a link to go on."""
    return render(
        "message.html",
        title=title or heading,
        person_id=person_id,
        heading=heading,
        paragraphs=paragraphs,
        link=link,
    )


def html_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)
