"""Every error the web server answers is the API's JSON error, naming inputs by a short excerpt only:
aiohttp's own 404, 405 and 413, a view's plain-text error, an exception no view expected, and the
requests aiohttp cannot even parse."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web, web_protocol
from aiohttp.test_utils import TestClient, TestServer

from streams.web import http_errors

SECRET = "s3cret-token-" + "z" * 40


def app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def crash(request: web.Request) -> web.Response:
        raise KeyError(request.match_info["thing"])

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="nope\n", status=403, headers={"Retry-After": "3"})

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<h1>Not a person id</h1>", status=422, content_type="text/html")

    async def crash_on_name(request: web.Request) -> web.Response:
        raise KeyError(request.match_info["name"])  # as Faust's router does for a table it lacks

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"bytes": len(await request.read())})

    web_app = web.Application(client_max_size=1024)
    web_app.router.add_get("/hello", hello)
    web_app.router.add_get("/crash/{thing}", crash)
    web_app.router.add_get("/plain", plain)
    web_app.router.add_get("/page", page)
    web_app.router.add_post("/echo", echo)
    web_app.router.add_get("/router/{name}/", crash_on_name)
    http_errors.install(web_app)
    return web_app


@pytest.fixture(autouse=True)
def restore_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    # install() replaces the request handler's method for the process: undone after each test.
    monkeypatch.setattr(web_protocol.RequestHandler, "handle_error", web_protocol.RequestHandler.handle_error)


def served(check: Callable[[TestClient[web.Request, web.Application]], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(app())) as client:
            await check(client)

    asyncio.run(run())


async def answer(response: Any) -> tuple[int, str, dict[str, Any]]:
    return response.status, response.content_type, json.loads(await response.text())


def test_an_unknown_path_is_a_json_404() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        status, kind, body = await answer(await client.get("/nothing/" + "x" * 7000))
        assert (status, kind) == (404, "application/json")
        assert "not found" in body["error"] and "xxxx" not in body["error"]

    served(check)


def test_a_method_the_path_does_not_take_is_a_json_405_with_allow() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        response = await client.put("/hello")
        status, kind, body = await answer(response)
        assert (status, kind) == (405, "application/json")
        assert "GET" in response.headers["Allow"] and "PUT is not allowed" in body["error"]

    served(check)


def test_a_body_over_the_limit_is_a_json_413() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        status, kind, body = await answer(await client.post("/echo", data=b"x" * 2000))
        assert (status, kind) == (413, "application/json")
        assert body == {"error": "the body is over 1024 bytes"}

    served(check)


def test_an_exception_no_view_expected_is_a_json_500_naming_no_input(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        status, kind, body = await answer(await client.get(f"/crash/{SECRET}"))
        assert (status, kind) == (500, "application/json")
        assert SECRET not in body["error"]

    served(check)
    assert "KeyError" in caplog.text  # the log has the traceback


def test_faust_s_router_answers_404_for_a_table_it_does_not_have() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        status, _, body = await answer(await client.get("/router/nope/"))
        assert status == 404 and "no such table" in body["error"]

    served(check)


def test_a_plain_text_error_becomes_json_and_keeps_retry_after() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        response = await client.get("/plain")
        assert await answer(response) == (403, "application/json", {"error": "nope"})
        assert response.headers["Retry-After"] == "3"

    served(check)


def test_an_error_page_made_for_a_browser_stays_html() -> None:
    async def check(client: TestClient[web.Request, web.Application]) -> None:
        response = await client.get("/page")
        assert (response.status, response.content_type) == (422, "text/html")

    served(check)


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (b"GET /" + SECRET.encode() * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "too long"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode() * 200 + b"\r\n\r\n",
            "too long",
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nCookie: t=" + SECRET.encode() * 200 + b"\r\n\r\n", "too long"),
        (b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP"),
        (SECRET.encode() + b"\r\n\r\n", "HTTP"),
    ],
    ids=["request-line", "authorization", "cookie", "method", "garbage"],
)
def test_a_request_aiohttp_cannot_parse_is_a_json_400_that_echoes_and_logs_nothing_of_it(
    request_bytes: bytes, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def check(client: TestClient[web.Request, web.Application]) -> None:
        assert client.port is not None
        raw = await asyncio.to_thread(raw_exchange, client.port, request_bytes)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400"
        assert b"Content-Type: application/json" in head
        assert error in json.loads(body)["error"]
        assert SECRET.encode() not in raw

    served(check)
    assert SECRET not in caplog.text


def test_aiohttp_s_request_handler_still_has_the_method_that_is_replaced() -> None:
    original = inspect.signature(web_protocol.RequestHandler.handle_error)
    assert list(original.parameters) == list(inspect.signature(http_errors.handle_error).parameters)
