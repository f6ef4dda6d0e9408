"""Two workers share the partitions: either answers for any person, and an override sent to either
is appended by the one that owns the person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from streams.engine.topics import OPT_OUTS_TABLE
from tests.factories import received, sent, unique, unique_phone
from tests.integration.processes import ServiceProcess, http_json, new_worker, operator_headers
from tests.integration.test_overrides import WHO, remove
from tests.integration.test_pipeline import SENDER, eventually, history, opt_outs, publish_events, senders

pytestmark = pytest.mark.integration


@contextmanager
def sharing_pair(
    kafka_brokers: str, dirs: tuple[Path, Path], app_id: str, output_dir: Path, **env: str
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two workers of `app_id`, each on its dir, once both are ready and agree that each owns some
    of the table's partitions; both stopped after."""
    first, second = (
        new_worker(kafka_brokers, data, app_id, output_dir / f"{app_id}-{n}.log", **env)
        for n, data in enumerate(dirs, 1)
    )
    try:
        first.start()
        second.start()
        eventually(
            lambda: len(set(owners(first).values())) == 2 and owners(first) == owners(second), timeout=60
        )
        yield first, second
    finally:
        second.stop()
        first.stop()


@pytest.fixture(scope="module")
def pair(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    dirs = (tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b"))
    with sharing_pair(kafka_brokers, dirs, unique("optouts-pair"), output_dir) as workers:
        yield workers


def owners(worker: ServiceProcess) -> dict[int, int]:
    """Partition of the opt-outs table -> the web port of the worker that owns it (Faust's /router/)."""
    status, hosts = http_json("GET", f"{worker.url}/router/", headers=operator_headers(worker))
    if status != 200 or http_json("GET", f"{worker.url}/ready")[0] != 200:
        return {}
    changelog = f"-{OPT_OUTS_TABLE}-changelog"
    return {
        partition: int(url.rsplit(":", 1)[1])
        for url, topics in hosts.items()
        for topic, partitions in topics.items()
        if topic.endswith(changelog)
        for partition in partitions
    }


PARTITIONS = 4  # OPTOUTS_PARTITIONS' default


def partition_of(person: str) -> int:
    return (murmur2(person.encode()) & 0x7FFFFFFF) % PARTITIONS


def owner_port(pair: tuple[ServiceProcess, ServiceProcess], person: str) -> int:
    return owners(pair[0])[partition_of(person)]


def opted_out_on(worker: ServiceProcess, brokers: str, partition: int) -> str:
    """A new person of `partition` (chosen, not drawn: random ones can all land on one worker),
    opted out of SENDER."""
    person = next(p for p in iter(lambda: unique("person"), None) if partition_of(p) == partition)
    phone = unique_phone()
    publish_events(brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})
    return person


def test_either_worker_answers_for_persons_owned_by_both(
    pair: tuple[ServiceProcess, ServiceProcess], kafka_brokers: str
) -> None:
    first, second = pair
    persons = [opted_out_on(first, kafka_brokers, partition) for partition in range(PARTITIONS) for _ in "ab"]
    assert {owner_port(pair, person) for person in persons} == {first.port, second.port}

    for person in persons:
        assert opt_outs(first, person) == opt_outs(second, person) != []
        assert history(first, person) == history(second, person)


def test_an_override_sent_to_the_worker_that_does_not_own_the_person_is_applied(
    pair: tuple[ServiceProcess, ServiceProcess], kafka_brokers: str
) -> None:
    first, second = pair
    seconds = [partition for partition, port in owners(first).items() if port == second.port]
    person = opted_out_on(first, kafka_brokers, seconds[0])

    status, event = remove(first, person, SENDER)  # first forwards it, body and all, to second

    assert (status, event["actor"], event["list_updated"]) == (200, WHO["actor"], True)
    assert senders(first, person) == senders(second, person) == set()
    page = http_json("GET", f"{first.url}/people/{person}")
    assert page[0] == 200 and "Removed by operator" in page[1]
