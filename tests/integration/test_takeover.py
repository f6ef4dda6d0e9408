"""Two workers of one app id share the partitions; one is killed with SIGKILL. The survivor takes every
partition over, recovers the killed worker's tables from their changelogs, and serves every person's
list within a stated bound, keywords after the kill included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from tests.factories import received, sent, unique, unique_phone
from tests.integration.processes import ServiceProcess, http_json, new_worker
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, eventually, publish_events
from tests.integration.test_scale_out import owners

pytestmark = pytest.mark.integration

PARTITIONS = 4
# After a SIGKILL the broker drops the dead member only when its session times out (6 s in tests),
# the survivor's rejoin then waits out the rebalance timeout (6 s: Tansu holds a join that long),
# and the survivor restores the killed worker's partitions from their changelogs. That is 15 to 25 s
# here; 60 s leaves room for a loaded two-core machine without hiding a takeover that hangs (Faust
# waits for no timeout longer than 10 s on this path, so a stuck takeover blows through it).
TAKEOVER_BOUND = 60.0


def partition(key: str) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def listed(worker: ServiceProcess, person: str) -> set[str] | None:
    """The senders on the person's list, or None while the worker cannot answer (503 during the
    rebalance, or a request forwarded to the dead worker)."""
    status, body = http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs", timeout=5)
    return {entry["sender"] for entry in body["opt_outs"]} if status == 200 else None


def persons_on_every_partition(each: int) -> list[str]:
    """Person ids, `each` of them keyed to every partition of the opt-outs table."""
    found: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    while any(len(persons) < each for persons in found.values()):
        person = unique("held")
        if len(found[partition(person)]) < each:
            found[partition(person)].append(person)
    return [person for persons in found.values() for person in persons]


def phones_on(partitions: set[int], count: int) -> list[str]:
    phones: list[str] = []
    while len(phones) < count:
        phone = unique_phone()
        if partition(phone) in partitions:
            phones.append(phone)
    return phones


def test_the_survivor_takes_every_partition_over_and_serves_every_list(
    kafka_brokers: str, tmp_path: Path, output_dir: Path
) -> None:
    app_id = unique("optouts-takeover")
    survivor = new_worker(kafka_brokers, tmp_path / "a", app_id, output_dir / f"{app_id}-a.log")
    victim = new_worker(kafka_brokers, tmp_path / "b", app_id, output_dir / f"{app_id}-b.log")
    try:
        survivor.start()
        victim.start()
        eventually(
            lambda: len(set(owners(survivor).values())) == 2 and owners(survivor) == owners(victim),
            timeout=60,
        )
        victims_partitions = {p for p, port in owners(survivor).items() if port == victim.port}

        # Opt-outs folded before the kill, for persons on every partition (the victim's among them).
        opted = {person: unique_phone() for person in persons_on_every_partition(2)}
        # Phones whose stage 1 state the victim holds: sent to before the kill, STOP after it. The
        # survivor applies that STOP only if it recovered who received SMS at the phone.
        late = {unique("late"): phone for phone in phones_on(victims_partitions, 2)}
        publish_events(
            kafka_brokers,
            *[event for person, phone in opted.items() for event in stop_after_send(person, phone, SENDER)],
            *[sent(person, phone, SENDER) for person, phone in late.items()],
            # A STOP to another sender after the send shows the send was folded before the kill.
            *[
                event
                for person, phone in late.items()
                for event in stop_after_send(person, phone, OTHER_SENDER)
            ],
        )
        before = {**{person: {SENDER} for person in opted}, **{person: {OTHER_SENDER} for person in late}}
        eventually(
            lambda: all(
                listed(w, person) == want for person, want in before.items() for w in (victim, survivor)
            ),
            timeout=60,
        )

        victim.kill()
        killed_at = time.monotonic()
        publish_events(kafka_brokers, *[received(phone, SENDER, "STOP") for phone in late.values()])

        after = {
            **{person: {SENDER} for person in opted},
            **{person: {SENDER, OTHER_SENDER} for person in late},
        }

        def taken_over() -> bool:
            every_partition = set(owners(survivor).values()) == {survivor.port}
            return every_partition and all(listed(survivor, person) == want for person, want in after.items())

        eventually(taken_over, timeout=TAKEOVER_BOUND)
        took = time.monotonic() - killed_at
        print(f"the survivor served every list {took:.1f} s after the kill")
        assert took <= TAKEOVER_BOUND
    finally:
        victim.stop()
        survivor.stop()


def stop_after_send(person: str, phone: str, sender: str) -> list[dict[str, object]]:
    return [sent(person, phone, sender), received(phone, sender, "STOP")]
