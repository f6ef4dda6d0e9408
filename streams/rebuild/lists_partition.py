"""Stage 2 of a rebuild, one person partition, in a local store holding what the workers' store holds
(each person's state and history chunks) and two indexes of its own:

1. every fact stage 1 derived for this partition's persons, read from the exchange until each phone
   partition's end marker is in (`FACT` + event id);
2. `sms-person-events` folded to its end now by the agents' own batch rule, each event's id noted
   (`LOGGED` + event id);
3. the derived facts the log lacks, judged in time order (projections.rebuild: unless a later fact
   about the same entry is in the log): a replay appends them to the person log (a verification
   folds them into its expected state); `LATEST` + entry keeps that entry's latest fact and override;
4. a replay folds the log to its end again (what it appended, whatever arrived meanwhile), then
   writes every state to the new generation's changelog, commits its consumer group's offset there,
   and publishes every person's list to `sms-opt-outs`.

Each step is resumed from the store's last commit; the person log is read to its end before any fact
is appended, so that a fact a killed run appended is in the log, noted, and never appended twice.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from aiokafka import TopicPartition
from pydantic import BaseModel

from projections.opt_outs import PersonOptOuts, entry_key, project
from projections.rebuild import decided, time_order
from schemas.codec import decode_person_event, encode
from schemas.events import AnyPersonEvent, OptOutOverridden, PersonEvent
from streams.engine.log_reader import Span, read, snapshot
from streams.engine.tables import storable, stored
from streams.engine.topics import OPT_OUTS, OPT_OUTS_TABLE, PERSON_EVENTS, changelog_topic
from streams.engine.versions import headers
from streams.pipeline.person_history import history_writes, is_history_key
from streams.pipeline.stages import project_records
from streams.progress import Progress
from streams.rebuild.context import CHECKPOINT_RECORDS, RebuildContext
from streams.rebuild.exchange import WaitingFor, end_of, follow
from streams.rebuild.group_offsets import commit_offsets
from streams.rebuild.local_store import LocalStore
from streams.rebuild.offline_unit import OfflineForward, OfflineUnit
from streams.rebuild.tally import Tally
from streams.settings import Settings

LOGGED = b"\x01"  # + event id -> the value of the person log's event (by id: redeliveries once)
FACT = b"\x02"  # + event id -> a fact stage 1 derived, as it would send it
CANDIDATE = b"\x03"  # + person, NUL, time, NUL, id -> a derived fact the log lacks, in append order
LATEST = b"\x04"  # + person, NUL, sender, NUL, phone -> [latest stage 1 fact, latest override] (times)


async def rebuild_lists(ctx: RebuildContext, partition: int) -> tuple[LocalStore, Tally]:
    """Rebuild person partition `partition`; its store (open: a verification compares it) and what
    it counted. The caller closes the store."""
    store = LocalStore(ctx.store_path("lists", partition))
    tally = Tally.from_json(store.meta("tally"))
    if store.meta("done"):
        return store, tally
    ends = await _collect_facts(ctx, store, partition)
    if ctx.before_person_log is not None:
        await ctx.before_person_log(ends)
    await fold_person_log(ctx, store, partition, tally)
    await _judge_new_facts(ctx, store, partition, tally)
    if ctx.target is None:
        store.set_meta("tally", tally.to_json())
        store.commit()
        return store, tally
    # The appended facts, and what arrived meanwhile: the new workers go on from there.
    end = await fold_person_log(ctx, store, partition, tally)
    await _publish(ctx, ctx.target, store, partition, end, tally)
    await commit_offsets(ctx.settings, ctx.target.app_id, {TopicPartition(PERSON_EVENTS, partition): end})
    store.set_meta("done", True)
    store.set_meta("tally", tally.to_json())
    store.commit()
    return store, tally


async def _collect_facts(ctx: RebuildContext, store: LocalStore, partition: int) -> dict[int, int]:
    """Read the exchange's partition until every phone partition's end marker is in: the phone
    partitions' ends."""
    state = store.meta("exchange", {"next": 0, "ends": {}})
    ends = {int(p): end for p, end in state["ends"].items()}
    if len(ends) >= ctx.partitions:
        return ends
    tp = TopicPartition(ctx.exchange, partition)
    async for records in follow(ctx.settings.brokers, tp, state["next"], WaitingFor(ctx.partitions, ends)):
        for record in records:
            marker = end_of(record)
            if marker is not None:
                ends[marker[0]] = marker[1]
            else:
                store.put(FACT + _event_id(record.value), record.value)
        store.set_meta("exchange", {"next": records[-1].offset + 1, "ends": ends})
        store.commit()
        if len(ends) >= ctx.partitions:
            break
    return ends


def _event_id(value: bytes) -> bytes:
    return decode_person_event(value).event_id.encode()


