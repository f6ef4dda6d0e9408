"""A batch's table writes: every key in its partition's RocksDB and on the changelog, in record batches
however many the values fill, and Faust's persisted offset at the batch's last changelog record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from faust.types import TP

from streams.engine.sends import Sends
from streams.engine.table_writes import TableWrites
from streams.engine.tables import partition_store
from streams.engine.topics import CONTACTS_TABLE, changelog_topic
from streams.worker import Service
from tests.agents.test_agents import run_agent
from tests.integration.kafka import latest_values

KEYS = 600  # of ~1 KiB values: more than two of the producer's 256 KiB record batches


def test_a_batch_of_writes_larger_than_a_record_batch_arrives_whole(
    kafka_brokers: str, tmp_path: Path
) -> None:
    values = {
        f"+1415555{index:04d}": {"recipients": {}, "pad": "x" * 1000, "n": index} for index in range(KEYS)
    }
    seen: dict[str, Any] = {}

    async def scenario(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        writes = TableWrites(Sends(service.app), table)
        for key, value in values.items():
            await writes.put(key.encode(), json.dumps(value).encode(), partition=0)
        await writes.done()
        await service.app.producer.flush()
        await asyncio.sleep(0.1)  # the acknowledgements' callbacks
        store = partition_store(table, 0)
        seen["stored"] = {key: json.loads(store.get(key.encode())) for key in values}
        seen["persisted"] = table.data.persisted_offset(
            TP(changelog_topic(service.settings, CONTACTS_TABLE), 0)
        )
        seen["settings"] = service.settings

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)

    assert seen["stored"] == values
    assert seen["persisted"] == KEYS - 1  # a fresh changelog: its last record's offset
    changelog = changelog_topic(seen["settings"], CONTACTS_TABLE)
    assert latest_values(kafka_brokers, changelog, set(values)) == values
