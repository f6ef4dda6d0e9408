"""Records queued for the agents and for the tables' recovery stay queued when the flow resumes
(Faust's recovery resumes it after seeking, while the consumer already hands records over), and go
when a rebalance stops the flow (streams.engine.flow_control)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.settings import Settings
from streams.worker import build_service


def test_queued_records_survive_a_resume_and_go_when_a_rebalance_stops_the_flow(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = build_service(Settings(kafka_brokers="127.0.0.1:1", data_dir=tmp_path))
        app = service.app
        app.flow_control.resume()  # as a started worker's
        changelog = app.tables.changelog_queue  # what the recovery and the standbys read
        batches = service.topics.messaging_events.clone(is_iterator=True).queue  # what an agent reads
        changelog.put_nowait("changelog record 14")
        batches.put_nowait("batch 100-199")

        app.flow_control.resume()  # the recovery, once it has sought the partitions
        assert (changelog.qsize(), batches.qsize()) == (1, 1)  # Faust's own resume emptied both

        app.flow_control.suspend()  # a rebalance: the consumer will seek every partition again
        app.flow_control.clear()
        assert (changelog.qsize(), batches.qsize()) == (0, 0)

    asyncio.run(scenario())
