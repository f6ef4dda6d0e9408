"""The Faust app, built from the settings; topics, tables, agents and views live in their own modules.

Decision record: docs/decisions/0006-at-least-once-with-idempotent-folds.md.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TransportT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams.engine.flow_control import KeptOnResume
from streams.engine.recovery import LogEndTableManager
from streams.engine.tables import VersionedTable
from streams.engine.transport import PromptTransport
from streams.settings import Settings


class OptOutsApp(faust.App):
    """Faust's app on the Kafka transport with a setting for the consumer's fetch wait, topics whose
    records its consumer hands over in fetched batches (streams.engine.batches), and flow control
    that keeps the queued records when a rebalance resumes the flow (streams.engine.flow_control)."""

    def __init__(self, *args: Any, fetch_max_wait: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait = fetch_max_wait
        self.batched_topics: set[str] = set()

    def _new_transport(self) -> TransportT:
        return PromptTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        # Queues emptied when a rebalance stops the flow, not when it resumes
        # (streams.engine.flow_control).
        return KeptOnResume(loop=self.loop)


def create_app(settings: Settings) -> faust.App:
    return OptOutsApp(
        settings.app_id,
        broker=[f"kafka://{broker}" for broker in settings.brokers],
        store="rocksdb://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        # At-least-once with an idempotent fold: some brokers' transactions cannot be trusted.
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # No linger: a STOP crosses the producer twice (its person event, then the list), and each
        # linger was added to its latency. A batch's sends still go out in a few requests: they are
        # all appended before the fold yields to the producer's sender (docs/performance.md).
        producer_linger=0.0,
        producer_max_batch_size=256 * 1024,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        # Every fetch hands over all it holds, partition by partition: a record limit per fetch
        # is filled from the first partitions that hold records (aiokafka's fetched_records), so a
        # backlog on the input topic starved the person events queued behind it. A partition's
        # batch is bounded in bytes instead, and so is the whole fetch (streams.engine.transport).
        broker_max_poll_records=None,
        consumer_max_fetch_size=settings.batch_bytes,
        # Recover tables to the changelogs' real end: brokers' high watermarks are not trusted.
        TableManager=LogEndTableManager,
        # Restores keep each key's newest value by version, not the log's last (a zombie's late write).
        Table=VersionedTable,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # The largest body any view reads (a Twilio webhook's 64 KiB); each view has its own limit too.
        web_application_options={"client_max_size": 64 * 1024},
        web_in_thread=False,
        # Faust's /table/... views would serve any table's contents to anyone who asks; its router,
        # graph and statistics views are debugging aids that answer 500s to unknown names
        # (/router/nope/). streams.web.routing serves the partition map at /router/ instead.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        fetch_max_wait=settings.fetch_max_wait,
    )
