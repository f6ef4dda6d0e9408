"""The Grafana dashboard (deploy/grafana/sms-optouts.json): every query parses as PromQL and reads
only metrics the worker exports, and it shows what the issue asked for; the operations guide lists
every metric. Labels are checked against a live worker's series in
tests/integration/test_prometheus.py."""

from __future__ import annotations

import json

from streams.pipeline.metrics import Metrics
from tests.promql import DASHBOARD, ROOT, dashboard_expressions

# Series Prometheus adds to every target itself.
PROMETHEUS_OWN = {"up"}
# The metric each subject of the dashboard is read from.
SUBJECTS = {
    "readiness": "optouts_ready",
    "lag": "optouts_consumer_lag",
    "fold rate per stage": "optouts_events_folded_total",
    "fold time (STOP-to-list)": "optouts_fold_seconds_bucket",
    "dead letters": "optouts_decode_failures_total",
    "webhook outcomes": "optouts_twilio_webhooks_total",
}


def exported_names() -> set[str]:
    """The sample names of every metric a worker's registry declares, as /metrics shows them."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names


def test_every_query_reads_only_metrics_the_worker_exports() -> None:
    exported = exported_names() | PROMETHEUS_OWN

    for expression in dashboard_expressions():
        for selector in expression.selectors():
            assert selector.name in exported, f"{expression.where}: {selector.name} is not exported"


def test_the_dashboard_shows_readiness_lag_folds_latency_dead_letters_and_webhooks() -> None:
    read = {selector.name for expression in dashboard_expressions() for selector in expression.selectors()}

    assert {subject: metric in read for subject, metric in SUBJECTS.items()} == dict.fromkeys(SUBJECTS, True)


def test_every_panel_has_its_own_id_and_reads_the_chosen_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]

    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])


def test_the_operations_guide_lists_every_metric() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    for family in Metrics().registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"`{name}" in guide, name
