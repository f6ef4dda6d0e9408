"""Prometheus metrics of the worker, in a registry of their own (one per app, so tests can build many)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from streams.engine.topics import MESSAGING_EVENTS, PERSON_EVENTS

# Prometheus' text format 0.0.4 (UTF-8); aiohttp takes the charset apart from the content type.
CONTENT_TYPE = "text/plain; version=0.0.4"

# The `*_created` series double the exposition and no alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_folded = Counter(
            "optouts_events_folded", "Events folded, by stage and event type.", ["stage", "type"], registry=r
        )
        self.duplicates = Counter(
            "optouts_duplicate_events",
            "Events whose id was already applied (no change).",
            ["stage"],
            registry=r,
        )
        self.decode_failures = Counter(
            "optouts_decode_failures",
            "Values that could not be decoded: skipped and kept in sms-dead-letters.",
            ["topic"],
            registry=r,
        )
        # A series from the start, at 0: a counter that is born at 1 with its first failure shows
        # no increase() to an alert, so a worker's first poison record would alert no one.
        for topic in (MESSAGING_EVENTS, PERSON_EVENTS):
            self.decode_failures.labels(topic).inc(0)
        self.rekeyed = Counter(
            "optouts_rekeyed_events",
            "Events whose Kafka key was not the normalised entity key: forwarded under it, not folded.",
            ["topic"],
            registry=r,
        )
        self.misplaced = Counter(
            "optouts_misplaced_records",
            "Records keyed right but on another partition than murmur2 of the key (a producer's"
            " partitioner other than Kafka's default): forwarded to their partition, not folded.",
            ["topic"],
            registry=r,
        )
        self.fold_seconds = Histogram(
            "optouts_fold_seconds",
            "Time to decode, fold, store and send one batch of events.",
            ["stage"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.batch_events = Histogram(
            "optouts_batch_events",
            "Events in one batch an agent folded.",
            ["stage"],
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.list_size = Histogram(
            "optouts_list_size", "Senders on a person's list after it changed.",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50), registry=r,
        )  # fmt: skip
        self.twilio_webhooks = Counter(
            "optouts_twilio_webhooks",
            "Twilio webhook requests, by endpoint and outcome (published, ignored, forbidden, invalid,"
            " too_large, unavailable, not_configured).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.twilio_status_callbacks = Counter(
            "optouts_twilio_status_callbacks",
            "Verified Twilio status callbacks, by MessageStatus and ErrorCode ('none' without one).",
            ["status", "error_code"],
            registry=r,
        )
        self.fold_errors = Counter(
            "optouts_fold_errors",
            "Agent crashes: an exception while folding a batch (the agent restarts and reads it again).",
            ["stage"],
            registry=r,
        )
        # A hint, not a correctness input: some brokers (Tansu) answer a short end offset.
        self.consumer_lag = Gauge(
            "optouts_consumer_lag",
            "Events of an assigned input partition not yet committed: the broker's end offset minus the"
            " group's committed offset (never below 0).",
            ["topic", "partition"],
            registry=r,
        )
        self.broker_reachable = Gauge(
            "optouts_broker_reachable",
            "1 when the last look at the brokers (every OPTOUTS_LAG_INTERVAL) got an answer, else 0.",
            registry=r,
        )
        self.ready = Gauge(
            "optouts_ready",
            "1 when the worker was ready (GET /ready's 200) at the last look at the brokers, every"
            " OPTOUTS_LAG_INTERVAL: tables recovered, no rebalance, brokers reachable, no lag past"
            " OPTOUTS_READY_MAX_LAG; else 0.",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
