"""The worker's watch on the control topic ends when the worker stops, even if the cancellation the
stop sends it never arrives (a Ctrl-C just as the watcher started once left a worker hanging)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.engine.topics import create_topics
from streams.pipeline.generations import Generation, Restart, _follow
from streams.settings import Settings
from tests.factories import unique
from tests.integration.kafka import run

pytestmark = pytest.mark.integration


def test_the_watch_on_the_control_topic_ends_once_the_worker_is_stopping(
    kafka_brokers: str, tmp_path: Path
) -> None:
    settings = Settings(kafka_brokers=kafka_brokers, data_dir=tmp_path, app_id=unique("optouts-watch"))
    stopping = asyncio.Event()

    async def watch() -> bool:
        await create_topics(settings)
        watching = asyncio.create_task(
            _follow(settings, Generation(settings.app_id, 0), Restart(), stopping.is_set)
        )
        await asyncio.sleep(2)
        assert not watching.done()  # polling, with no switch to follow
        stopping.set()  # no cancel: only the stop the worker is in
        return await asyncio.wait_for(watching, timeout=10)

    assert run(watch) is False
