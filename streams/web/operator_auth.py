"""Who may use the web server. With the operator token (the default), nothing but `/health`,
`/ready`, `/metrics` and the Twilio webhooks (which check Twilio's signature) answers without it:
an API client sends `Authorization: Bearer TOKEN`, a browser logs in at `/login` and gets a session
(streams.web.sessions), never the token itself. `OPTOUTS_AUTH=off` opens everything, for a trusted network.

With no `OPTOUTS_OPERATOR_TOKEN` the worker generates a token at start, writes it to
`<data_dir>/operator-token` (mode 0600) for the CLI on this machine (`operator_token`) and prints a
login URL with it, as a notebook server does. Faust's `/table/...` views are refused to everyone.
Details: docs/security.md.
"""

from __future__ import annotations

import logging
import os
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import faust
from aiohttp import web
from faust.web import View
from pydantic import SecretStr
from yarl import URL

from schemas.errors import OptOutsError
from streams.settings import Settings
from streams.web.rendering import Link, html_response, message, render
from streams.web.server import aiohttp_app
from streams.web.sessions import COOKIE as SESSION_COOKIE
from streams.web.sessions import LOGGED_IN, SESSION, VIA_BEARER, Sessions, same_text

log = logging.getLogger(__name__)

OPEN = ("/health", "/ready", "/metrics", "/login", "/logout", "/twilio")  # a path equal to one, or under it
REFUSED = ("/table",)  # Faust's table views: table contents over HTTP
OLD_COOKIE = "optouts_operator_token"  # the token itself, as /login set it before sessions: cleared
TOKEN_FILE = "operator-token"  # in the data dir: the token a worker generated, mode 0600
MIN_TOKEN_CHARS = 16
# `optouts run` on the embedded broker runs its worker in <data_dir>/embedded (streams/cli/main.py).
_WORKER_DIRS = (".", "embedded")
# What a browser may carry after the path: a tab or a backslash there is read as a slash (WHATWG).
_NOT_IN_A_NEXT = {chr(code) for code in range(0x21)} | {"\\", "\x7f"}

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
    return given is not None and same_text(given, expected)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def local_path(next_: str | None) -> str:
    """Where to go after logging in: a path of this service, parsed as a browser would read it, else
    `/`. Never `//elsewhere`, a URL, or what a browser turns into one (a tab or a backslash)."""
    if not next_ or any(char in _NOT_IN_A_NEXT for char in next_):
        return "/"
    if not next_.startswith("/") or next_.startswith("//"):  # relative, or another host's
        return "/"
    try:
        url = URL(next_)
    except ValueError:
        return "/"
    if url.is_absolute() or url.scheme or url.raw_host is not None:
        return "/"
    if not url.raw_path.startswith("/") or url.raw_path.startswith("//"):
        return "/"
    return str(url)


@dataclass(frozen=True)
class Access:
    """How operators get in to this worker: the token to present, and where it came from."""

    token: str | None  # None: OPTOUTS_AUTH=off
    generated_into: Path | None = None  # the file a generated token was written to

    def banner(self, base_url: str) -> list[str]:
        """The lines the worker prints once ready: how to log in (with a generated token, the URL
        that logs a browser in), or that nothing is checked."""
        if self.token is None:
            return [
                "  operator access OFF (OPTOUTS_AUTH=off): anyone who reaches this port reads and removes"
                " every person's opt-outs",
            ]
        if self.generated_into is None:
            return [f"  operator login {base_url}/login  (with OPTOUTS_OPERATOR_TOKEN)"]
        return [
            f"  operator login {base_url}/login?token={self.token}",
            f"                 (a token generated at start, also in {self.generated_into} for the CLI;",
            "                 set OPTOUTS_OPERATOR_TOKEN to choose one, the same on every worker)",
        ]


# ---- the I/O shell ----------------------------------------------------------------------------------


def open_access(settings: Settings) -> Access:
    """At the worker's start: the configured token, or a new one written to the data dir, or, with
    OPTOUTS_AUTH=off, a WARNING. Raises BadOperatorToken for a configured token that cannot be used."""
    if settings.auth == "off":
        return Access(None)  # register_operator_auth warns, once logging is set up
    if settings.operator_token is not None:
        return Access(checked_token(settings.operator_token.get_secret_value(), "OPTOUTS_OPERATOR_TOKEN"))
    token, path = secrets.token_urlsafe(32), token_file(settings)
    write_private(path, token + "\n")
    return Access(token, path.resolve())


