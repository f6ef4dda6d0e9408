"""The batch path held against the pure folds. A generated log is placed on partitions as the contract
places it, cut into fetched batches at random boundaries and folded by the stage rules
(streams.pipeline.stages) over in-memory units of work, each partition's store carried from batch to
batch, as the agents run them; stage 1's sends are stage 2's input. Crashes land after random batches:
the store keeps what it folded, the in-flight batch's changelog records and sends may be lost, and the
input is folded again from an earlier commit in new batches. Whatever the cuts and the crashes, every
store, changelog, person event and list is what the pure folds make of the same input without a crash
(docs/rules.md#exactly-once-on-at-least-once-delivery)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord
from hypothesis import event as reached
from hypothesis import given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from projections.contacts import Contacts, resolve, resolve_all
from projections.keywords import DEFAULT_KEYWORDS
from projections.opt_outs import PersonOptOuts, project_log
from schemas.codec import encode
from schemas.events import AnyPersonEvent, MessageReceived, MessagingEvent, OptOutOverridden
from streams.engine.decoded_states import DecodedStates
from streams.engine.tables import stored
from streams.engine.topics import MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from streams.engine.unit_of_work import InMemoryBatch
from streams.pipeline.person_history import chunk_key, read_history
from streams.pipeline.placement import expected_partition
from streams.pipeline.stages import project_records, resolve_records
from tests.unit.conftest import T0
from tests.unit.test_properties import PERSONS, PHONES, PROPERTIES, Log, logs

# Four partitions, as the tests' broker has: two of the generated phones share partition 0, and the
# persons pair up on partitions 1 and 2, so batches interleave several entities' streams.
PARTITIONS = 4
MAX_AHEAD = timedelta(minutes=5)
# Every record logged a day after the stories start: no event is refused as dated ahead of its record.
LOGGED_AT = int((T0 + timedelta(days=1)).timestamp() * 1000)
LARGEST_BATCH = 8  # small enough that a 40-event log is cut many times


def placed(key: bytes) -> int:
    return expected_partition(key, PARTITIONS)


def record(topic: str, partition: int, offset: int, key: bytes, value: bytes) -> Any:
    return ConsumerRecord(topic, partition, offset, LOGGED_AT, 0, key, value, None, len(key), len(value), ())


async def nowhere(record: Any, key: bytes, event: BaseModel) -> bool:
    return False  # every record is on its key's partition, by construction


@dataclass
class Partition:
    """One input partition and what its stage keeps for it."""

    number: int
    records: list[Any] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)  # the event each record carries
    store: dict[bytes, bytes] = field(default_factory=dict)  # the local RocksDB
    changelog: dict[bytes, bytes] = field(default_factory=dict)  # compacted: what a restore reads
    marker: int = -1  # the store's `folded_up_to`: the last offset folded, never moved back
    position: int = 0  # the next offset to fetch
    commits: list[int] = field(default_factory=lambda: [0])  # batch ends since the last restart

    def append(self, topic: str, key: bytes, value: bytes, source: Any = None) -> None:
        self.records.append(record(topic, self.number, len(self.records), key, value))
        self.sources.append(source)


@dataclass
class Batch:
    """A batch as it was folded: its partition, and the events it folded for the first time."""

    partition: int
    first_time: list[Any]


Fold = Callable[[InMemoryBatch, Sequence[Any]], Awaitable[Any]]
Send = Callable[[str, bytes | None, bytes], None]


async def fold_stage(
    stage: str,
    partitions: list[Partition],
    fold: Fold,
    send: Send,
    data: st.DataObject,
    overrides: Sequence[OptOutOverridden] = (),
) -> list[Batch | OptOutOverridden]:
    """Fold every partition to its end in batches, interleaved with the operators' `overrides` (each
    sent as it comes): what was folded and appended, in the order it was."""
    done: list[Batch | OptOutOverridden] = []
    pending = list(overrides)
    crashes = data.draw(st.integers(0, 3), label=f"{stage}: crashes at most")
    restarting: Partition | None = None
    while True:
        if restarting is not None and restarting.position <= restarting.marker:
            # A restarted partition's redelivery comes first: what another partition or an operator
            # appends meanwhile would otherwise land before the lost sends it makes good, and the
            # person log's order would differ from the crash-free run this is compared with.
            partition = restarting
        else:
            ready = [p.number for p in partitions if p.position < len(p.records)]
            choices: list[int | str] = [*ready, *(["override"] if pending else [])]
            if not choices:
                return done
            pick = data.draw(st.sampled_from(choices), label=f"{stage}: next")
            if pick == "override":
                override = pending.pop(0)
                send(PERSON_EVENTS, override.person_id.encode(), encode(override))
                done.append(override)
                continue
            partition = partitions[int(pick)]
        left = len(partition.records) - partition.position
        size = data.draw(
            st.integers(1, min(left, LARGEST_BATCH)),
            label=f"{stage}: partition {partition.number}, batch from offset {partition.position}, size",
        )
        records = partition.records[partition.position : partition.position + size]
        # As streams.engine.unit_of_work.PartitionBatch decides: a batch reaching back to the marker
        # is a redelivery, however it is cut.
        unit = InMemoryBatch(stored=partition.store, redelivered=records[0].offset <= partition.marker)
        before = dict(partition.store)
        await fold(unit, records)
        await unit.done()
        assert not unit.dead_letters, f"{stage}: dead letters {unit.dead_letters}"
        # What the examples reach, for --hypothesis-show-statistics.
        if len({r.key for r in records}) > 1:
            reached(f"{stage}: a batch of several keys")
        if unit.redelivered:
            reached(f"{stage}: a redelivered batch")
            assert_rewrites_all_it_touched(stage, partition.number, records, before, unit)
        done.append(
            Batch(
                partition.number,
                [partition.sources[r.offset] for r in records if r.offset > partition.marker],
            )
        )
        partition.marker = max(partition.marker, records[-1].offset)
        partition.position += size

        crash = crashes > 0 and data.draw(st.integers(0, 3), label=f"{stage}: crash now (0)") == 0
        # A crash between the store's write and the changelog's acknowledgement (the window
        # streams.engine.table_writes describes), or before the producer flushed the batch's sends.
        lost_changes = crash and data.draw(st.booleans(), label=f"{stage}: its changelog records lost")
        lost_sends = crash and data.draw(st.booleans(), label=f"{stage}: its sends lost")
        if not lost_changes:
            partition.changelog.update(unit.puts)
        if lost_sends:
            reached(f"{stage}: a crash lost sends")
        else:
            for topic, key, value in unit.sent:
                send(topic, key, value)
        if not crash:
            partition.commits.append(partition.position)
            continue
        crashes -= 1
        # The input offset was committed after some batch done before this one: everything after
        # it comes again, to a store that already holds its fold.
        commit = data.draw(st.sampled_from(partition.commits), label=f"{stage}: committed up to")
        partition.position, partition.commits = commit, [commit]
        restarting = partition


def assert_rewrites_all_it_touched(
    stage: str, partition: int, records: Sequence[Any], before: dict[bytes, bytes], unit: InMemoryBatch
) -> None:
    """A redelivered batch writes every key of its records, and every history chunk the store holds
    for them, changed or not: the crash may have lost their changelog records."""
    touched = {r.key for r in records}
    chunks = {chunk for key in touched for chunk in chunks_held(key, before)}
    missing = sorted((touched | chunks) - unit.puts.keys())
    assert not missing, (
        f"{stage}: the redelivered batch of partition {partition} at offsets"
        f" {records[0].offset}-{records[-1].offset} did not write {missing}"
    )
    if stage == "stage 2":
        listed = {key for topic, key, _ in unit.sent if topic == OPT_OUTS}
        assert touched <= listed, (
            f"stage 2: the redelivered batch did not send the lists of {touched - listed}"
        )


def chunks_held(key: bytes, store: dict[bytes, bytes]) -> list[bytes]:
    """The keys of the history chunks `store` holds for a person (numbered from 0, none missing)."""
    held: list[bytes] = []
    while chunk_key(key, len(held)) in store:
        held.append(chunk_key(key, len(held)))
    return held


# One memo of decoded contacts for every batch and example, as an agent keeps one for all its
# batches: a state taken from it must be the state its stored bytes hold (small, so keys come and go).
DECODED = DecodedStates(lambda key, raw: Contacts.from_json(stored(raw)), size=16)


async def resolve_batch(unit: InMemoryBatch, records: Sequence[Any]) -> Any:
    return await resolve_records(
        unit,
        records,
        keywords=DEFAULT_KEYWORDS,
        region="US",
        max_ahead=MAX_AHEAD,
        forward=nowhere,
        decoded=DECODED,
    )


async def project_batch(unit: InMemoryBatch, records: Sequence[Any]) -> Any:
    return await project_records(unit, records, max_ahead=MAX_AHEAD, forward=nowhere)


def expected_person_log(done: Sequence[Batch | OptOutOverridden]) -> list[list[AnyPersonEvent]]:
    """The person events a crash-free run appends, per partition: each messaging event resolved by the
    pure fold on its phone's contacts when first folded, each override as it came."""
    contacts: dict[str, Contacts] = {}
    log: list[list[AnyPersonEvent]] = [[] for _ in range(PARTITIONS)]
    for step in done:
        events: list[Any] = []
        if isinstance(step, OptOutOverridden):
            events.append(step)
        else:
            for event in step.first_time:
                resolution = resolve(contacts.get(event.phone, Contacts()), event)
                contacts[event.phone] = resolution.contacts
                events.extend(resolution.emitted)
        for event in events:
            log[placed(event.person_id.encode())].append(event)
    return log


