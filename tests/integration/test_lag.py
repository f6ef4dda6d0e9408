"""Consumer lag on /metrics and /ready: a worker that starts behind a backlog says it is not ready,
and which partitions lag, until it has caught up to OPTOUTS_READY_MAX_LAG.

A broker of its own, filled before the worker starts: on the suite's shared broker the backlog would
be whatever earlier tests left.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.engine.broker import EmbeddedBroker
from streams.engine.topics import MESSAGING_EVENTS, PERSON_EVENTS, create_topics
from streams.settings import Settings
from tests.factories import sent, unique, unique_phone
from tests.integration.processes import http_json, new_worker
from tests.integration.test_pipeline import SENDER, eventually

pytestmark = pytest.mark.integration

BACKLOG = 20_000
MAX_LAG = 100  # OPTOUTS_READY_MAX_LAG
PARTITIONS = 4
BATCH_BYTES = 64 * 1024  # OPTOUTS_BATCH_BYTES: some 400 of these events


async def fill(brokers: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all", linger_ms=20)
    await producer.start()
    try:
        for start in range(0, count, 1000):
            sends = []
            for _ in range(min(1000, count - start)):
                phone = unique_phone()
                value = json.dumps(sent(unique("person"), phone, SENDER)).encode()
                sends.append(await producer.send(MESSAGING_EVENTS, value, key=phone.encode()))
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


def lag_series(text: str) -> dict[str, float]:
    return {
        line.split(" ")[0]: float(line.split(" ")[-1])
        for line in text.splitlines()
        if line.startswith("optouts_consumer_lag{")
    }


def with_lag_series(text: str) -> str | None:
    return text if lag_series(text) else None


@dataclass(frozen=True)
class CaughtUp:
    seen_lagging: dict[str, Any]  # the last /ready body that named lagging partitions
    ready: dict[str, Any]  # the first /ready body with status 200
    metrics: str  # /metrics once it was ready


@pytest.fixture(scope="module")
def caught_up(tmp_path_factory: pytest.TempPathFactory, output_dir: Path) -> CaughtUp:
    """A worker started behind a backlog of `BACKLOG` events, watched until it is ready."""
    app_id = unique("optouts-lag")
    with EmbeddedBroker(log_path=output_dir / f"{app_id}-broker.log") as broker:
        asyncio.run(create_topics(Settings(kafka_brokers=broker.address, app_id=app_id)))
        asyncio.run(fill(broker.address, BACKLOG))
        worker = new_worker(
            broker.address,
            tmp_path_factory.mktemp("lag"),
            app_id,
            output_dir / f"{app_id}.log",
            OPTOUTS_READY_MAX_LAG=str(MAX_LAG),
            OPTOUTS_LAG_INTERVAL="0.5",
            OPTOUTS_BATCH_BYTES=str(BATCH_BYTES),
        )
        try:
            worker.launch()
            seen_lagging: dict[str, Any] = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status, body = http_json("GET", f"{worker.url}/ready", timeout=5)
                if status == 503 and body and body.get("lagging"):
                    seen_lagging = body
                if status == 200:
                    break
                time.sleep(0.2)
            assert status == 200, body
            # Once the lag series are in it, as the test did before it shared this worker.
            metrics = eventually(lambda: with_lag_series(http_json("GET", f"{worker.url}/metrics")[1]))
            return CaughtUp(seen_lagging, body, metrics)
        finally:
            worker.stop()


def test_a_worker_behind_its_backlog_is_not_ready_and_says_which_partitions_lag(caught_up: CaughtUp) -> None:
    seen_lagging, body = caught_up.seen_lagging, caught_up.ready
    assert seen_lagging, "never saw the worker lag behind a backlog of 20,000 events"
    assert seen_lagging["tables_recovered"] is True
    assert seen_lagging["max_lag"] > MAX_LAG
    assert all(lag > MAX_LAG for lag in seen_lagging["lagging"].values())
    assert {name.split("[")[0] for name in seen_lagging["lagging"]} <= {
        MESSAGING_EVENTS,
        PERSON_EVENTS,
    }
    assert body["max_lag"] <= MAX_LAG and body["lagging"] == {}

    series = lag_series(caught_up.metrics)
    assert len(series) == 2 * PARTITIONS  # every assigned input partition, both topics
    assert all(lag <= MAX_LAG for lag in series.values())


def test_a_worker_behind_its_backlog_folds_it_in_batches_of_its_batch_bytes(caught_up: CaughtUp) -> None:
    # OPTOUTS_BATCH_BYTES bounds each partition's batch. Tansu ignores the per-partition limit of a
    # fetch: without a limit on the whole fetch, a partition's 5,000 events of backlog came as one
    # batch (with the default 256 KiB as well), every record of it held in memory at once.
    samples = [
        sample
        for family in text_string_to_metric_families(caught_up.metrics)
        if family.name == "optouts_batch_events"
        for sample in family.samples
        if sample.labels.get("stage") == "resolve"
    ]
    batches = next(s.value for s in samples if s.name == "optouts_batch_events_count")
    within = next(s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "500.0")
    assert batches >= BACKLOG / 500 and within == batches, f"{batches - within} of {batches} above 500"