def with_access(settings: Settings, access: Access) -> Settings:
    """The settings the worker runs with: a generated token is its operator token."""
    if access.token is None or settings.operator_token is not None:
        return settings
    return settings.model_copy(update={"operator_token": SecretStr(access.token)})


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by this user only (0600) from the first byte, replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # the file may have been left by an earlier start
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
    os.replace(part, path)


def base_url(settings: Settings) -> str:
    """Where an operator's browser reaches this worker: the public URL, else the web host."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"http://{settings.local_web_host}:{settings.web_port}"


def register_operator_auth(app: faust.App, settings: Settings) -> Sessions:
    """The guard on every request, and /login, /logout. Returns the sessions, for the pages' forms."""
    checking = settings.auth != "off"
    # Without a token but checking (a service built outside `run_worker`), no token opens it.
    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    sessions = Sessions.of(settings, token if checking else None)
    if checking and token is None:
        sessions = Sessions(secrets.token_bytes(32), settings.operator_session_hours * 3600, True)
    if not checking:

        @app.task  # type: ignore[untyped-decorator]  # Faust's app.task is unannotated
        async def warn_open() -> None:
            log.warning(
                "OPTOUTS_AUTH=off: the web server checks no operator token; anyone who reaches %s:%s"
                " reads and removes every person's opt-outs. Use this on a trusted network only.",
                settings.web_host,
                settings.web_port,
            )

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_under(request.path, REFUSED):
            return web.json_response({"error": "not found"}, status=404)
        session = sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            request[SESSION] = session
            request[LOGGED_IN] = checking
        if not checking or is_under(request.path, OPEN):
            return await handler(request)
        given = bearer_token(request.headers.get("Authorization"))
        if token is not None and same_token(given, token):
            request[VIA_BEARER] = True
            return await handler(request)
        if session is not None and given is None:
            return await handler(request)
        return unauthorized(request, given is not None)

    aiohttp_app(app).middlewares.append(guard)

    def logged_in(request: web.Request, next_: str) -> web.Response:
        answer = web.Response(status=303, headers={"Location": local_path(next_)})
        sessions.set_cookie(answer, request, sessions.new())
        answer.del_cookie(OLD_COOKIE, path="/")
        return answer

    def refused(next_: str) -> web.Response:
        if token is None:
            problem = "This service checks no operator token (OPTOUTS_AUTH=off): nothing to log in to."
            return login_page(next_, problem, settings.operator_session_hours, status=404)
        return login_page(next_, "That is not the operator token.", settings.operator_session_hours, 401)

    @app.page("/login")
    class Login(View):
        async def get(self, request: web.Request) -> web.Response:
            next_ = request.query.get("next", "/")
            given = request.query.get("token")
            if given is None:  # the form
                return login_page(next_, "", settings.operator_session_hours)
            # The URL the worker printed at start: log in, and leave the token out of the address bar.
            if checking and token is not None and same_token(given, token):
                return logged_in(request, next_)
            return refused(next_)

        async def post(self, request: web.Request) -> web.Response:
            form = await request.post()
            given, next_ = str(form.get("token", "")), str(form.get("next", "/"))
            if checking and token is not None and same_token(given, token):
                return logged_in(request, next_)
            return refused(next_)

    @app.page("/logout")
    class Logout(View):
        async def post(self, request: web.Request) -> web.Response:
            form = await request.post()
            session = request.get(SESSION)
            if session is not None and not sessions.csrf_matches(session, form.get("csrf")):
                # Another site's form would log the operator out: refused.
                return html_response(
                    message("Not logged out", "That form did not come from here."), status=403
                )
            answer = web.Response(status=303, headers={"Location": "/login"})
            sessions.clear_cookie(answer)
            answer.del_cookie(OLD_COOKIE, path="/")
            return answer

    return sessions


def unauthorized(request: web.Request, wrong: bool) -> web.Response:
    problem = "wrong operator token" if wrong else "this needs the operator token"
    headers = {"WWW-Authenticate": 'Bearer realm="sms-optouts"'}
    if "text/html" in request.headers.get("Accept", ""):
        back = urllib.parse.quote(request.path_qs, safe="")
        body = message(
            "Operator token needed",
            f"{problem.capitalize()}.",
            link=Link(f"/login?next={back}", "Log in with the operator token"),
        )
        return html_response(body, status=401, headers=headers)
    return web.json_response(
        {"error": f"{problem}: send 'Authorization: Bearer <operator token>' (OPTOUTS_OPERATOR_TOKEN)"},
        status=401,
        headers=headers,
    )


def login_page(next_: str, problem: str, hours: float, status: int = 200) -> web.Response:
    page = render(
        "login.html",
        title="Log in · SMS opt-outs",
        next=local_path(next_),
        problem=problem,
        hours=f"{hours:g}",
    )
    return html_response(page, status=status)
