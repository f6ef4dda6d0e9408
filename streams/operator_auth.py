"""The operator token: with `OPTOUTS_OPERATOR_TOKEN` set, everything about people (the person pages,
the JSON lists and history, overrides) answers only a request that carries it, as
`Authorization: Bearer TOKEN` or, for a browser, the cookie `/login` sets. The Twilio webhooks keep
their own signature check; `/`, `/health`, `/ready`, `/metrics` and `/router` stay open (they
say nothing about a person).

Faust's `/table/...` views read any key of any table over HTTP: they are refused here whatever the
token, so that no one reads the tables around the person API.
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path

import faust
from aiohttp import web
from faust.web import View

from schemas.errors import OptOutsError
from streams.pages import page
from streams.settings import Settings

COOKIE = "optouts_operator_token"
PROTECTED = ("/people",)  # a path equal to one of these, or under it
REFUSED = ("/table",)  # Faust's table views: table contents over HTTP
_MAX_LOGIN_BYTES = 4096
TOKEN_FILE = "operator-token"  # in the data dir: the token a worker generated, mode 0600
MIN_TOKEN_CHARS = 16
# `optouts run` on the embedded broker runs its worker in <data_dir>/embedded (streams/cli.py).
_WORKER_DIRS = (".", "embedded")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadOperatorToken(OptOutsError):
    """An operator token that cannot be used (too short, or a character a header cannot carry). The
    message says where it came from and what is wrong, never the value."""


def token_file(settings: Settings) -> Path:
    """Where a worker started without `OPTOUTS_OPERATOR_TOKEN` keeps the token it generated."""
    return settings.data_dir / TOKEN_FILE


def operator_token(settings: Settings) -> str | None:
    """The operator token a client on this machine sends: `OPTOUTS_OPERATOR_TOKEN` when set, else the
    one a worker of this data dir generated at start (the newest, when `optouts worker` and `optouts
    run` both left one), else None. Raises BadOperatorToken, naming no value, for one that cannot be
    used."""
    if settings.operator_token is not None:
        return checked_token(settings.operator_token.get_secret_value(), "OPTOUTS_OPERATOR_TOKEN")
    files = [settings.data_dir / where / TOKEN_FILE for where in _WORKER_DIRS]
    found = [path for path in files if path.is_file()]
    if not found:
        return None
    newest = max(found, key=lambda path: path.stat().st_mtime)
    try:
        text = newest.read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise BadOperatorToken(f"cannot read the operator token in {newest}: {exc.strerror}") from None
    return checked_token(text, str(newest))


def checked_token(token: str, source: str) -> str:
    """`token`, when it is one: at least 16 visible ASCII characters (a header carries them as they
    are). The error names `source`, never the value."""
    if len(token) < MIN_TOKEN_CHARS:
        raise BadOperatorToken(
            f"{source} is too short for an operator token: use {MIN_TOKEN_CHARS} characters or more"
        )
    if not all("!" <= char <= "~" for char in token):
        raise BadOperatorToken(
            f"{source} holds a character an operator token cannot have: visible ASCII only, no spaces"
        )
    return token


# ---- the pure core ----------------------------------------------------------------------------------


def is_under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time: how much of a guess matched does not show in the time it takes."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def presented_token(authorization: str | None, cookie: str | None) -> str | None:
    """The token a request carries: a Bearer token in `Authorization` first, else the cookie."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return cookie or None


def local_path(next_: str | None) -> str:
    """Where to go after logging in: a path on this server only (never `//elsewhere` or a URL)."""
    if next_ and next_.startswith("/") and not next_.startswith("//") and "\\" not in next_:
        return next_
    return "/"


# ---- the I/O shell ----------------------------------------------------------------------------------


def register_operator_auth(app: faust.App, settings: Settings) -> None:
    token = settings.operator_token.get_secret_value() if settings.operator_token else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_under(request.path, REFUSED):
            return web.json_response({"error": "not found"}, status=404)
        if token is None or not is_under(request.path, PROTECTED):
            return await handler(request)
        given = presented_token(request.headers.get("Authorization"), request.cookies.get(COOKIE))
        if same_token(given, token):
            return await handler(request)
        return unauthorized(request, given is not None)

    app.web.web_app.middlewares.append(guard)

    @app.page("/login")
    class Login(View):
        async def get(self, request: web.Request) -> web.Response:
            return login_page(request.query.get("next"))

        async def post(self, request: web.Request) -> web.Response:
            raw = await request.read()  # whole, however many writes it came in (client_max_size)
            if len(raw) > _MAX_LOGIN_BYTES:
                return web.Response(text="the form is too large\n", status=413)
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
            given, next_ = form.get("token", [""])[0], form.get("next", [""])[0]
            if token is None:
                return login_page(next_, "No operator token is set on this service: nothing to log in to.")
            if not same_token(given, token):
                return login_page(next_, "That is not the operator token.", status=401)
            answer = web.Response(status=303, headers={"Location": local_path(next_)})
            secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
            answer.set_cookie(COOKIE, given, httponly=True, samesite="Strict", secure=secure, path="/")
            return answer


def unauthorized(request: web.Request, wrong: bool) -> web.Response:
    problem = "wrong operator token" if wrong else "this needs the operator token"
    headers = {"WWW-Authenticate": 'Bearer realm="sms-optouts"'}
    if "text/html" in request.headers.get("Accept", ""):
        back = urllib.parse.quote(request.path_qs, safe="")
        body = page(
            "Operator token needed",
            f"<h1>Operator token needed</h1><p>{escape(problem.capitalize())}.</p>"
            f'<p><a href="/login?next={back}">Log in with the operator token</a></p>',
        )
        return web.Response(text=body, status=401, content_type="text/html", headers=headers)
    return web.json_response(
        {"error": f"{problem}: send 'Authorization: Bearer <OPTOUTS_OPERATOR_TOKEN>'"},
        status=401,
        headers=headers,
    )


def login_page(next_: str | None, problem: str = "", status: int = 200) -> web.Response:
    note = f'<p id="notice" class="error">{escape(problem)}</p>' if problem else ""
    main = (
        f"<h1>Log in</h1>{note}"
        '<section class="card"><form action="/login" method="post">'
        '<p class="hint">The operator token (OPTOUTS_OPERATOR_TOKEN). It is kept in a cookie of this'
        " browser for this site only.</p>"
        f'<input type="hidden" name="next" value="{escape(local_path(next_))}">'
        '<input name="token" type="password" aria-label="Operator token" autocomplete="current-password"'
        ' required autofocus> <button type="submit" class="primary">Log in</button></form></section>'
    )
    return web.Response(text=page("Log in · SMS opt-outs", main), status=status, content_type="text/html")
