"""Published lists carry their version (docs/contract.md, decision 12), and `optouts verify` reads
`sms-opt-outs` the way the contract tells consumers to: the newest version per person, not the last
record in the log (a worker that woke from a pause past its session timeout may publish an older
list after a newer one)."""

from __future__ import annotations

import pytest

from streams.engine.log_reader import read, snapshot
from streams.engine.topics import OPT_OUTS
from streams.engine.versions import headers, version_of
from streams.pipeline.placement import expected_partition
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import produce, run
from tests.integration.processes import ServiceProcess, run_optouts
from tests.integration.test_pipeline import SENDER, eventually, publish_events, senders

pytestmark = pytest.mark.integration


def published_versions(brokers: str, person: str) -> list[tuple[int, int] | None]:
    async def versions() -> list[tuple[int, int] | None]:
        servers = brokers.split(",")
        found = []
        async for records in read(servers, await snapshot(servers, [OPT_OUTS])):
            found += [version_of(record.headers) for record in records if record.key == person.encode()]
        return found

    return run(versions)


def test_a_late_older_list_is_not_what_verify_keeps_but_one_without_a_version_is(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("versioned"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})
    versions = published_versions(kafka_brokers, person)
    assert versions and all(version is not None and version[0] == 0 for version in versions)

    # A zombie's late list: empty, folded up to before the STOP. Readers keep the newer one.
    partition = expected_partition(person.encode(), 4)
    empty = f'{{"person_id": "{person}", "opt_outs": [], "updated_at": null}}'.encode()
    produce(kafka_brokers, OPT_OUTS, [(person.encode(), empty)], partition, headers=headers((0, -1)))
    agreed = run_optouts(worker.env, "verify", "--wait", "5", person)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr

    # A list without a version (as before versions were) is taken in log order: verify names it.
    produce(kafka_brokers, OPT_OUTS, [(person.encode(), empty)], partition)
    differed = run_optouts(worker.env, "verify", "--wait", "5", person)
    assert differed.returncode == 1, differed.stdout + differed.stderr
    assert f"person {person}: {OPT_OUTS} does not list {SENDER}" in differed.stdout
