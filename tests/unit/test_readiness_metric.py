"""`optouts_ready`: what GET /ready would answer, as a gauge Prometheus can read (the not-ready alert
and the dashboard read it), set at every look at the brokers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams.engine.topics import MESSAGING_EVENTS
from streams.pipeline.broker_watch import BrokerView, BrokerWatch
from streams.pipeline.metrics import Metrics
from streams.settings import Settings


def app(recovered: bool = True, rebalancing: bool = False) -> Any:
    recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: recovered), in_recovery=not recovered)
    return SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery), rebalancing=rebalancing, conf=SimpleNamespace(id="a")
    )


def ready_after_a_look(app: Any, seen: BrokerView, monkeypatch: pytest.MonkeyPatch) -> float | None:
    metrics = Metrics()
    watch = BrokerWatch(app, Settings(kafka_brokers="127.0.0.1:9", ready_max_lag=100), metrics)

    async def look_at_nothing() -> BrokerView:
        return seen

    monkeypatch.setattr(watch, "_look", look_at_nothing)
    asyncio.run(watch.look())
    return ready(metrics)


def ready(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("optouts_ready")


def test_ready_is_0_before_the_first_look() -> None:
    assert ready(Metrics()) == 0


def test_ready_is_1_when_recovered_not_rebalancing_the_brokers_answer_and_nothing_lags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ready_after_a_look(app(), BrokerView(reachable=True), monkeypatch) == 1


@pytest.mark.parametrize(
    ("worker", "seen"),
    [
        (app(recovered=False), BrokerView(reachable=True)),
        (app(rebalancing=True), BrokerView(reachable=True)),
        (app(), BrokerView(reachable=False, error="TimeoutError")),
        (app(), BrokerView(reachable=True, lags={TopicPartition(MESSAGING_EVENTS, 0): 101})),
    ],
    ids=["recovering", "rebalancing", "brokers unreachable", "lagging"],
)
def test_ready_is_0_whenever_ready_would_answer_503(
    worker: Any, seen: BrokerView, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ready_after_a_look(worker, seen, monkeypatch) == 0
