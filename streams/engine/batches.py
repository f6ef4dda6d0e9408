"""Fetched batches: for the input topics, one Faust event per partition per fetch.

Faust hands every record to its stream on its own: a message object, a task pair racing the
delivery against a flow suspension, a queue hop, an event, sensors and an ack, per record. Measured
here, that alone held an agent that did nothing to ~4,500 records/s, and batching them again with
`take_events()` did not give it back (the per-record path still runs). So for the topics declared
with `batched_topic`, the consumer (streams.engine.transport) hands the agent each partition's fetched
records as one event whose value is a `Fetched`; everything after the fetch is then per batch.

The batch's message carries its *last* offset. The consumer commits past the whole batch once its
agent says it was folded (`folded`), in the generation it was fetched in, and (at-least-once) only
after the producer flushed what the fold sent; not on Faust's ack, which also comes for batches no
agent folded (streams.engine.transport). The event's partition is the records' partition, so the
tables read and write each key in the right store.

Decision record: docs/decisions/0001-fetched-batches.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import faust
from faust.types import EventT, Message

from streams.engine import faust_hooks


@dataclass(frozen=True, slots=True)
class Fetched:
    """The records one fetch returned for one partition, in offset order (aiokafka ConsumerRecords:
    `.key`, `.value`, `.offset`, `.partition`, `.topic`), and the consumer generation (rebalance)
    they were fetched in: None where no consumer fetched them (the tests')."""

    topic: str
    partition: int
    records: Sequence[Any]
    generation: int | None = None

    def __len__(self) -> int:
        return len(self.records)


class BatchedTopic(faust.Topic):
    """A topic whose consumer-side events are `Fetched` batches: the value is handed over as it is
    (each record's bytes are decoded by the agent). Sending to it is a normal raw-bytes topic."""

    async def decode(self, message: Message, *, propagate: bool = False) -> EventT[Any]:
        return faust_hooks.topic_event(self, message)


# Batches an agent's stream may hold before the consumer stops fetching its partitions. Faust's
# default (stream_buffer_maxsize, 4096) counts events, and here an event is a whole fetch: with a
# backlog, a worker buffered hundreds of megabytes of records it had not folded yet.
BUFFERED_BATCHES = 8


class BatchingApp(Protocol):
    """What the engine adds to Faust's app (streams.engine.app.OptOutsApp), for the transport and
    the topics, which are handed Faust's `AppT`."""

    batched_topics: set[str]
    fetch_max_wait: float


def batching(app: Any) -> BatchingApp:
    """`app` (an OptOutsApp: the only app the engine builds) as the engine's own type."""
    return cast(BatchingApp, app)


def batched_topic(app: faust.App, name: str, **options: Any) -> BatchedTopic:
    """Declare `name` as a batched topic of `app` (an OptOutsApp: its consumer batches it)."""
    batching(app).batched_topics.add(name)
    return BatchedTopic(app, topics=[name], maxsize=BUFFERED_BATCHES, **options)


class FoldedBatches(Protocol):
    def batch_folded(self, batch: Fetched) -> None: ...


def folded(app: faust.App, batch: Fetched) -> None:
    """Tell the consumer that `batch` was folded (written and sent): its offsets may be committed."""
    cast(FoldedBatches, app.consumer).batch_folded(batch)
