"""One worker for the module's tests, on the suite's broker, with its own app id and data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import unique
from tests.integration.processes import ServiceProcess, new_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-test")
    process = new_worker(
        kafka_brokers, tmp_path_factory.mktemp("worker"), app_id, output_dir / f"{app_id}.log"
    )
    process.start()
    yield process
    process.stop()
