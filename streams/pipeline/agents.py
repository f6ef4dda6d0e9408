"""The two agents: `resolve` (stage 1, per phone) and `project` (stage 2, per person).

Each takes its topic one fetched partition batch at a time (streams.engine.batches), decodes every value
once, folds it with the pure fold, writes each key's state to the table once per batch
(streams.engine.table_writes), and sends what the folds emitted (appended to the producer's batches, no
per-event round trip; streams.engine.sends).
Faust commits a batch's offsets only after it was processed and the producer flushed, so delivery is
at-least-once, made exact by the idempotent folds: a redelivered event id changes nothing and
re-sends what it emitted before.

No record can take its neighbours down: one that cannot be read, is dated too far ahead, or whose
fold raises is kept aside in sms-dead-letters and the batch goes on; a batch that fails for any
other reason is folded again (`until_folded`), never committed unfolded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import faust

from projections.contacts import Contacts, resolve
from projections.opt_outs import PersonOptOuts, project
from schemas.codec import encode
from schemas.errors import DecodeError, FoldError
from streams.engine import faust_hooks
from streams.engine.batches import Fetched
from streams.engine.sends import Sends
from streams.engine.table_writes import TableWrites, folded_up_to
from streams.engine.tables import BatchReads, KnownKeys, Tables, partition_store, storable, stored
from streams.engine.topics import DEAD_LETTERS, MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS, Topics
from streams.pipeline.admission import messaging_event
from streams.pipeline.admission import person_event as person_event_of
from streams.pipeline.dead_letters import dead_letter
from streams.pipeline.forwarding import Forwarding
from streams.pipeline.metrics import Metrics
from streams.pipeline.person_history import history_writes
from streams.settings import Settings

log = logging.getLogger(__name__)


def register_agents(
    app: faust.App, settings: Settings, topics: Topics, tables: Tables, metrics: Metrics
) -> None:
    keywords = settings.keywords
    region = settings.default_region
    max_ahead = timedelta(seconds=settings.max_ahead)
    sends = Sends(app)
    contacts_writes = TableWrites(sends, tables.contacts)
    opt_outs_writes = TableWrites(sends, tables.opt_outs)

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

    async def resolve_batch(batch: Fetched) -> None:
        store = partition_store(tables.contacts, batch.partition)
        stored_contacts = BatchReads(store)
        # A batch that reaches back into what the store already holds is a redelivery after a crash:
        # the store may be ahead of its changelog (streams.engine.table_writes), so it writes every key it
        # touches. Any other batch writes only the keys whose contacts changed.
        redelivered = batch.records[0].offset <= folded_up_to(store)
        loaded: dict[bytes, Contacts] = {}  # as stored before this batch
        states: dict[bytes, Contacts] = {}
        known = KnownKeys(states, stored_contacts)  # phones stored or folded: not parsed again
        folded: Counter[str] = Counter()
        for record in batch.records:
            try:
                message = messaging_event(record, region=region, max_ahead=max_ahead, known_phones=known)
            except DecodeError as exc:
                await skip(record, exc)
                continue
            key = message.phone.encode()
            if await forward.elsewhere(record, key, message):
                continue
            if key in states:
                contacts = states[key]
            else:
                contacts = loaded[key] = Contacts.from_json(stored(stored_contacts.get(key)))
            try:
                resolution = resolve(contacts, message, keywords)
            except Exception as exc:  # a defect of the fold: this event aside, not the batch
                await skip(record, FoldError(message.type, exc))
                continue
            states[key] = resolution.contacts
            if resolution.contacts is contacts and message.event_id in contacts.applied:
                folded[DUPLICATE] += 1
            for emitted in resolution.emitted:
                await sends.send(PERSON_EVENTS, emitted.person_id.encode(), encode(emitted))
            folded[message.type] += 1
        for key, contacts in states.items():
            if redelivered or contacts is not loaded[key]:
                await contacts_writes.put(key, storable(contacts.to_json()), batch.partition)
        contacts_writes.folded(batch.partition, batch.records[-1].offset)
        await contacts_writes.done()
        count_folded(metrics, "resolve", folded)

    async def project_batch(batch: Fetched) -> None:
        store = partition_store(tables.opt_outs, batch.partition)
        redelivered = batch.records[0].offset <= folded_up_to(store)  # as in resolve_batch
        folded: Counter[str] = Counter()
        loaded: dict[bytes, PersonOptOuts] = {}  # as stored before this batch
        states: dict[bytes, PersonOptOuts] = {}
        for record in batch.records:
            try:
                person_event = person_event_of(record, max_ahead=max_ahead)
            except DecodeError as exc:
                await skip(record, exc)
                continue
            key = person_event.person_id.encode()
            if await forward.elsewhere(record, key, person_event):
                continue
            if key not in states:
                state = stored(store.get(key))
                loaded[key] = states[key] = PersonOptOuts.from_json(person_event.person_id, state)
            before_event = states[key]
            try:
                projected = project(before_event, person_event)
            except Exception as exc:  # a defect of the fold: this event aside, not the batch
                await skip(record, FoldError(person_event.type, exc))
                continue
            states[key] = projected
            if projected is before_event:
                folded[DUPLICATE] += 1
            folded[person_event.type] += 1
        for key, state in states.items():
            before = loaded[key]
            # A redelivery writes and sends again all it touched: the crash may have lost the
            # changelog records and the list the store already holds. Otherwise only what changed
            # (a state read with its history inline, as stored before it was kept apart, is moved).
            if redelivered or state is not before or before.history:
                await opt_outs_writes.put(key, storable(state.to_json()), batch.partition)
                for chunk, changes in history_writes(state, store.get, rewrite=redelivered):
                    await opt_outs_writes.put(chunk, changes, batch.partition)
            # The whole list, not only its entries: an opt-out recorded and cleared within
            # one batch leaves the entries as they were but changes the list's history.
            if redelivered or state.as_list() != before.as_list():
                await sends.send(OPT_OUTS, key, encode(state.as_list()))
                metrics.list_size.observe(len(state.entries))
        opt_outs_writes.folded(batch.partition, batch.records[-1].offset)
        await opt_outs_writes.done()
        count_folded(metrics, "project", folded)

    # Each event is one partition's fetched records (streams.engine.batches); what a batch writes goes
    # out through `sends` (streams.engine.sends), each table key in the batch's partition.
    @app.agent(topics.messaging_events, name="resolve")
    async def resolve_agent(stream: faust.StreamT[Fetched]) -> AsyncIterator[int]:
        async for batch in stream:
            await until_folded(resolve_batch, batch, "resolve", contacts_writes, metrics)
            yield len(batch)
            await take_turns()

    @app.agent(topics.person_events, name="project")
    async def project_agent(stream: faust.StreamT[Fetched]) -> AsyncIterator[int]:
        async for batch in stream:
            await until_folded(project_batch, batch, "project", opt_outs_writes, metrics)
            yield len(batch)
            await take_turns()

    count_fold_errors(resolve_agent, "resolve", metrics)
    count_fold_errors(project_agent, "project", metrics)


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
DUPLICATE = "duplicate"  # not an event type: the events folded as duplicates


def count_folded(metrics: Metrics, stage: str, folded: Counter[str]) -> None:
    for kind, count in folded.items():
        if kind == DUPLICATE:
            metrics.duplicates.labels(stage).inc(count)
        else:
            metrics.events_folded.labels(stage, kind).inc(count)
