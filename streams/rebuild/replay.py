"""`optouts replay`: rebuild the contacts and every person's list from the logs, from offset 0, into the
store of a new generation, then switch the workers to it (`streams.pipeline.generations`). The running
generation answers until the switch.

1. Snapshot the real ends of both logs; fold `sms-messaging-events` up to it (stage 1, per phone).
2. Append to `sms-person-events` the facts the fold derives that the log lacks (a changed fold: a new
   custom keyword applies to the past), then fold the whole person log (stage 2, per person).
3. Write every state to the new generation's changelogs, exactly as Faust writes table values, on
   the partition of the state's events; commit the new consumer group's offsets where the folds
   stopped, so its workers go on from there and fold what arrived during the replay.
4. Publish every person's list to `sms-opt-outs`; switch.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from aiokafka import AIOKafkaProducer, TopicPartition

from projections.opt_outs import project_log
from projections.rebuild import MessagingFold, new_facts
from schemas.codec import encode
from schemas.errors import OptOutsError
from schemas.events import AnyPersonEvent
from streams.engine.log_reader import ends_of, snapshot
from streams.engine.tables import storable
from streams.engine.topics import (
    CONTACTS_TABLE,
    DEAD_LETTERS,
    MESSAGING_EVENTS,
    OPT_OUTS,
    OPT_OUTS_TABLE,
    PERSON_EVENTS,
    changelog_topic,
    create_topics,
)
from streams.pipeline.generations import Generation, built_generations, current_generation, switch_generation
from streams.pipeline.person_history import history_writes
from streams.progress import say
from streams.rebuild.group_offsets import commit_offsets, committed_offsets
from streams.rebuild.offline_fold import LogRead, fold_messaging_log, read_person_log
from streams.settings import Settings

# (topic, partition or None for the key's, key, value)
Record = tuple[str, int | None, bytes, bytes]


class ReplayError(OptOutsError):
    """A replay that could not start or finish; nothing was switched."""


@dataclass
class ReplaySummary:
    generation: int
    app_id: str
    messaging_events: int = 0
    person_events: int = 0
    appended: int = 0  # facts of the fold the person log lacked
    superseded: int = 0  # such facts already decided by a later fact in the log, not appended
    skipped: dict[str, int] = field(default_factory=dict)
    # Not folded where they are, as the workers forward them (streams.pipeline.forwarding): their copies are.
    miskeyed: int = 0  # keyed by another form of their entity
    misplaced: dict[str, int] = field(default_factory=dict)  # on another partition: likely cause -> how many
    republished: int = 0  # of those, the ones the running generation had not forwarded yet
    phones: int = 0
    persons: int = 0
    persons_listed: int = 0
    entries: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    switched: bool = False

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{count:,} {why}" for why, count in self.skipped.items()) or "none"
        misplaced = "; ".join(f"{count:,} {cause}" for cause, count in self.misplaced.items()) or "none"
        return [
            f"replayed into generation {self.generation} ({self.app_id}) in {self.seconds:.1f} s"
            f" ({self.events_per_s:,.0f} events/s)",
            f"  read           {self.messaging_events:,} messaging events,"
            f" {self.person_events:,} person events",
            f"  skipped        {skipped} (the workers keep them in {DEAD_LETTERS})",
            f"  forwarded      {self.miskeyed:,} mis-keyed, {sum(self.misplaced.values()):,} misplaced"
            f" ({misplaced}): their copies were folded; {self.republished:,} published again",
            f"  new facts      {self.appended:,} appended to {PERSON_EVENTS}, {self.superseded:,} already"
            " superseded by a later fact",
            f"  store          {self.phones:,} phones, {self.persons:,} persons"
            f" ({self.persons_listed:,} with opt-outs, {self.entries:,} entries)",
            "  switched       "
            + (
                "yes: the workers restart into it and answer from it once recovered"
                if self.switched
                else f"no: `optouts switch {self.generation}` makes the workers use it"
            ),
        ]


async def replay(settings: Settings, *, switch: bool = True) -> ReplaySummary:
    if not settings.brokers:
        raise ReplayError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    started = time.monotonic()
    await create_topics(settings)
    running = await current_generation(settings)
    target = await _new_generation(settings, running)
    summary = ReplaySummary(target.number, target.app_id)
    say(f"replay: {running} answers until the switch; building {target}")

    # Stage 1: the messaging log up to its end now. What arrives later is for the new workers.
    messaging_spans = await snapshot(settings.brokers, [MESSAGING_EVENTS])
    fold = MessagingFold(settings.keywords)
    messaging = await fold_messaging_log(
        settings,
        messaging_spans,
        fold,
        f"stage 1, {MESSAGING_EVENTS}",
        await committed_offsets(settings, running.app_id, messaging_spans),
    )

    # Stage 2: the person log, the new facts of the fold appended, and whatever arrived meanwhile.
    person_spans = await snapshot(settings.brokers, [PERSON_EVENTS])
    events: list[AnyPersonEvent] = []
    persons = await read_person_log(
        settings,
        person_spans,
        events,
        f"stage 2, {PERSON_EVENTS}",
        await committed_offsets(settings, running.app_id, person_spans),
    )
    facts = new_facts(fold.derived.values(), fold.positions, events)
    await send_all(settings, [(PERSON_EVENTS, None, e.person_id.encode(), encode(e)) for e in facts.append])
    tail_spans = await snapshot(settings.brokers, [PERSON_EVENTS], since=ends_of(person_spans))
    tail = await read_person_log(
        settings,
        tail_spans,
        events,
        f"stage 2, {PERSON_EVENTS} (new facts)",
        await committed_offsets(settings, running.app_id, tail_spans),
    )
    persons.partitions.update(tail.partitions)
    states = project_log(events)

    summary.republished = await _republish_forwards(settings, running, [messaging, persons, tail])
    changelogs = [
        (
            changelog_topic(target.settings(settings), CONTACTS_TABLE),
            messaging.partitions[phone],
            phone,
            contacts.to_json(),
        )
        for phone, contacts in fold.contacts.items()
    ] + [
        (
            changelog_topic(target.settings(settings), OPT_OUTS_TABLE),
            persons.partitions[person],
            person,
            state.to_json(),
        )
        for person, state in states.items()
    ]
    opt_outs_changelog = changelog_topic(target.settings(settings), OPT_OUTS_TABLE)
    histories = [
        (opt_outs_changelog, persons.partitions[person], chunk, changes)
        for person, state in states.items()
        for chunk, changes in history_writes(state, lambda key: None)
    ]
    say(f"replay: writing {len(fold.contacts):,} contacts and {len(states):,} lists to {target}")
    # As the agents write a table value (streams.engine.tables.storable) under the raw key, and a person's
    # history apart from it (streams.pipeline.person_history).
    await send_all(
        settings,
        [(topic, p, key.encode(), storable(value)) for topic, p, key, value in changelogs] + histories,
    )
    await commit_offsets(
        settings, target.app_id, {**ends_of(messaging_spans), **ends_of(person_spans), **ends_of(tail_spans)}
    )
    await send_all(settings, [(OPT_OUTS, None, p.encode(), encode(s.as_list())) for p, s in states.items()])

    summary.messaging_events = messaging.events
    summary.person_events = persons.events + tail.events
    summary.appended, summary.superseded = len(facts.append), len(facts.superseded)
    summary.skipped = dict(messaging.skipped + persons.skipped + tail.skipped)
    summary.miskeyed = messaging.miskeyed + persons.miskeyed + tail.miskeyed
    summary.misplaced = dict(messaging.misplaced + persons.misplaced + tail.misplaced)
    summary.phones, summary.persons = len(fold.contacts), len(states)
    summary.persons_listed = sum(1 for state in states.values() if state.entries)
    summary.entries = sum(len(state.entries) for state in states.values())
    if switch:
        await switch_generation(settings, target, by="optouts replay")
        summary.switched = True
    summary.seconds = time.monotonic() - started
    summary.events_per_s = (summary.messaging_events + summary.person_events) / max(summary.seconds, 1e-9)
    return summary


async def _new_generation(settings: Settings, running: Generation) -> Generation:
    """The next generation number after every one built, not only the running one: an abandoned
    replay's topics are never written into again."""
    target = Generation(settings.app_id, max(await built_generations(settings) | {running.number}) + 1)
    created = await create_topics(target.settings(settings))
    wanted = {changelog_topic(target.settings(settings), table) for table in (CONTACTS_TABLE, OPT_OUTS_TABLE)}
    if not wanted <= set(created):
        raise ReplayError(f"the topics of {target} exist already: is another replay running?")
    return target


async def _republish_forwards(settings: Settings, running: Generation, reads: Iterable[LogRead]) -> int:
    """Publish again, under the right key and so on the right partition (murmur2), each mis-keyed
    or misplaced event the running generation has not forwarded yet (it does it when it reaches the
    event, which is after the switch for some): the new generation starts after them. A copy made
    twice is folded once (same event id)."""
    forwards = [found for read in reads for found in read.forwards]
    if not forwards:
        return 0
    committed = await committed_offsets(
        settings, running.app_id, {TopicPartition(r.topic, r.partition) for r, _, _ in forwards}
    )
    copies: list[Record] = [
        (record.topic, None, key.encode(), value)
        for record, key, value in forwards
        if committed.get(TopicPartition(record.topic, record.partition), 0) <= record.offset
    ]
    await send_all(settings, copies)
    return len(copies)


async def send_all(settings: Settings, records: Sequence[Record]) -> None:
    """Send every record and wait until the brokers acknowledged all of them (acks=all): batched by
    the producer, no round trip per record."""
    if not records:
        return
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.brokers, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key, partition=partition)
            for topic, partition, key, value in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def print_summary(summary: ReplaySummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(summary)), flush=True)
    else:
        print("\n".join(summary.lines()), flush=True)