async def fold_person_log(ctx: RebuildContext, store: LocalStore, partition: int, tally: Tally) -> int:
    """Fold `sms-person-events[partition]` from where the store stopped to the log's end now; that end."""
    tp = TopicPartition(PERSON_EVENTS, partition)
    spans = await snapshot(ctx.settings.brokers, [PERSON_EVENTS], since={tp: store.meta("person_next", 0)})
    span: Span = spans[tp]
    progress = Progress(f"stage 2, {tp.topic}[{tp.partition}]", span.size)

    def logged(record: Any, event: BaseModel) -> None:
        logged_event = cast("AnyPersonEvent", event)
        store.put(LOGGED + logged_event.event_id.encode(), record.value)
        # The latest stage 1 fact and override about its entry: what decides a new fact.
        key = _latest_key(logged_event)
        times = json.loads(store.get(key) or b"[null, null]")
        slot = 1 if isinstance(logged_event, OptOutOverridden) else 0
        moment = logged_event.occurred_at.isoformat(timespec="microseconds")
        if times[slot] is None or moment > times[slot]:
            times[slot] = moment
            store.put(key, json.dumps(times).encode())

    async def nothing(topic: str, key: bytes | None, value: bytes) -> None:
        return None  # the lists are published once, when the partition is rebuilt

    unit = OfflineUnit(store, nothing, tally)
    forward = OfflineForward(ctx.partitions, tally, ctx.shipper, ctx.republish_from, placed=logged)
    since_commit = 0
    async for records in read(ctx.settings.brokers, {tp: span}):
        await project_records(unit, records, max_ahead=ctx.max_ahead, forward=forward)
        tally.person_events += len(records)
        store.set_meta("person_next", records[-1].offset + 1)
        progress.advance(len(records))
        since_commit += len(records)
        if since_commit >= CHECKPOINT_RECORDS:
            await ctx.shipper.drain()  # the records republished
            store.set_meta("tally", tally.to_json())
            store.commit()
            since_commit = 0
    await ctx.shipper.drain()
    store.set_meta("tally", tally.to_json())
    store.commit()
    progress.finish()
    return int(store.meta("person_next", span.end))


async def _judge_new_facts(ctx: RebuildContext, store: LocalStore, partition: int, tally: Tally) -> None:
    """The derived facts the log lacks, in time order per person: those the log does not decide are
    appended (a replay) or folded into the expected state (a verification)."""
    store.clear(CANDIDATE)
    for key, value in store.scan(FACT):
        if store.get(LOGGED + key[1:]) is None:
            fact = _fact(value)
            if ctx.wanted is None or ctx.wanted(fact.person_id):
                at, event_id = time_order(fact)
                store.put(
                    b"\x00".join([CANDIDATE + fact.person_id.encode(), at.encode(), event_id.encode()]), value
                )
                if store.pending >= CHECKPOINT_RECORDS:  # a first replay's are every fact: in batches
                    store.commit()
    store.commit()
    tally.superseded = 0
    person: str | None = None
    state = before = PersonOptOuts("-")
    for _, value in store.scan(CANDIDATE):
        fact = _fact(value)
        if fact.person_id != person:
            _keep(ctx, store, state, before)
            if store.pending >= CHECKPOINT_RECORDS:  # a verification's expected states, in batches
                store.commit()
            person = fact.person_id
            state = before = PersonOptOuts.from_json(person, stored(store.get(person.encode())))
        latest_fact, latest_override = (
            None if moment is None else datetime.fromisoformat(moment)
            for moment in json.loads(store.get(_latest_key(fact)) or b"[null, null]")
        )
        if decided(fact, latest_fact, latest_override):
            tally.superseded += 1
            continue
        state = project(state, cast("AnyPersonEvent", fact))
        if ctx.target is None:
            tally.pending += 1
        else:
            await ctx.shipper.send(PERSON_EVENTS, fact.person_id.encode(), value, partition)
            tally.appended += 1
    _keep(ctx, store, state, before)
    await ctx.shipper.drain()
    store.set_meta("tally", tally.to_json())
    store.commit()


def _latest_key(event: AnyPersonEvent | PersonEvent) -> bytes:
    sender, phone = entry_key(cast("AnyPersonEvent", event))
    return b"\x00".join([LATEST + event.person_id.encode(), sender.encode(), phone.encode()])


def _fact(value: bytes) -> PersonEvent:
    event: AnyPersonEvent = decode_person_event(value)
    assert isinstance(event, PersonEvent)  # stage 1 derives no overrides
    return event


def _keep(ctx: RebuildContext, store: LocalStore, state: PersonOptOuts, before: PersonOptOuts) -> None:
    """A verification's expected state with the facts the log lacks folded in (a replay folds them
    when it reads them back from the log)."""
    if ctx.target is not None or state is before:
        return
    key = state.person_id.encode()
    store.put(key, storable(state.to_json()))
    for chunk, changes in history_writes(state, store.get):
        store.put(chunk, changes)


async def _publish(
    ctx: RebuildContext, target: Settings, store: LocalStore, partition: int, end: int, tally: Tally
) -> None:
    """Every state to the new generation's changelog, as the agents write it (history chunks apart),
    and every person's list to `sms-opt-outs`, each of the version the new generation's workers
    start from (streams.engine.versions: later than any list of the generations before)."""
    changelog = changelog_topic(target, OPT_OUTS_TABLE)
    version = headers((ctx.generation, end - 1))
    tally.persons = tally.persons_listed = tally.entries = 0
    for key, value in store.entities():
        await ctx.shipper.send(changelog, key, value, partition, headers=version)
        if is_history_key(key):
            continue
        state = PersonOptOuts.from_json(key.decode(), stored(value))
        tally.persons += 1
        tally.persons_listed += bool(state.entries)
        tally.entries += len(state.entries)
        await ctx.shipper.send(OPT_OUTS, key, encode(state.as_list()), headers=version)
    await ctx.shipper.drain()
