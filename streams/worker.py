"""Composition: one Faust app with its topics, tables, agents and views, and the worker that runs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import faust

from streams.agents import register_agents
from streams.app import create_app
from streams.metrics import Metrics
from streams.pages import register_pages
from streams.settings import Settings
from streams.tables import Tables, declare_tables
from streams.topics import Topics, create_topics, declare_topics
from streams.views import register_views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    app: faust.App
    settings: Settings
    topics: Topics
    tables: Tables
    metrics: Metrics


def build_service(settings: Settings) -> Service:
    app = create_app(settings)
    topics = declare_topics(app, settings)
    tables = declare_tables(app, settings)
    metrics = Metrics()
    register_agents(app, settings, topics, tables, metrics)
    register_views(app, settings, topics, tables, metrics)
    register_pages(app, tables)
    return Service(app, settings, topics, tables, metrics)


def run_worker(settings: Settings, on_ready: Callable[[], None] | None = None) -> None:
    """Create missing topics, then run the worker until SIGINT or SIGTERM."""
    if not settings.brokers:
        raise SystemExit("OPTOUTS_KAFKA_BROKERS is not set: `optouts run` starts an embedded broker")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    created = loop.run_until_complete(create_topics(settings))
    if created:
        log.info("created topics: %s", ", ".join(created))
    service = build_service(settings)
    if on_ready is not None:
        _call_when_ready(service.app, on_ready)
    worker = faust.Worker(
        service.app, loglevel=settings.log_level, loop=loop, quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()


def _call_when_ready(app: faust.App, callback: Callable[[], None]) -> None:
    @app.task
    async def announce() -> None:
        await app.tables.recovery.completed.wait()
        callback()
