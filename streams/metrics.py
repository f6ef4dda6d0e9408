"""Prometheus metrics of the worker, in a registry of their own (one per app, so tests can build many)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

# Prometheus' text format 0.0.4 (UTF-8); aiohttp takes the charset apart from the content type.
CONTENT_TYPE = "text/plain; version=0.0.4"

# The `*_created` series double the exposition and no alert uses them.
disable_created_metrics()


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
            "Values that could not be decoded and were skipped.",
            ["topic"],
            registry=r,
        )
        self.rekeyed = Counter(
            "optouts_rekeyed_events",
            "Events whose Kafka key was not the normalised entity key.",
            ["topic"],
            registry=r,
        )
        self.fold_seconds = Histogram(
            "optouts_fold_seconds",
            "Time to load, fold and store one event.",
            ["stage"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.list_size = Histogram(
            "optouts_list_size", "Senders on a person's list after it changed.",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50), registry=r,
        )  # fmt: skip

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
