"""The stages' per-batch rules over an in-memory unit of work: no broker, no Faust, no RocksDB."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from projections.keywords import DEFAULT_KEYWORDS
from schemas.errors import DecodeError
from streams.engine.topics import MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from streams.engine.unit_of_work import InMemoryBatch
from streams.pipeline.stages import DUPLICATE, project_records, resolve_records
from tests.factories import received, sent, unique, unique_phone

SENDER = "+14155550100"
MAX_AHEAD = timedelta(minutes=5)


def record(topic: str, key: str, value: dict[str, Any] | bytes, offset: int = 0) -> Any:
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    stamp = int(time.time() * 1000)  # logged now
    return ConsumerRecord(topic, 0, offset, stamp, 0, key.encode(), raw, None, len(key), len(raw), ())


async def nowhere(record: Any, key: bytes, event: BaseModel) -> bool:
    return False  # every record is where its entity's events are folded


def resolve(unit: InMemoryBatch, *records: Any, forward: Any = nowhere) -> Counter[str]:
    async def run() -> Counter[str]:
        folded = await resolve_records(
            unit,
            records,
            keywords=DEFAULT_KEYWORDS,
            region="US",
            max_ahead=MAX_AHEAD,
            forward=forward,
        )
        await unit.done()
        return folded

    return asyncio.run(run())


def project(unit: InMemoryBatch, *records: Any) -> Counter[str]:
    async def run() -> Counter[str]:
        folded = await project_records(unit, records, max_ahead=MAX_AHEAD, forward=nowhere)
        await unit.done()
        return folded

    return asyncio.run(run())


def sent_to(unit: InMemoryBatch, topic: str) -> list[dict[str, Any]]:
    return [json.loads(value) for to, _, value in unit.sent if to == topic]


def test_a_stop_after_a_send_emits_the_persons_opt_out_and_stores_the_phone() -> None:
    phone, person = unique_phone(), unique("person")
    unit = InMemoryBatch()

    folded = resolve(
        unit,
        record(MESSAGING_EVENTS, phone, sent(person, phone, SENDER), 0),
        record(MESSAGING_EVENTS, phone, received(phone, SENDER, "STOP"), 1),
    )

    [emitted] = sent_to(unit, PERSON_EVENTS)
    assert (emitted["type"], emitted["person_id"], emitted["sender"]) == ("opt_out.recorded", person, SENDER)
    assert folded == Counter({"message.sent": 1, "message.received": 1})
    assert phone.encode() in unit.stored and unit.finished


def test_a_record_that_cannot_be_read_is_a_dead_letter_and_its_neighbours_are_folded() -> None:
    phone, person = unique_phone(), unique("person")
    unit = InMemoryBatch()

    resolve(
        unit,
        record(MESSAGING_EVENTS, phone, b"not json", 0),
        record(MESSAGING_EVENTS, phone, sent(person, phone, SENDER), 1),
    )

    [(letter, error)] = unit.dead_letters
    assert letter.offset == 0 and isinstance(error, DecodeError)
    assert phone.encode() in unit.stored


def test_a_duplicate_is_counted_sends_again_what_it_emitted_and_writes_nothing() -> None:
    phone, person = unique_phone(), unique("person")
    stop = received(phone, SENDER, "STOP")
    first = InMemoryBatch()
    resolve(first, record(MESSAGING_EVENTS, phone, sent(person, phone, SENDER), 0))
    resolve(first, record(MESSAGING_EVENTS, phone, stop, 1))
    again = InMemoryBatch(stored=dict(first.stored))

    folded = resolve(again, record(MESSAGING_EVENTS, phone, stop, 1))

    assert folded[DUPLICATE] == 1
    assert sent_to(again, PERSON_EVENTS) == sent_to(first, PERSON_EVENTS)
    assert again.stored == first.stored
    assert not again.puts


def test_a_redelivered_batch_writes_every_key_it_touched() -> None:
    phone, person = unique_phone(), unique("person")
    event = sent(person, phone, SENDER)
    first = InMemoryBatch()
    resolve(first, record(MESSAGING_EVENTS, phone, event, 0))
    redelivered = InMemoryBatch(stored=dict(first.stored), redelivered=True)

    resolve(redelivered, record(MESSAGING_EVENTS, phone, event, 0))

    assert redelivered.puts == {phone.encode(): first.stored[phone.encode()]}


def test_a_record_forwarded_elsewhere_is_not_folded_here() -> None:
    phone, person = unique_phone(), unique("person")
    unit = InMemoryBatch()

    async def elsewhere(record: Any, key: bytes, event: BaseModel) -> bool:
        return True

    folded = resolve(unit, record(MESSAGING_EVENTS, phone, sent(person, phone, SENDER), 0), forward=elsewhere)

    assert folded == Counter() and unit.stored == {}


def opted_out(person: str) -> Any:
    """The person event a STOP after a send emits, as stage 2 reads it."""
    phone = unique_phone()
    unit = InMemoryBatch()
    resolve(
        unit,
        record(MESSAGING_EVENTS, phone, sent(person, phone, SENDER), 0),
        record(MESSAGING_EVENTS, phone, received(phone, SENDER, "STOP"), 1),
    )
    [(_, _, value)] = [each for each in unit.sent if each[0] == PERSON_EVENTS]
    return record(PERSON_EVENTS, person, value)


def test_an_opt_out_puts_the_list_and_sends_it() -> None:
    person = unique("person")
    unit = InMemoryBatch()

    folded = project(unit, opted_out(person))

    [listed] = sent_to(unit, OPT_OUTS)
    assert listed["person_id"] == person
    assert [entry["sender"] for entry in listed["opt_outs"]] == [SENDER]
    assert folded == Counter({"opt_out.recorded": 1})
    assert person.encode() in unit.stored


def test_a_duplicate_person_event_sends_nothing_unless_redelivered() -> None:
    person = unique("person")
    event = opted_out(person)
    first = InMemoryBatch()
    project(first, event)

    again = InMemoryBatch(stored=dict(first.stored))
    folded = project(again, event)
    redelivered = InMemoryBatch(stored=dict(first.stored), redelivered=True)
    project(redelivered, event)

    assert folded[DUPLICATE] == 1
    assert sent_to(again, OPT_OUTS) == []
    assert sent_to(redelivered, OPT_OUTS) == sent_to(first, OPT_OUTS)
