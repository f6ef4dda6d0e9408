"""The two agents: `resolve` (stage 1, per phone) and `project` (stage 2, per person).

Each decodes a value once, calls the pure fold, writes the table only when the state changed, and
sends what the fold emitted. Sends made while handling an event are attached to its offset, so the
offset is committed only after they are acknowledged: at-least-once, made exact by the idempotent
folds (a redelivered event id changes nothing and re-sends what it emitted before).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import faust

from projections.contacts import Contacts, resolve
from projections.opt_outs import PersonOptOuts, project
from schemas.codec import decode_messaging_event, decode_person_event, encode
from schemas.errors import DecodeError
from streams.metrics import Metrics
from streams.settings import Settings
from streams.tables import Tables
from streams.topics import Topics

log = logging.getLogger(__name__)


def register_agents(
    app: faust.App, settings: Settings, topics: Topics, tables: Tables, metrics: Metrics
) -> None:
    keywords = settings.keywords
    region = settings.default_region

    def skip(event: faust.EventT, exc: DecodeError) -> None:
        # The one policy for bad input: log where it is and why, count it, go on with the next.
        message = event.message
        log.warning("skipped %s[%s]@%s: %s", message.topic, message.partition, message.offset, exc)
        metrics.decode_failures.labels(message.topic).inc()

    async def rekey(topic: faust.TopicT, event: faust.EventT, key: str, value: bytes) -> bool:
        # Tables are partitioned by the Kafka key: an event keyed by anything but its normalised
        # entity would be folded on the wrong partition, so it is sent again under the right key.
        if event.key == key.encode():
            return False
        await topic.send(key=key.encode(), value=value)
        metrics.rekeyed.labels(event.message.topic).inc()
        return True

    @app.agent(topics.messaging_events, name="resolve")
    async def resolve_agent(stream: faust.StreamT[bytes]) -> AsyncIterator[Any]:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                message = decode_messaging_event(event.value, region=region)
            except DecodeError as exc:
                skip(event, exc)
                continue
            if await rekey(topics.messaging_events, event, message.phone, encode(message)):
                continue
            phone = message.phone.encode()
            contacts = Contacts.from_json(tables.contacts.get(phone))
            resolution = resolve(contacts, message, keywords)
            if resolution.contacts is not contacts:
                tables.contacts[phone] = resolution.contacts.to_json()
            elif message.event_id in contacts.applied:
                metrics.duplicates.labels("resolve").inc()
            for emitted in resolution.emitted:
                await topics.person_events.send(key=emitted.person_id.encode(), value=encode(emitted))
            metrics.events_folded.labels("resolve", message.type).inc()
            metrics.fold_seconds.labels("resolve").observe(time.perf_counter() - started)
            yield message.event_id

    @app.agent(topics.person_events, name="project")
    async def project_agent(stream: faust.StreamT[bytes]) -> AsyncIterator[Any]:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                person_event = decode_person_event(event.value)
            except DecodeError as exc:
                skip(event, exc)
                continue
            person_id = person_event.person_id
            if await rekey(topics.person_events, event, person_id, encode(person_event)):
                continue
            key = person_id.encode()
            state = PersonOptOuts.from_json(person_id, tables.opt_outs.get(key))
            projected = project(state, person_event)
            if projected is not state:
                tables.opt_outs[key] = projected.to_json()
            else:
                metrics.duplicates.labels("project").inc()
            # A duplicate re-sends the current list: the send after a crash may be the one lost.
            if projected is state or projected.entries != state.entries:
                await topics.opt_outs.send(key=key, value=encode(projected.as_list()))
                metrics.list_size.observe(len(projected.entries))
            metrics.events_folded.labels("project", person_event.type).inc()
            metrics.fold_seconds.labels("project").observe(time.perf_counter() - started)
            yield person_event.event_id
