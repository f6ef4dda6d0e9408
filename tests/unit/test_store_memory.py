"""Every RocksDB store of a worker counts against one memory budget: its blocks and write buffers,
whatever the partitions and tables it holds (streams.engine.store_memory)."""

from __future__ import annotations

from pathlib import Path

from streams.engine.store_memory import BUDGET, WRITE_BUFFERS, process_budget
from streams.engine.tables import partition_store
from streams.settings import Settings
from streams.worker import build_service


def test_the_write_buffers_of_every_store_of_a_worker_count_against_one_budget(tmp_path: Path) -> None:
    service = build_service(Settings(kafka_brokers="127.0.0.1:1", data_dir=tmp_path))
    budget = process_budget()
    tables = (service.tables.contacts, service.tables.opt_outs)
    stores = [partition_store(table, partition) for table in tables for partition in (0, 1)]
    charged = []
    for store in stores:
        before = budget.write_buffers.get_usage()
        for index in range(200):
            store[b"+1415555%04d" % index] = b"x" * 1000
        charged.append(budget.write_buffers.get_usage() - before)

    # Each store's writes (200 kB, well under a write buffer: nothing flushed) were charged to the
    # one budget; with a manager per store (Faust's way) the shared one would not have seen them.
    assert all(growth >= 200_000 for growth in charged), charged
    assert budget.cache.get_usage() >= budget.write_buffers.get_usage()  # the buffers are in the cache


def test_the_budget_is_made_once_per_process() -> None:
    assert process_budget() is process_budget()
    assert process_budget().write_buffers.get_buffer_size() == WRITE_BUFFERS < BUDGET
