"""What the worker knows of the brokers, looked at every `OPTOUTS_LAG_INTERVAL`: whether they answer,
and how far each assigned input partition lags behind its end. `/ready` and `/metrics` show it.

Lag is a hint for operators, never an input to correctness: some brokers (Tansu) answer ListOffsets
"latest" short of the log end, so the lag shown can be less than the real one (it is never below 0).
Nothing here decides what is folded or committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.engine import faust_hooks
from streams.engine.topics import MESSAGING_EVENTS, PERSON_EVENTS
from streams.pipeline.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

INPUT_TOPICS = frozenset({MESSAGING_EVENTS, PERSON_EVENTS})  # what the agents consume


# ---- the pure core ----------------------------------------------------------------------------------


def lags(
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
    beginnings: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per partition, the events between the group's committed offset (the next one it will fold;
    none committed yet: the beginning) and the end the broker reported, never below 0."""
    result = {}
    for tp, end in ends.items():
        position = committed.get(tp)
        if position is None:
            position = beginnings.get(tp, 0)
        result[tp] = max(0, end - position)
    return result


@dataclass(frozen=True)
class BrokerView:
    """The last look at the brokers: None before the first one."""

    reachable: bool | None = None
    lags: Mapping[TopicPartition, int] = field(default_factory=dict)
    error: str | None = None


def readiness(
    *, recovered: bool, rebalancing: bool, view: BrokerView, max_lag: int, app_id: str
) -> dict[str, Any]:
    """Ready = tables recovered, no rebalance running, the brokers answered the last look, and no
    assigned input partition lags more than `max_lag` events. The body says which failed."""
    lagging = {f"{tp.topic}[{tp.partition}]": lag for tp, lag in sorted(view.lags.items()) if lag > max_lag}
    reachable = view.reachable is True
    status: dict[str, Any] = {
        "ready": recovered and not rebalancing and reachable and not lagging,
        "tables_recovered": recovered,
        "rebalancing": rebalancing,
        "brokers_reachable": reachable,
        "max_lag": max(view.lags.values(), default=0),
        "lagging": lagging,  # partitions over OPTOUTS_READY_MAX_LAG, with their lag
        "app_id": app_id,  # which generation answers (streams.pipeline.generations)
    }
    if view.error is not None:
        status["brokers_error"] = view.error
    return status


# ---- the I/O shell ----------------------------------------------------------------------------------


class BrokerWatch:
    """Looks at the brokers with a client of its own (no group: it changes nothing), so a look that
    hangs on an unreachable broker never holds up the worker's consumer or producer."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.servers = settings.brokers
        self.interval = settings.lag_interval
        # A look must end before the next is due: an unreachable broker is then seen within
        # one interval and one timeout.
        self.timeout = min(settings.lag_interval, 5.0)
        self.max_lag = settings.ready_max_lag
        self.metrics = metrics
        self.view = BrokerView()
        self._client: AIOKafkaConsumer | None = None
        self._labelled: set[TopicPartition] = set()

    async def look(self) -> BrokerView:
        before = self.view.reachable
        try:
            view = await asyncio.wait_for(self._look(), self.timeout)
        except Exception as exc:  # any failure to get an answer: the brokers are not reachable now
            if before is not False:
                log.warning("the brokers did not answer within %.1f s: %r", self.timeout, exc)
            view = BrokerView(reachable=False, lags=self.view.lags, error=type(exc).__name__)
            await self.close()  # start afresh next time: a half-started client may never recover
        else:
            if before is False:
                log.info("the brokers answer again")
        self.view = view
        self._publish(view)
        return view

    async def _look(self) -> BrokerView:
        client = await self._started_client()
        assigned = sorted(_input_partitions(self.app.consumer.assignment()))
        if not assigned:
            await client.topics()  # a round trip all the same: are the brokers there?
            return BrokerView(reachable=True)
        ends = await client.end_offsets(assigned)
        beginnings = await client.beginning_offsets(assigned)
        # Faust's own record of what the group committed (the next offset to fold); no round trip.
        committed = {tp: faust_hooks.committed_offset(self.app, tp) for tp in assigned}
        return BrokerView(reachable=True, lags=lags(ends, committed, beginnings))

    async def _started_client(self) -> AIOKafkaConsumer:
        if self._client is None:
            client = AIOKafkaConsumer(
                bootstrap_servers=self.servers,
                enable_auto_commit=False,
                request_timeout_ms=int(self.timeout * 1000) + 1000,
                client_id=f"{self.app.conf.id}-broker-watch",
            )
            try:
                await client.start()
            except BaseException:
                await _quietly(client.stop(), self.timeout)
                raise
            self._client = client
        return self._client

    def readiness(self) -> dict[str, Any]:
        """What `GET /ready` answers now, with the brokers as the last look saw them."""
        return readiness(
            recovered=tables_recovered(self.app),
            rebalancing=bool(self.app.rebalancing),
            view=self.view,
            max_lag=self.max_lag,
            app_id=self.app.conf.id,
        )

    def _publish(self, view: BrokerView) -> None:
        self.metrics.broker_reachable.set(1 if view.reachable else 0)
        # Prometheus cannot read /ready's status: the not-ready alert and the dashboard read this.
        self.metrics.ready.set(1 if self.readiness()["ready"] else 0)
        for tp, lag in view.lags.items():
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        for gone in self._labelled - set(view.lags):
            self.metrics.consumer_lag.remove(gone.topic, str(gone.partition))
        self._labelled = set(view.lags)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _quietly(client.stop(), self.timeout)


async def _quietly(stopping: Awaitable[None], timeout: float) -> None:
    # Closing a client of a broker that is gone: nothing to keep, nothing to report.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stopping, timeout)


def _input_partitions(assignment: Iterable[Any]) -> set[TopicPartition]:
    # The assignment also holds the tables' changelog partitions, which Faust reads only to recover.
    return {TopicPartition(tp.topic, tp.partition) for tp in assignment if tp.topic in INPUT_TOPICS}


def register_broker_watch(app: faust.App, settings: Settings, metrics: Metrics) -> BrokerWatch:
    """A `BrokerWatch` that looks every `lag_interval` seconds while the app runs."""
    watch = BrokerWatch(app, settings, metrics)

    @app.service
    class LookAtTheBrokers(mode.Service):
        @mode.Service.task
        async def _every_interval(self) -> None:
            while not self.should_stop:
                started = time.monotonic()
                await watch.look()
                await self.sleep(max(0.0, watch.interval - (time.monotonic() - started)))

        async def on_stop(self) -> None:
            await watch.close()

    return watch


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker's tables hold everything their changelogs do (recovery is over)."""
    recovery = faust_hooks.table_recovery(app)
    return recovery.completed.is_set() and not recovery.in_recovery
