"""Faust's web server as what it is: an aiohttp application (Faust's aiohttp driver, its only one),
to which the web layer adds its middlewares."""

from __future__ import annotations

from typing import Protocol, cast

import faust
from aiohttp import web


class _AiohttpWeb(Protocol):
    web_app: web.Application


def aiohttp_app(app: faust.App) -> web.Application:
    """The aiohttp application `app.web` serves (Faust types `app.web` as its abstract `Web`)."""
    return cast(_AiohttpWeb, app.web).web_app
