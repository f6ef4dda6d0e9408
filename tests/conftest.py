"""The broker the suite runs against: OPTOUTS_KAFKA_BROKERS when set, else an embedded one it starts
and stops itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.engine.broker import EmbeddedBroker

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where processes started by tests write their logs (kept for reading after a failure)."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def kafka_brokers(output_dir: Path) -> Iterator[str]:
    configured = os.environ.get("OPTOUTS_KAFKA_BROKERS")
    if configured:
        yield configured
        return
    with EmbeddedBroker(log_path=output_dir / "broker.log") as broker:
        yield broker.address
