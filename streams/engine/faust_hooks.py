"""Every private Faust and aiokafka name this project touches, each behind one small function.

The engine departs from Faust's own path in a few places (docs/decisions/); what those departures
reach into is here and nowhere else, so a Faust or aiokafka upgrade is checked in one module, and
tests/unit/test_faust_hooks.py fails, naming the hook, when a name is gone or its signature changed.
The subclasses in streams.engine (transport, recovery, app, batches) override private methods;
`OVERRIDDEN` lists those for the same test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.agents.agent import Agent
from faust.app.router import Router
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, ConsumerMessage, EventT, Message
from rocksdict import Rdict
from yarl import URL

from streams.engine.store_memory import BoundedOptions, Budget

AgentErrorHandler = Callable[[Any, BaseException], Awaitable[None]]


# Agents ---------------------------------------------------------------------------------------


def agent_error_handler(agent: Any) -> AgentErrorHandler | None:
    """The handler Faust calls when the agent's body raises (`@app.agent` sets the app's own)."""
    handler: AgentErrorHandler | None = agent._on_error
    return handler


def set_agent_error_handler(agent: Any, handler: AgentErrorHandler) -> None:
    agent._on_error = handler


# The consumer -----------------------------------------------------------------------------------


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """Faust's own record of what the group committed for `tp` (the next offset to fold)."""
    offset: int | None = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]  # private
    return offset


def set_fetch_max_wait(consumer: AIOKafkaConsumer, seconds: float) -> None:
    """aiokafka's fetch wait, which Faust fixes at 1.5 s; read when the consumer starts."""
    consumer._fetch_max_wait_ms = int(seconds * 1000)


def set_fetch_max_bytes(consumer: AIOKafkaConsumer, size: int) -> None:
    """aiokafka's bytes per fetch, all partitions together (Faust leaves aiokafka's 50 MiB); read when
    the consumer starts."""
    consumer._fetch_max_bytes = size


def acked_offsets(consumer: Consumer, tp: TP) -> list[int]:
    """The offsets of `tp` acked since the last commit (Faust's list, changed in place)."""
    acked: list[int] = consumer._acked[tp]
    return acked


def forget_acked(consumer: Consumer, tp: TP) -> None:
    """Clear what was acked of `tp` once its commit offset is taken from it."""
    consumer._acked[tp].clear()
    consumer._acked_index[tp].clear()


def consumer_thread(consumer: Consumer) -> Any:
    """The thread Faust runs the aiokafka consumer in (the transport's PromptConsumerThread)."""
    return consumer._thread  # type: ignore[attr-defined]  # the driver's ThreadDelegateConsumer


async def next_records(consumer: Consumer, timeout: float) -> tuple[Any, Any]:
    """(records by partition or None, the active partitions or None): Faust's fetch with its checks."""
    result: tuple[Any, Any] = await consumer._wait_next_records(timeout)
    return result


def buffered_partitions(consumer: Consumer) -> set[TP]:
    partitions: set[TP] = consumer._buffered_partitions
    return partitions


def record_message(consumer: Consumer, tp: TP, record: Any) -> ConsumerMessage:
    """Faust's message for one aiokafka record."""
    message: ConsumerMessage = consumer._to_message(tp, record)
    return message


# The producer -----------------------------------------------------------------------------------


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer inside the app's Faust producer (created when the app starts). Its own
    `create_batch` and `send_batch` are public aiokafka API; only the way to it is private."""
    producer: AIOKafkaProducer = app.producer._producer  # type: ignore[attr-defined]  # private
    return producer


# Tables -----------------------------------------------------------------------------------------


def bound_store_memory(store: Any, budget: Budget) -> None:
    """Open `store`'s partitions (a RocksDB store not opened yet) within `budget`: Faust builds the
    options each partition is opened with from `rocksdb_options`, made in the store's constructor."""
    if isinstance(store, RocksDBStore):
        store.rocksdb_options = BoundedOptions(
            **(store.options or {}), use_rocksdict=store.use_rocksdict, budget=budget
        )


def partition_db(table: faust.Table[Any, Any], partition: int) -> Rdict:
    """The RocksDB of one partition of `table`, opened on first use."""
    db: Rdict = table.data._db_for_partition(partition)  # type: ignore[attr-defined]  # RocksDB store's
    return db


def key_owner(table: faust.Table[Any, Any], key: str) -> URL:
    """The web URL of the worker that owns `key`'s partition of `table` (KeyError: no owner yet)."""
    owner: URL = table.app.router.key_store(table.name, key)
    return owner


def highwater_table(recovery: Recovery, highwaters: Mapping[TP, int], title: str) -> str:
    """Faust's log table of the highwaters, as its own recovery logs them."""
    text: str = recovery._highwater_logtable(highwaters, title=title)
    return text


