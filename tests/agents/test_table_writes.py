"""A batch's table writes: every key in its partition's RocksDB and on the changelog, in record batches
however many the values fill, and Faust's persisted offset at the batch's last changelog record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from faust.types import TP, Message

from streams.engine.faust_hooks import topic_event
from streams.engine.log_reader import read, snapshot
from streams.engine.sends import Sends
from streams.engine.table_writes import TableWrites, folded_up_to, holds_up_to
from streams.engine.tables import partition_store
from streams.engine.topics import CONTACTS_TABLE, changelog_topic
from streams.engine.versions import FOLDED_UP_TO, HOLDS_UP_TO, headers
from streams.worker import Service
from tests.agents.test_agents import run_agent
from tests.integration.kafka import latest_values, produce, run

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
            await writes.put(key.encode(), json.dumps(value).encode(), partition=0, version=(0, 1))
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
    changelog = changelog_topic(seen["settings"], CONTACTS_TABLE)
    seen["first"] = first_record(kafka_brokers, changelog)
    seen["last"] = first_record(kafka_brokers, changelog, last=True)

    assert seen["stored"] == values
    # A fresh changelog: its last record's offset, after the batch's first marker, its values and
    # its last marker. The markers open and close the batch's records, whatever batches carry them.
    assert seen["persisted"] == KEYS + 1
    assert seen["first"] == (FOLDED_UP_TO, b"1")
    assert seen["last"] == (HOLDS_UP_TO, b"1")
    changelog = changelog_topic(seen["settings"], CONTACTS_TABLE)
    assert latest_values(kafka_brokers, changelog, set(values)) == values


def changelog_event(service: Service, offset: int, key: bytes, value: bytes, version: Any) -> Any:
    """A record of the contacts changelog's partition 0 as Faust's recovery hands it to the table."""
    topic = changelog_topic(service.settings, CONTACTS_TABLE)
    message = Message(
        topic, 0, offset, 0.0, 0, headers(version) if version else [], key, value, None, tp=TP(topic, 0)
    )
    return topic_event(service.tables.contacts.changelog_topic, message)


def test_a_restore_keeps_the_highest_version_of_a_key_not_the_last_in_the_log(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A zombie wakes and sends the changelog records of the batch it was folding, after the worker
    # that took its partition over wrote newer ones: read in log order, the older fold would win.
    seen: dict[str, Any] = {}

    async def scenario(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        table.apply_changelog_batch(
            [
                changelog_event(service, 0, b"+14155550001", b"newer", (0, 20)),
                changelog_event(service, 1, b"+14155550001", b"zombie's", (0, 10)),
                changelog_event(service, 2, b"+14155550002", b"before versions", None),
                changelog_event(service, 3, b"+14155550002", b"versioned", (0, 5)),
            ]
        )
        # In a later restore, against what the store holds: still the newer one.
        table.apply_changelog_batch([changelog_event(service, 4, b"+14155550001", b"late", (0, 19))])
        store = partition_store(table, 0)
        seen["values"] = {key: store.get(key) for key in (b"+14155550001", b"+14155550002")}
        seen["persisted"] = table.data.persisted_offset(
            TP(changelog_topic(service.settings, CONTACTS_TABLE), 0)
        )

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)

    assert seen["values"] == {b"+14155550001": b"newer", b"+14155550002": b"versioned"}
    assert seen["persisted"] == 4  # read up to there, kept or not


def test_the_persisted_offset_does_not_skip_another_workers_records(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A worker paused past its session timeout wakes and its record batch is acknowledged after the
    # records of the worker that took the partition over: its store lacks those, so its next
    # recovery must read them, from the offset it had before.
    seen: dict[str, Any] = {}

    async def scenario(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        tp = TP(changelog_topic(service.settings, CONTACTS_TABLE), 0)
        writes = TableWrites(Sends(service.app), table)

        async def write(key: bytes, offset: int) -> int | None:
            await writes.put(key, b"{}", partition=0, version=(0, offset))
            await writes.done()
            await service.app.producer.flush()
            await asyncio.sleep(0.1)  # the acknowledgements' callbacks
            persisted: int | None = table.data.persisted_offset(tp)
            return persisted

        seen["own"] = await write(b"+14155550001", 1)
        produce(kafka_brokers, tp.topic, [(b"+14155550002", b"{}")], 0, headers=headers((0, 2)))
        seen["after another's"] = await write(b"+14155550003", 3)

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)

    assert (seen["own"], seen["after another's"]) == (2, 2)  # its two markers and its value


def test_a_batch_folded_before_a_restore_does_not_take_the_store_back_to_its_older_fold(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A rebalance in the middle of a batch gave the partition back after another worker had folded
    # further: the recovery wrote its newer value while the batch, folded from what it read before,
    # was still to be written. The store keeps the newer value (the next batches build on it); the
    # batch's changelog record goes out, older, and readers keep the newer one.
    seen: dict[str, Any] = {}

    async def scenario(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        writes = TableWrites(Sends(service.app), table)
        await writes.put(b"+14155550001", b"folded up to 600", partition=0, version=(0, 600))
        await writes.put(b"+14155550002", b"folded up to 600", partition=0, version=(0, 600))
        table.apply_changelog_batch(
            [changelog_event(service, 0, b"+14155550001", b"by another, 700", (0, 700))]
        )
        await writes.done()
        await service.app.producer.flush()
        store = partition_store(table, 0)
        seen["values"] = {key: store.get(key) for key in (b"+14155550001", b"+14155550002")}

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)

    assert seen["values"] == {b"+14155550001": b"by another, 700", b"+14155550002": b"folded up to 600"}


def first_record(brokers: str, topic: str, last: bool = False) -> tuple[bytes | None, bytes | None]:
    """The key and value of the first (or `last`) record of `topic`'s partition 0."""

    async def first() -> tuple[bytes | None, bytes | None]:
        servers = brokers.split(",")
        found: tuple[bytes | None, bytes | None] = (None, None)
        async for records in read(servers, await snapshot(servers, [topic])):
            for record in records:
                if record.partition == 0:
                    found = record.key, record.value
                    if not last:
                        return found
        return found

    return run(first)


def test_a_store_restored_from_the_changelog_knows_how_far_its_fold_went(
    kafka_brokers: str, tmp_path: Path
) -> None:
    # A worker killed after its batch's changelog records were delivered and before its lists or
    # its commit: whoever restores the records must take the batch again for a redelivery, which
    # sends again what it sent, or the lists it lost stay lost. The marker is restored with them;
    # the highest wins, not the last in the log (a late batch's).
    seen: dict[str, Any] = {}

    async def scenario(service: Service, agent: Any) -> None:
        table = service.tables.contacts
        table.apply_changelog_batch(
            [
                changelog_event(service, 0, FOLDED_UP_TO, b"49", None),
                changelog_event(service, 1, b"+14155550001", b"folded up to 49", (0, 49)),
                changelog_event(service, 2, HOLDS_UP_TO, b"49", None),
                changelog_event(service, 3, FOLDED_UP_TO, b"40", None),
                changelog_event(service, 4, HOLDS_UP_TO, b"40", None),
            ]
        )
        store = partition_store(table, 0)
        seen["markers"] = folded_up_to(store), holds_up_to(store)

    run_agent(kafka_brokers, tmp_path, "resolve", scenario)

    assert seen["markers"] == (49, 49)
