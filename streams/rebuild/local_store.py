"""One partition's state while a replay or a verification rebuilds it: a RocksDB of its own on local
disk, holding the same keys and values as the workers' stores (`streams.engine.tables`), so that
memory stays flat whatever the log's size.

Writes wait in memory until `commit`, which writes them in one batch with the store's own records
(how far it has read, counters): a process killed between two commits starts again from the last
one, and what it had sent since is sent again (the folds are idempotent; every fact keeps its id).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from rocksdict import BlockBasedIndexType, BlockBasedOptions, Cache, Options, Rdict, WriteBatch

# The store's own records start with a NUL, which no phone or person id holds (`schemas.events`);
# the rebuild's indexes with other bytes below a space, which no id starts with either.
_META = b"\x00optouts:"
_FIRST_ENTITY = b" "


def _options() -> Options:
    # As the workers' stores (streams.engine.tables.STORE_OPTIONS): small write buffers, flushed to
    # disk, so that a store of millions of keys does not stay in memory; a small block cache that
    # also holds the index and filter blocks (RocksDB's default keeps those of every open file
    # outside any cache, and its default cache is 32 MiB). Indexes and filters are partitioned, only
    # their top level pinned: a file's whole index outgrew the 8 MiB cache and was read again for
    # every get (3,500 gets/s on 400,000 keys; partitioned, 90,000).
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(4 * 1024 * 1024)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(8 * 1024 * 1024))
    table.set_cache_index_and_filter_blocks(True)
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_bloom_filter(10, False)
    table.set_partition_filters(True)
    table.set_metadata_block_size(4096)
    table.set_pin_top_level_index_and_filter(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options.set_block_based_table_factory(table)
    return options


class LocalStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = Rdict(str(path), _options())
        self._pending: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        value: bytes | None = self.db.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def delete(self, key: bytes) -> None:
        self._pending[key] = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def meta(self, name: str, default: Any = None) -> Any:
        value = self.get(_META + name.encode())
        return default if value is None else json.loads(value)

    def set_meta(self, name: str, value: Any) -> None:
        self.put(_META + name.encode(), json.dumps(value).encode())

    def commit(self) -> None:
        """Write what was put since the last commit, all of it or nothing."""
        if not self._pending:
            return
        batch = WriteBatch(raw_mode=True)
        for key, value in self._pending.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self.db.write(batch)
        self._pending.clear()

    def entities(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of the entities (phones, persons, history chunks), in key order; what
        was committed."""
        yield from self.db.items(from_key=_FIRST_ENTITY)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every committed (key, value) whose key starts with `prefix`, in key order."""
        for key, value in self.db.items(from_key=prefix):
            if not cast(bytes, key).startswith(prefix):
                return
            yield cast(bytes, key), value

    def clear(self, prefix: bytes) -> None:
        """Delete every committed key starting with `prefix` (a byte below 0xff)."""
        self.commit()
        self.db.delete_range(prefix, prefix[:-1] + bytes([prefix[-1] + 1]))

    def close(self) -> None:
        self.commit()
        self.db.close()
