"""The worker keeps the log level it is given: nothing below it is even built (at WARN and above,
Faust's start-up spinner would otherwise set the root logger to DEBUG)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from streams.settings import Settings
from streams.worker import build_service, faust_worker


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.usefixtures("restored_logging")
def test_a_worker_at_warning_builds_no_debug_records_for_the_kafka_client() -> None:
    service = build_service(Settings(kafka_brokers="127.0.0.1:9", log_level="warning"))
    loop = asyncio.new_event_loop()
    try:
        worker = faust_worker(service, loop)
        worker._setup_logging()
    finally:
        loop.close()
    assert not logging.getLogger("aiokafka.producer.sender").isEnabledFor(logging.DEBUG)
    assert logging.getLogger().getEffectiveLevel() == logging.WARNING
