"""The two agents: `resolve` (stage 1, per phone) and `project` (stage 2, per person).

Each takes the events of its topic in batches, decodes every value once, folds it with the pure
fold, writes each changed key's state to the table once per batch, and sends what the folds emitted
(buffered, no per-event round trip). Faust commits a batch's offsets only after it was processed and
the producer flushed, so delivery is at-least-once, made exact by the idempotent folds: a redelivered
event id changes nothing and re-sends what it emitted before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import faust

from projections.contacts import Contacts, resolve
from projections.opt_outs import PersonOptOuts, project
from schemas.codec import decode_messaging_event, decode_person_event, encode
from schemas.errors import DecodeError
from streams.dead_letters import dead_letter
from streams.metrics import Metrics
from streams.settings import Settings
from streams.tables import Tables, storable, stored
from streams.topics import Topics

log = logging.getLogger(__name__)
T = TypeVar("T")


def register_agents(
    app: faust.App, settings: Settings, topics: Topics, tables: Tables, metrics: Metrics
) -> None:
    keywords = settings.keywords
    region = settings.default_region

    def skip(event: faust.EventT, exc: DecodeError) -> None:
        # The one policy for bad input: log where it is and why, count it, keep it aside in
        # sms-dead-letters (sent like the batch's other sends: its offset is committed only once
        # the dead letter is acknowledged), go on with the next.
        message = event.message
        log.warning("skipped %s[%s]@%s: %s", message.topic, message.partition, message.offset, exc)
        metrics.decode_failures.labels(message.topic).inc()
        letter = dead_letter(message, exc, app.conf.id)
        # The letter's key, not the record's: it is cut to a bounded size like the value, so that
        # no key or value can make the dead letter itself too large to send.
        topics.dead_letters.send_soon(key=letter.original_key(), value=encode(letter))

    def rekeyed(topic: faust.TopicT, event: faust.EventT, key: bytes, value: bytes) -> bool:
        # Tables are partitioned by the Kafka key: an event keyed by anything but its normalised
        # entity would be folded on the wrong partition, so it is sent again under the right key.
        if event.key == key:
            return False
        topic.send_soon(key=key, value=value)
        metrics.rekeyed.labels(event.message.topic).inc()
        return True

    # Faust's RocksDB store reads and writes a key in the partition of the stream's *current
    # event*; a batch from take_events() has none (faust-streaming#497). So the event a key came
    # with is made current around every read and write of that key, and cleared after the batch: a
    # stale current event would make a read of a key from another partition find nothing.
    def load(stream: faust.StreamT[Any], table: faust.Table, key: bytes, event: faust.EventT) -> Any:
        stream._set_current_event(event)
        return table.get(key)

    def store(
        stream: faust.StreamT[Any], table: faust.Table, key: bytes, value: Any, event: faust.EventT
    ) -> None:
        stream._set_current_event(event)
        table[key] = value

    @app.agent(topics.messaging_events, name="resolve")
    async def resolve_agent(stream: faust.StreamT[bytes]) -> AsyncIterator[int]:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
            started = time.perf_counter()
            states: dict[bytes, Contacts] = {}
            touched: dict[bytes, faust.EventT] = {}
            for event in batch:
                try:
                    message = decode_messaging_event(event.value, region=region)
                except DecodeError as exc:
                    skip(event, exc)
                    continue
                key = message.phone.encode()
                if rekeyed(topics.messaging_events, event, key, encode(message)):
                    continue
                if key in states:
                    contacts = states[key]
                else:
                    contacts = Contacts.from_json(stored(load(stream, tables.contacts, key, event)))
                resolution = resolve(contacts, message, keywords)
                states[key] = resolution.contacts
                # Every key the batch touched is written, changed or not. The local store is
                # written at once, its changelog record only once the producer is acked: after a
                # crash in between, the redelivered events change nothing locally, and writing
                # only changes would leave the changelog (what a takeover restores) without them.
                touched[key] = event
                if resolution.contacts is contacts and message.event_id in contacts.applied:
                    metrics.duplicates.labels("resolve").inc()
                for emitted in resolution.emitted:
                    topics.person_events.send_soon(key=emitted.person_id.encode(), value=encode(emitted))
                metrics.events_folded.labels("resolve", message.type).inc()
            for key, event in touched.items():
                store(stream, tables.contacts, key, storable(states[key].to_json()), event)
            stream._set_current_event(None)
            observe(metrics, "resolve", batch, started)
            yield len(batch)
            await take_turns()

    @app.agent(topics.person_events, name="project")
    async def project_agent(stream: faust.StreamT[bytes]) -> AsyncIterator[int]:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
            started = time.perf_counter()
            loaded: dict[bytes, PersonOptOuts] = {}  # as stored before this batch
            states: dict[bytes, PersonOptOuts] = {}
            last: dict[bytes, faust.EventT] = {}
            republish: set[bytes] = set()
            for event in batch:
                try:
                    person_event = decode_person_event(event.value)
                except DecodeError as exc:
                    skip(event, exc)
                    continue
                key = person_event.person_id.encode()
                if rekeyed(topics.person_events, event, key, encode(person_event)):
                    continue
                if key not in states:
                    state = stored(load(stream, tables.opt_outs, key, event))
                    loaded[key] = states[key] = PersonOptOuts.from_json(person_event.person_id, state)
                state = states[key]
                states[key] = projected = project(state, person_event)
                if projected is state:
                    metrics.duplicates.labels("project").inc()
                    # A duplicate re-sends the current list: the send after a crash may be the one lost.
                    republish.add(key)
                last[key] = event
                metrics.events_folded.labels("project", person_event.type).inc()
            for key, event in last.items():
                state, before = states[key], loaded[key]
                # A redelivery rewrites what is stored, as it re-sends the list: the changelog may
                # be the write a crash lost (the local store is written first).
                if state is not before or key in republish:
                    store(stream, tables.opt_outs, key, storable(state.to_json()), event)
                # The whole list, not only its entries: an opt-out recorded and cleared within
                # one batch leaves the entries as they were but changes the list's history.
                if key in republish or state.as_list() != before.as_list():
                    topics.opt_outs.send_soon(key=key, value=encode(state.as_list()))
                    metrics.list_size.observe(len(state.entries))
            stream._set_current_event(None)
            observe(metrics, "project", batch, started)
            yield len(batch)
            await take_turns()

    count_fold_errors(resolve_agent, "resolve", metrics)
    count_fold_errors(project_agent, "project", metrics)


def count_fold_errors(agent: Any, stage: str, metrics: Metrics) -> None:
    """Count every exception the agent's body raises (Faust then restarts the agent): the counter is
    what an alert sees. `@app.agent` passes the app's own error handler and takes no other, so the
    count wraps it; the app's handler (a commit of what was acked) still runs."""
    metrics.fold_errors.labels(stage).inc(0)  # a series from the start: an alert sees 0
    app_on_error = agent._on_error

    async def on_error(failed: faust.types.AgentT, exc: BaseException) -> None:
        metrics.fold_errors.labels(stage).inc()
        if app_on_error is not None:
            await app_on_error(failed, exc)

    agent._on_error = on_error


async def take_turns() -> None:
    """Let the other tasks run between two batches: with a backlog, the next batch is there at once,
    and an agent that never paused kept the loop from the other agent and from requests."""
    await asyncio.sleep(0)


def observe(metrics: Metrics, stage: str, batch: Sequence[T], started: float) -> None:
    metrics.fold_seconds.labels(stage).observe(time.perf_counter() - started)
    metrics.batch_events.labels(stage).observe(len(batch))
