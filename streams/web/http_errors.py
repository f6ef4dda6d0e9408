"""One shape for every error the worker's web server answers: `{"error": "..."}` (JSON), with any input
it names cut to a short excerpt. aiohttp's own 404, 405 and 413, Faust's views and exceptions a view
did not expect go through the middleware; requests aiohttp cannot parse (a bad request line, an
unknown method, a header over 8190 bytes) never reach a middleware and go through `handle_error`.

Neither logs a header value or echoes what was sent: aiohttp's own messages for unparsable requests
quote the raw line, which may be an `Authorization` or `Cookie` header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500  # a backstop: messages name inputs by excerpt already
JSON = "application/json"
# Answers a view built on purpose for a browser keep their form (the person page, the login form).
_KEPT = (JSON, "text/html")
# Headers an error keeps when it is rewritten as JSON: what the client needs to act on it.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")

_FAUST_ROUTER = "/router/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    status: int, error: str, headers: dict[str, str] | None = None, **details: Any
) -> web.Response:
    """The API's error: `{"error": ...}` plus any details a client can act on."""
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "…"
    return web.json_response({"error": error, **details}, status=status, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"HTTP {status}"


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = f"{request.method[:16]} is not allowed here; this path takes {allowed}"
    elif isinstance(exc, web.HTTPNotFound):
        error = "not found: no such path (GET /openapi.json lists the API)"
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        error = f"the body is over {request.client_max_size} bytes"
    else:
        error = _phrase(exc.status)
    return error_response(exc.status, error, headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer as the API's JSON error; an exception no view expected is a 500 that names
    no input (the log has the traceback)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect
        return _from_http_exception(request, exc)
    except asyncio.CancelledError:
        raise
    except KeyError:
        if request.path.startswith(_FAUST_ROUTER):  # Faust's map of one table: a name it does not have
            return error_response(404, "not found: no such table (GET /router/ lists them)")
        log.exception("%s %s failed", request.method, request.path[:200])
        return error_response(500, "internal error: the worker's log says what failed")
    except TimeoutError:
        log.warning("%s %s timed out", request.method, request.path[:200])
        return error_response(504, "the answer took too long: try again shortly", {"Retry-After": "1"})
    except Exception:
        log.exception("%s %s failed", request.method, request.path[:200])
        return error_response(500, "internal error: the worker's log says what failed")
    if response.status >= 400 and response.content_type not in _KEPT:
        text = response.text if isinstance(response, web.Response) and response.text else ""
        headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
        return error_response(response.status, text.strip() or _phrase(response.status), headers)
    return response


# ---- requests aiohttp cannot parse ---------------------------------------------------------------


def _unparsable(exc: BaseException | None, status: int) -> str:
    if isinstance(exc, LineTooLong):
        return "the request line or a header is too long (over 8190 bytes)"
    if isinstance(exc, BadHttpMethod):
        return "not an HTTP method"
    if status == 500:
        return "internal error: the worker's log says what failed"
    if status == 504:
        return "the answer took too long: try again shortly"
    return "not an HTTP request this server can read"


def handle_error(
    self: web_protocol.RequestHandler,
    request: Any,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """`RequestHandler.handle_error`, answering the API's JSON error and logging no request data:
    aiohttp's message and exception quote the raw request line or header."""
    if status >= 500 and exc is not None and not isinstance(exc, LineTooLong | BadHttpMethod):
        log.error("error handling a request: %s", type(exc).__name__, exc_info=exc)
    else:
        log.info("refused an unreadable request with %s: %s", status, type(exc).__name__)
    if request.writer.output_size > 0:  # some data already got sent: the connection is broken
        raise ConnectionError("Response is sent already, cannot send another response with the error message")
    response = error_response(status, _unparsable(exc, status))
    response.force_close()
    return response


def install(web_app: web.Application) -> None:
    """The JSON errors on this web application, outermost (it sees the other middlewares' answers),
    and for the requests aiohttp cannot parse, in this process."""
    web_app.middlewares.insert(0, json_errors)
    # aiohttp offers no setting for the answer to an unparsable request: its request handler's
    # method is replaced (tests/unit/test_http_errors.py holds its signature to what this expects).
    web_protocol.RequestHandler.handle_error = handle_error  # type: ignore[method-assign]  # on purpose: see above
