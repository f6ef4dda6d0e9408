"""One memory budget for all of a worker's RocksDB stores, whatever the partitions it owns.

Faust gives each store (a table's partition) a block cache of its own, and its write buffers count
only against that store: a worker's RocksDB memory grows with the partitions it is assigned, 16 MiB
a store here (an 8 MiB cache, up to two 4 MiB write buffers), so a worker that takes over the
partitions of others, or a cluster planned with many partitions per worker, grows with them. Here
every store of the process reads through one block cache, and its write buffers are charged to that
cache (RocksDB's write buffer manager): blocks and memtables together stay within `BUDGET`, as
Kafka Streams' bounded-memory configuration does. A store whose memtables pass their share is
flushed early (on RocksDB's own thread), never stalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import BlockBasedIndexType, BlockBasedOptions, Cache, Options, WriteBufferManager

BUDGET = 64 * 1024 * 1024  # blocks and write buffers of every store of the process
WRITE_BUFFERS = 32 * 1024 * 1024  # of which the write buffers may take at most this much


@dataclass(frozen=True)
class Budget:
    cache: Cache
    write_buffers: WriteBufferManager


@cache
def process_budget() -> Budget:
    """The budget every store of this process shares (made on first use)."""
    shared = Cache(BUDGET)
    return Budget(
        shared, WriteBufferManager.new_write_buffer_manager_with_cache(WRITE_BUFFERS, False, shared)
    )


class BoundedOptions(RocksDBOptions):
    """Faust's options for a store, with the process's shared cache and write buffer manager."""

    def __init__(self, *args: Any, budget: Budget, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget

    def as_options(self) -> Options:
        options: Options = super().as_options()
        table = BlockBasedOptions()  # Faust's table options, but for the cache
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.budget.cache)
        table.set_index_type(BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.budget.write_buffers)
        return options
