"""The two agents: `resolve` (stage 1, per phone) and `project` (stage 2, per person).

Each takes its topic one fetched partition batch at a time (streams.engine.batches) and runs its
stage's rule (streams.pipeline.stages) over the batch as one unit of work
(streams.engine.unit_of_work): each key's state written once per batch (streams.engine.table_writes),
what the folds emitted appended to the producer's batches (streams.engine.sends).
Faust commits a batch's offsets only after it was processed and the producer flushed, so delivery is
at-least-once, made exact by the idempotent folds: a redelivered event id changes nothing and
re-sends what it emitted before.

No record can take its neighbours down: one that cannot be read, is dated too far ahead, or whose
fold raises is kept aside in sms-dead-letters and the batch goes on; a batch that fails for any
other reason is folded again (`until_folded`), never committed unfolded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import faust

from schemas.codec import encode
from schemas.errors import DecodeError, FoldError
from streams.engine import faust_hooks
from streams.engine.batches import Fetched, folded
from streams.engine.sends import Sends
from streams.engine.table_writes import TableWrites, holds_up_to, write_again
from streams.engine.tables import BytesTable, Tables, partition_store
from streams.engine.topics import DEAD_LETTERS, MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS, Topics
from streams.engine.unit_of_work import BatchUnit, PartitionBatch
from streams.engine.versions import Version, headers
from streams.pipeline.dead_letters import dead_letter
from streams.pipeline.forwarding import Forwarding
from streams.pipeline.metrics import Metrics
from streams.pipeline.stages import (
    DUPLICATE,
    project_records,
    published_list,
    resolve_records,
    stored_contacts,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

# A stage's per-batch rule with its settings bound: the events folded, by type.
StageRule = Callable[[BatchUnit, Sequence[Any]], Awaitable[Counter[str]]]


def register_agents(
    app: faust.App, settings: Settings, topics: Topics, tables: Tables, metrics: Metrics, generation: int = 0
) -> None:
    keywords = settings.keywords
    region = settings.default_region
    max_ahead = timedelta(seconds=settings.max_ahead)
    sends = Sends(app)

    # Tables are per partition: an event keyed by anything but its normalised entity, or placed on
    # another partition than murmur2 of that key, would be folded in another partition's store than
    # its entity's other events. It is forwarded there instead (streams.pipeline.forwarding).
    forward = Forwarding(sends, metrics, (MESSAGING_EVENTS, PERSON_EVENTS))

    def skip(record: Any, exc: DecodeError | FoldError) -> Awaitable[Any]:
        # The one policy for bad input: log where it is and why, count it, keep it aside in
        # sms-dead-letters (sent like the batch's other sends: its offset is committed only once
        # the dead letter is acknowledged), go on with the next.
        log.warning("skipped %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)
        metrics.decode_failures.labels(record.topic).inc()
        letter = dead_letter(record, exc, app.conf.id)
        # The letter's key, not the record's: it is cut to a bounded size like the value, so that
        # no key or value can make the dead letter itself too large to send.
        return sends.send(DEAD_LETTERS, letter.original_key(), encode(letter))

    def stage(
        name: str, topic: faust.TopicT, table: BytesTable, writes: TableWrites, rule: StageRule
    ) -> None:
        """The agent `name`: each batch of `topic` is one unit of work over its partition of
        `table`, folded by the stage's `rule` (streams.pipeline.stages) until it goes through."""

        async def fold_batch(batch: Fetched) -> None:
            store = partition_store(table, batch.partition)
            if batch.records[0].offset > holds_up_to(store) + 1:
                # Folded past what the store holds every value of (another worker's batches, or a
                # restore that ended inside a batch's records): first whatever the changelog has
                # beyond what the store read (streams.engine.tables.VersionedTable.catch_up).
                caught_up = await table.catch_up(batch.partition, settings.brokers)
                if caught_up:
                    log.warning(
                        "%s[%s]: read %d changelog records the store lacked before folding from %s",
                        batch.topic,
                        batch.partition,
                        caught_up,
                        batch.records[0].offset,
                    )
            unit = PartitionBatch(store, batch, writes, sends, skip, generation)
            folded = await rule(unit, batch.records)
            await unit.done()
            count_folded(metrics, name, folded)

        # Each event is one partition's fetched records (streams.engine.batches); what a batch
        # writes goes out through `sends` (streams.engine.sends), each table key in its partition.
        @app.agent(topic, name=name)
        async def agent(stream: faust.StreamT[Fetched]) -> AsyncIterator[int]:
            async for batch in stream:
                await until_folded(fold_batch, batch, name, writes, metrics)
                folded(app, batch)  # its offsets may now be committed
                yield len(batch)
                await take_turns()

        count_fold_errors(agent, name, metrics)

    # A worker that recovers a partition it owns and finds a late record of an older fold (a worker
    # that woke from a pause after its partitions moved) writes the newer values again, and for a
    # person the list (streams.engine.tables.VersionedTable).
    async def publish_again(key: bytes, value: bytes, version: Version) -> None:
        listed = published_list(key, value)
        if listed is not None:
            await sends.send(OPT_OUTS, key, listed, headers=headers(version))

    tables.contacts.repair = functools.partial(write_again, tables.contacts, sends)
    tables.opt_outs.repair = functools.partial(write_again, tables.opt_outs, sends, also=publish_again)

    stage(
        "resolve",
        topics.messaging_events,
        tables.contacts,
        TableWrites(sends, tables.contacts),
        functools.partial(
            resolve_records,
            keywords=keywords,
            region=region,
            max_ahead=max_ahead,
            forward=forward.elsewhere,
            decoded=stored_contacts(),
        ),
    )
    stage(
        "project",
        topics.person_events,
        tables.opt_outs,
        TableWrites(sends, tables.opt_outs),
        functools.partial(
            project_records,
            max_ahead=max_ahead,
            forward=forward.elsewhere,
            list_size=metrics.list_size.observe,
        ),
    )


