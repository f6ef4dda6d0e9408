"""Serving a request on the worker that owns the key: with several workers, each holds only its
partitions of a table, so a request that arrives elsewhere is forwarded, body and all.

Faust's own `table_route` forwards neither the body nor the method's payload (faust/app/router.py
passes only method and headers), which a DELETE with a JSON body needs; this does both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust
from aiohttp import web
from faust.web import Request, Response, View
from multidict import CIMultiDict
from yarl import URL

from streams.pipeline.broker_watch import tables_recovered

FORWARDED = "X-Optouts-Forwarded"
# The forwarded request's Host is the owner's own web host and port, which it answers to.
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}
# Not relayed from the owner's answer: the connection's own, and what aiohttp sets again (the body
# arrives decoded). Everything else is (Location, Set-Cookie, Retry-After, WWW-Authenticate, ...).
_NOT_RELAYED = {
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
}


async def on_owner(
    app: faust.App,
    owner_of: Callable[[str], URL],
    key: str,
    request: web.Request,
    handle: Callable[[], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """`handle()` here when this worker owns `key`, else the owner's answer to the same request."""
    try:
        owner = owner_of(key)
    except KeyError:
        return _unavailable("no worker owns this key yet (the group is still forming)")
    if _same_worker(owner, URL(str(app.conf.canonical_url))):
        if not tables_recovered(app):
            # A table still being restored from its changelog would answer a list that misses
            # entries (after a restart into a new generation, for one): better no answer yet.
            return _unavailable("the tables are being recovered from their changelogs")
        return await handle()
    if request.headers.get(FORWARDED):
        # Two workers that disagree on the owner are in the middle of a rebalance: no ping-pong.
        return _unavailable("the partitions are moving between workers")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers[FORWARDED] = "1"
    target = request.url.with_scheme(owner.scheme or "http").with_host(owner.host or "").with_port(owner.port)
    async with app.http_client.request(
        request.method, target, headers=headers, data=await request.read(), allow_redirects=False
    ) as answer:
        body = await answer.read()
        relayed = CIMultiDict(
            (name, value) for name, value in answer.headers.items() if name.lower() not in _NOT_RELAYED
        )
        return web.Response(body=body, status=answer.status, headers=relayed)


def _same_worker(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


def _unavailable(reason: str) -> web.Response:
    return web.json_response(
        {"error": f"try again shortly: {reason}"}, status=503, headers={"Retry-After": "1"}
    )


def register_partition_map(app: faust.App) -> None:
    """`GET /router/`: which worker (web URL) owns which partitions of each table, as Faust's own
    router view showed it. Faust's router views are off (their `/router/{table}/` answered a 500 for a
    table that does not exist); this one is behind the operator token like the rest."""

    @app.page("/router/")
    async def partition_map(view: View, request: Request) -> Response:
        return view.json(app.router.tables_metadata())
