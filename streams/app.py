"""The Faust app, built from the settings; topics, tables, agents and views live in their own modules."""

from __future__ import annotations

import faust

from streams.recovery import LogEndTableManager
from streams.settings import Settings


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{broker}" for broker in settings.brokers],
        store="rocksdb://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        # At-least-once with an idempotent fold: some brokers' transactions cannot be trusted.
        processing_guarantee="at_least_once",
        producer_acks=-1,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        # Recover tables to the changelogs' real end: brokers' high watermarks are not trusted.
        TableManager=LogEndTableManager,
        broker_session_timeout=settings.session_timeout,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
