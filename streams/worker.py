"""Composition: one Faust app with its topics, tables, agents and views, and the worker that runs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import faust
import mode

from streams.engine import faust_hooks
from streams.engine.app import create_app
from streams.engine.native_heap import fix_mmap_threshold, limit_arenas
from streams.engine.tables import Tables, declare_tables
from streams.engine.topics import Topics, create_topics, declare_topics
from streams.pipeline.agents import register_agents
from streams.pipeline.broker_watch import BrokerWatch, register_broker_watch
from streams.pipeline.generations import Restart, current_generation, restart_process, watch_generation
from streams.pipeline.metrics import Metrics
from streams.services.lists import Lists
from streams.services.override_log import OverrideLog
from streams.services.overrides import Overrides
from streams.settings import Settings
from streams.twilio.webhooks import register_twilio_views
from streams.web.http_errors import install as install_json_errors
from streams.web.openapi import register_openapi
from streams.web.operator_auth import (
    Access,
    BadOperatorToken,
    base_url,
    open_access,
    register_operator_auth,
    with_access,
)
from streams.web.pages import register_pages
from streams.web.routing import register_partition_map
from streams.web.server import aiohttp_app
from streams.web.views import register_views
from streams.web.web_security import register_web_security

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    app: faust.App
    settings: Settings
    topics: Topics
    tables: Tables
    metrics: Metrics
    watch: BrokerWatch


def build_service(settings: Settings, generation: int = 0) -> Service:
    app = create_app(settings)
    topics = declare_topics(app, settings)
    tables = declare_tables(app, settings)
    metrics = Metrics()
    register_agents(app, settings, topics, tables, metrics, generation)
    watch = register_broker_watch(app, settings, metrics)
    register_web_security(app, settings)
    sessions = register_operator_auth(app, settings)
    install_json_errors(aiohttp_app(app))
    lists = Lists(tables)
    overrides = register_overrides(app, settings, lists)
    register_views(app, settings, lists, overrides, metrics, watch)
    register_openapi(app)
    register_pages(app, settings, lists, sessions)
    register_partition_map(app)
    register_twilio_views(app, settings, topics, metrics)
    return Service(app, settings, topics, tables, metrics, watch)


def register_overrides(app: faust.App, settings: Settings, lists: Lists) -> Overrides:
    """The override use case, on a producer of its own (streams.services.override_log), closed
    when the app stops."""
    override_log = OverrideLog(
        settings.brokers, settings.send_timeout, client_id=f"{settings.app_id}-overrides"
    )

    @app.service
    class CloseOverrideLog(mode.Service):
        async def on_stop(self) -> None:
            await override_log.close()

    return Overrides(lists, override_log, settings.default_region, settings.override_wait)


def run_worker(
    settings: Settings,
    on_ready: Callable[[], None] | None = None,
    restart_env: Mapping[str, str] | None = None,
) -> None:
    """Create missing topics, then run the worker of the current generation until SIGINT or SIGTERM.
    When the control topic switches to another generation, the process restarts itself into it, with
    `restart_env` added to its environment (streams.pipeline.generations)."""
    if not settings.brokers:
        raise SystemExit("OPTOUTS_KAFKA_BROKERS is not set: `optouts run` starts an embedded broker")
    fix_mmap_threshold()  # before any thread starts: see streams.engine.native_heap
    limit_arenas()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        access = open_access(settings)  # in the data dir the CLI reads, not a generation's
    except BadOperatorToken as exc:
        raise SystemExit(str(exc)) from None
    generation = loop.run_until_complete(current_generation(settings))
    base, settings = settings, with_access(generation.settings(settings), access)
    log.info("running %s", generation)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    created = loop.run_until_complete(create_topics(settings))
    if created:
        log.info("created topics: %s", ", ".join(created))
    service = build_service(settings, generation.number)
    restart = Restart()
    watch_generation(service.app, base, generation, restart)
    _call_when_ready(service.app, lambda: _announce_access(on_ready, access, settings))
    worker = faust_worker(service, loop)
    try:
        worker.execute_from_commandline()
    finally:
        if restart.into is not None:  # stopped for a switch, not by a signal: start again
            restart_process(restart.into, restart_env)


def faust_worker(service: Service, loop: asyncio.AbstractEventLoop) -> faust.Worker:
    worker = faust.Worker(
        service.app, loglevel=service.settings.log_level, loop=loop, quiet=True, redirect_stdouts=False
    )
    # At WARN and above, Faust's start-up spinner sets the root logger to DEBUG to spin on every
    # record (faust/worker.py, _setup_spinner_handler): aiokafka then builds a debug record for
    # every request it sends, a few per cent of the hot path. No spinner, the level stays ours.
    worker.spinner = None
    return worker


def _announce_access(on_ready: Callable[[], None] | None, access: Access, settings: Settings) -> None:
    """After the caller's banner, if any: how operators get in (a generated token's login URL)."""
    if on_ready is not None:
        on_ready()
    print("\n".join([*access.banner(base_url(settings)), ""]), flush=True)


def _call_when_ready(app: faust.App, callback: Callable[[], None]) -> None:
    @app.task  # type: ignore[untyped-decorator]  # Faust's app.task is unannotated
    async def announce() -> None:
        await faust_hooks.table_recovery(app).completed.wait()
        callback()