def first_of_each(values: Sequence[bytes], ids: Sequence[str]) -> list[bytes]:
    """`values` without the later copies of an event id; every copy is the first, to the byte."""
    first: dict[str, bytes] = {}
    for value, event_id in zip(values, ids, strict=True):
        assert first.setdefault(event_id, value) == value, f"{event_id} sent again otherwise"
    return list(first.values())


async def run(log: Log, data: st.DataObject) -> None:
    messaging = [event for event in log if not isinstance(event, OptOutOverridden)]
    overrides = [event for event in log if isinstance(event, OptOutOverridden)]

    stage1 = [Partition(n) for n in range(PARTITIONS)]
    for event in messaging:
        key = event.phone.encode()
        stage1[placed(key)].append(MESSAGING_EVENTS, key, encode(event), event)
    stage2 = [Partition(n) for n in range(PARTITIONS)]
    published: dict[bytes, bytes] = {}

    def to_person_events(topic: str, key: bytes | None, value: bytes) -> None:
        assert topic == PERSON_EVENTS and key is not None
        stage2[placed(key)].append(PERSON_EVENTS, key, value)

    def to_opt_outs(topic: str, key: bytes | None, value: bytes) -> None:
        assert topic == OPT_OUTS and key is not None
        published[key] = value  # compacted: a key's last value is its list

    # Stage 1: each phone's contacts are the pure fold of its events; the person log holds what a
    # crash-free run appends, each event a redelivery sends again byte for byte as it was the first time.
    done = await fold_stage("stage 1", stage1, resolve_batch, to_person_events, data, overrides)
    by_phone, _ = resolve_all(messaging)
    for phone in PHONES:
        store = stage1[placed(phone.encode())].store
        assert Contacts.from_json(stored(store.get(phone.encode()))) == by_phone.get(phone, Contacts()), (
            f"the contacts of {phone}"
        )
    expected = expected_person_log(done)
    for partition, events in zip(stage2, expected, strict=True):
        ids = [source_id(r.value) for r in partition.records]
        assert first_of_each([r.value for r in partition.records], ids) == first_of_each(
            [encode(e) for e in events], [e.event_id for e in events]
        ), f"person events partition {partition.number}"
    assert_restored_as_stored(stage1)

    # Stage 2: each person's published list, stored state and history are the pure fold's of the
    # crash-free person log: the crashes' redeliveries changed no list.
    await fold_stage("stage 2", stage2, project_batch, to_opt_outs, data)
    people = project_log(event for events in expected for event in events)
    for person in PERSONS:
        key = person.encode()
        state = people.get(person, PersonOptOuts(person))
        store = stage2[placed(key)].store
        nothing_sent = encode(PersonOptOuts(person).as_list())  # no sms-opt-outs value: the empty list
        assert stored(published.get(key, nothing_sent)) == stored(encode(state.as_list())), (
            f"{person}'s list on {OPT_OUTS}"
        )
        kept = PersonOptOuts.from_json(person, stored(store.get(key)))
        assert kept.to_json() == state.to_json(), f"{person}'s stored state"
        history = read_history(person, kept.history_length, store.get)
        assert history == list(state.history), f"{person}'s history"
    assert_restored_as_stored(stage2)


def assert_restored_as_stored(partitions: Sequence[Partition]) -> None:
    """What a restore reads back from the changelogs is what the stores hold."""
    for partition in partitions:
        assert partition.changelog == partition.store, f"the changelog of partition {partition.number}"


def described(event: MessagingEvent | OptOutOverridden) -> str:
    said = f" {event.body!r} (OptOutType {event.opt_out_type})" if isinstance(event, MessageReceived) else ""
    person = getattr(event, "person_id", None) or "no person"
    where = f"{person} at {event.phone} from {event.sender}"
    return f"  {event.occurred_at:%H:%M} {event.type} {event.event_id}: {where}{said}"


def source_id(value: bytes) -> str:
    event_id: str = stored(value)["event_id"]
    return event_id


@settings(PROPERTIES, max_examples=200)  # crashes land in a quarter of the batches, at most three a stage
@given(logs(), st.data())
def test_folding_in_batches_through_crashes_gives_the_pure_folds_lists(log: Log, data: st.DataObject) -> None:
    # The failing log in a line an event (this pytest and Hypothesis print a test case's arguments blank).
    note("the log, in arrival order:\n" + "\n".join(map(described, log)))
    asyncio.run(run(log, data))