def table_recovery(app: faust.App) -> Recovery:
    """The recovery of the app's tables from their changelogs (Faust types `app.tables` as its
    abstract TableManagerT, which has no `recovery`; the app's is a TableManager)."""
    return cast(TableManager, app.tables).recovery


def manager_recovery(manager: TableManager) -> Recovery | None:
    recovery: Recovery | None = manager._recovery
    return recovery


def set_manager_recovery(manager: TableManager, recovery: Recovery) -> None:
    manager._recovery = recovery


# Topics -----------------------------------------------------------------------------------------


def topic_event(topic: faust.Topic, message: Message) -> EventT[Any]:
    """The event Faust's stream hands an agent for `message`, with its value as it is."""
    event: EventT[Any] = topic._create_event(message.key, message.value, message.headers, message=message)
    return event


# What the engine's subclasses override -----------------------------------------------------------


@dataclass(frozen=True)
class Overridden:
    """A private (or framework-internal) method a subclass in streams.engine overrides, with the
    parameters it is called with."""

    owner: type
    name: str
    parameters: Sequence[str]
    by: str  # the subclass that overrides it


OVERRIDDEN: tuple[Overridden, ...] = (
    Overridden(
        driver.AIOKafkaConsumerThread,
        "_create_worker_consumer",
        ("self", "transport"),
        "streams.engine.transport.PromptConsumerThread",
    ),
    Overridden(driver.Consumer, "_new_consumer_thread", ("self",), "streams.engine.transport.PromptConsumer"),
    Overridden(driver.Consumer, "_new_offset", ("self", "tp"), "streams.engine.transport.PromptConsumer"),
    Overridden(
        driver.Consumer,
        "_add_gap",
        ("self", "tp", "offset_from", "offset_to"),
        "streams.engine.transport.PromptConsumer",
    ),
    Overridden(driver.Consumer, "getmany", ("self", "timeout"), "streams.engine.transport.PromptConsumer"),
    Overridden(
        Recovery,
        "_build_highwaters",
        ("self", "consumer", "tps", "destination", "title"),
        "streams.engine.recovery.LogEndRecovery",
    ),
    Overridden(faust.App, "_new_transport", ("self",), "streams.engine.app.OptOutsApp"),
    Overridden(faust.Table, "_new_store", ("self",), "streams.engine.tables.VersionedTable"),
    Overridden(
        faust.Topic, "decode", ("self", "message", "propagate"), "streams.engine.batches.BatchedTopic"
    ),
)


# Each private attribute the functions above read or write, where it lives, for the same test:
# (hook, the class that defines it, the attribute, "method" or "attribute", its parameters).
PRIVATE_NAMES: tuple[tuple[str, type, str, str, Sequence[str]], ...] = (
    ("agent_error_handler", Agent, "_on_error", "attribute", ()),
    ("committed_offset", Consumer, "_committed_offset", "attribute", ()),
    ("set_fetch_max_wait", AIOKafkaConsumer, "_fetch_max_wait_ms", "attribute", ()),
    ("set_fetch_max_bytes", AIOKafkaConsumer, "_fetch_max_bytes", "attribute", ()),
    ("acked_offsets", Consumer, "_acked", "attribute", ()),
    ("forget_acked", Consumer, "_acked_index", "attribute", ()),
    ("next_records", Consumer, "_wait_next_records", "method", ("self", "timeout")),
    ("buffered_partitions", Consumer, "_buffered_partitions", "attribute", ()),
    ("record_message", driver.Consumer, "_to_message", "method", ("self", "tp", "record")),
    ("kafka_producer", driver.Producer, "_producer", "attribute", ()),
    ("kafka_producer", AIOKafkaProducer, "create_batch", "method", ("self",)),
    ("kafka_producer", AIOKafkaProducer, "send_batch", "method", ("self", "batch", "topic", "partition")),
    ("bound_store_memory", RocksDBStore, "rocksdb_options", "attribute", ()),
    ("bound_store_memory", RocksDBStore, "options", "attribute", ()),
    ("bound_store_memory", RocksDBStore, "use_rocksdict", "attribute", ()),
    ("partition_db", RocksDBStore, "_db_for_partition", "method", ("self", "partition")),
    ("key_owner", Router, "key_store", "method", ("self", "table_name", "key")),
    ("highwater_table", Recovery, "_highwater_logtable", "method", ("self", "highwaters", "title")),
    ("manager_recovery", TableManager, "_recovery", "attribute", ()),
    ("topic_event", faust.Topic, "_create_event", "method", ("self", "key", "value", "headers", "message")),
)
