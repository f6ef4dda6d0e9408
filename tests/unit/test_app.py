"""The Faust app is built from the settings: what an operator sets is what the workers run with."""

from __future__ import annotations

import pytest

from streams.engine.app import create_app
from streams.engine.batches import BUFFERED_BATCHES
from streams.settings import Settings
from streams.worker import build_service


@pytest.mark.parametrize(("env", "replicas"), [({}, 1), ({"OPTOUTS_STANDBY_REPLICAS": "0"}, 0)])
def test_standby_replicas_come_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], replicas: int
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    app = create_app(Settings(kafka_brokers="127.0.0.1:9"))

    assert app.conf.table_standby_replicas == replicas


def test_an_agent_holds_a_few_fetched_batches_not_thousands() -> None:
    # A stream's buffer is counted in events, and an event here is a whole fetch (up to
    # OPTOUTS_BATCH_BYTES): Faust's default of 4096 let a backlog fill the worker's memory.
    service = build_service(Settings(kafka_brokers="127.0.0.1:9"))

    for topic in (service.topics.messaging_events, service.topics.person_events):
        assert topic.clone().queue.maxsize == BUFFERED_BATCHES == 8


def test_the_producer_sends_what_a_batch_emitted_without_lingering() -> None:
    # A STOP crosses the producer twice (its person event, then the person's list): each linger
    # would be added to its latency, while a batch's sends go out together anyway, appended before
    # the fold yields to the sender (docs/performance.md, "The STOP's tail").
    app = create_app(Settings(kafka_brokers="127.0.0.1:9"))

    assert app.producer.linger_ms == 0
