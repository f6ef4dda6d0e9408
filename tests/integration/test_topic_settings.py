"""After a worker has started, the topics are as docs/contract.md says: the logs kept forever with a
delete policy, the latest-value topics compacted, the control topic in one partition, every other
topic in OPTOUTS_PARTITIONS. The expectations are written out here from the contract's table, not
taken from `streams.engine.topics`.

Only the configs the broker describes are compared (Tansu describes those a topic was created with;
Apache Kafka every config, defaults included), and a test that finds none of them fails: it would
prove nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.engine.broker import EmbeddedBroker, free_port
from tests.factories import unique
from tests.integration.processes import ServiceProcess, run_optouts, worker_env

pytestmark = pytest.mark.integration

KEPT_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
LOG = {**KEPT_FOREVER, "cleanup.policy": "delete"}
LATEST_VALUE = {**KEPT_FOREVER, "cleanup.policy": "compact"}
DEFAULT_PARTITIONS = 4  # OPTOUTS_PARTITIONS' default (docs/configuration.md)


def expected_topics(app_id: str, partitions: int) -> dict[str, tuple[dict[str, str], int]]:
    return {
        "sms-messaging-events": (LOG, partitions),
        "sms-person-events": (LOG, partitions),
        "sms-dead-letters": (LOG, partitions),
        "sms-opt-outs": (LATEST_VALUE, partitions),
        "sms-optouts-control": (LATEST_VALUE, 1),
        f"{app_id}-contacts-changelog": (LATEST_VALUE, partitions),
        f"{app_id}-opt-outs-changelog": (LATEST_VALUE, partitions),
    }


async def describe(servers: str, topics: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """Each topic's described configs and partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        responses: list[Any] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
        metadata: list[dict[str, Any]] = await admin.describe_topics(topics)
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for error_code, _message, _type, name, entries in response.resources:
            assert error_code == 0, f"DescribeConfigs of {name}: error {error_code}"
            configs[name] = {entry[0]: entry[1] for entry in entries}
    counts = {topic["topic"]: len(topic["partitions"]) for topic in metadata if topic["error_code"] == 0}
    return configs, counts


def assert_as_the_contract_says(kafka_brokers: str, expected: dict[str, tuple[dict[str, str], int]]) -> None:
    configs, counts = asyncio.run(describe(kafka_brokers, list(expected)))
    compared = 0
    for topic, (settings, partition_count) in expected.items():
        assert counts.get(topic) == partition_count, f"{topic}: {counts.get(topic)} partitions"
        described = configs.get(topic, {})
        for name, value in settings.items():
            if name in described:
                assert described[name] == value, f"{topic}: {name} is {described[name]}, not {value}"
                compared += 1
    assert compared, f"the broker described none of {sorted(LOG)}: nothing was compared"


def test_every_topic_has_the_contracts_cleanup_retention_and_partitions(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    partitions = int(worker.env.get("OPTOUTS_PARTITIONS", DEFAULT_PARTITIONS))
    assert_as_the_contract_says(kafka_brokers, expected_topics(worker.env["OPTOUTS_APP_ID"], partitions))


def test_create_topics_creates_what_is_missing_as_the_contract_says_then_nothing(
    tmp_path: Path, output_dir: Path
) -> None:
    # On a broker of its own: on the suite's, run before any worker, it would create the shared
    # topics in its 3 partitions, and every test after it would find 3 where the contract says 4.
    app_id = unique("optouts-create-topics")
    with EmbeddedBroker(log_path=output_dir / f"{app_id}-broker.log") as broker:
        env = worker_env(broker.address, tmp_path, app_id, free_port(), OPTOUTS_PARTITIONS="3")

        def create_topics() -> str:
            done = run_optouts(env, "create-topics")
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        first = create_topics()
        expected = expected_topics(app_id, 3)
        assert first.startswith("created: ") and all(name in first for name in expected), first
        assert create_topics() == "created: nothing, every topic exists"
        assert_as_the_contract_says(broker.address, expected)
