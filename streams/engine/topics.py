"""The topics of the contract, how they are created, and their Faust declarations."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.engine.batches import batched_topic
from streams.settings import Settings

MESSAGING_EVENTS = "sms-messaging-events"
PERSON_EVENTS = "sms-person-events"
OPT_OUTS = "sms-opt-outs"
DEAD_LETTERS = "sms-dead-letters"  # values that could not be folded, with where they were and why
CONTROL = "sms-optouts-control"  # per app id, the generation the workers run (streams.pipeline.generations)

CONTACTS_TABLE = "contacts"
OPT_OUTS_TABLE = "opt-outs"

# Explicit retention on every topic: some brokers (Tansu) describe only the configs a topic was
# created with, and the logs are the source of truth, so they are kept forever.
_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
_LOG = {**_FOREVER, "cleanup.policy": "delete"}
_LATEST_VALUE = {**_FOREVER, "cleanup.policy": "compact"}
# One key per app id, read whole at every worker start: one partition keeps it in one place.
_PARTITIONS = {CONTROL: 1}


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog."""
    return f"{settings.app_id}-{table}-changelog"


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the service needs, with the configs it is created with."""
    return {
        MESSAGING_EVENTS: _LOG,
        PERSON_EVENTS: _LOG,
        OPT_OUTS: _LATEST_VALUE,
        DEAD_LETTERS: _LOG,
        CONTROL: _LATEST_VALUE,
        changelog_topic(settings, CONTACTS_TABLE): _LATEST_VALUE,
        changelog_topic(settings, OPT_OUTS_TABLE): _LATEST_VALUE,
    }


async def create_topics(settings: Settings) -> list[str]:
    """Create the missing topics; return the names created (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.brokers, client_id=f"{settings.app_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                _PARTITIONS.get(name, settings.partitions),
                settings.replication_factor,
                topic_configs=configs,
            )
            for name, configs in topic_configs(settings).items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        await admin.close()


@dataclass(frozen=True)
class Topics:
    """The Faust handles of the agents' input topics (the webhooks send to the first). Values are raw
    bytes: our codec decodes them once. What the agents write goes out by topic name
    (streams.engine.sends)."""

    messaging_events: faust.TopicT
    person_events: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str, configs: dict[str, str]) -> faust.TopicT:
        # The agents' input topics come to them as fetched batches (streams.engine.batches).
        return batched_topic(
            app,
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            replicas=settings.replication_factor,
            config=configs,
        )

    return Topics(
        messaging_events=topic(MESSAGING_EVENTS, _LOG),
        person_events=topic(PERSON_EVENTS, _LOG),
    )