# Seconds before a batch that failed is folded again: doubled after each failure, up to the most.
RETRY_FIRST, RETRY_MOST = 0.5, 30.0


async def until_folded(
    fold: Callable[[Fetched], Awaitable[None]],
    batch: Fetched,
    stage: str,
    writes: TableWrites,
    metrics: Metrics,
    delay: float = RETRY_FIRST,
) -> None:
    """`fold(batch)`, again and again until it goes through: a batch is never skipped.

    An exception that escapes the per-record handling (a write or a send that failed) would crash
    the agent, and Faust acks the event an agent crashes on: its whole batch would be committed
    unfolded. Folding the batch again is safe (the folds are idempotent: what went out before the
    failure goes out again, the same), and while it fails the partition lags, which /ready and the
    lag alert show."""
    while True:
        started = time.perf_counter()
        try:
            await fold(batch)
        except Exception:
            metrics.fold_errors.labels(stage).inc()
            writes.discard()
            first, last = batch.records[0].offset, batch.records[-1].offset
            log.exception(
                "%s: folding %s[%s]@%s-%s failed; folding it again in %.1f s",
                stage,
                batch.topic,
                batch.partition,
                first,
                last,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MOST)
            continue
        metrics.fold_seconds.labels(stage).observe(time.perf_counter() - started)
        metrics.batch_events.labels(stage).observe(len(batch))
        return


def count_fold_errors(agent: Any, stage: str, metrics: Metrics) -> None:
    """Count every exception the agent's body raises (Faust then restarts the agent): the counter is
    what an alert sees. `@app.agent` passes the app's own error handler and takes no other, so the
    count wraps it; the app's handler (a commit of what was acked) still runs."""
    metrics.fold_errors.labels(stage).inc(0)  # a series from the start: an alert sees 0
    app_on_error = faust_hooks.agent_error_handler(agent)

    async def on_error(failed: faust.types.AgentT[Any], exc: BaseException) -> None:
        metrics.fold_errors.labels(stage).inc()
        if app_on_error is not None:
            await app_on_error(failed, exc)

    faust_hooks.set_agent_error_handler(agent, on_error)


async def take_turns() -> None:
    """Let the other tasks run between two batches: with a backlog, the next batch is there at once,
    and an agent that never paused kept the loop from the other agent and from requests."""
    await asyncio.sleep(0)


# Counted per batch, not per event: a labelled counter's lookup costs more than the count.


def count_folded(metrics: Metrics, stage: str, folded: Counter[str]) -> None:
    for kind, count in folded.items():
        if kind == DUPLICATE:
            metrics.duplicates.labels(stage).inc(count)
        else:
            metrics.events_folded.labels(stage, kind).inc(count)
