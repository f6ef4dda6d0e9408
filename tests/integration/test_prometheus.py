"""Debian's Prometheus server, on a loopback port of its own, scraping a live worker with the shipped
alert rules (deploy/prometheus/alerts.yml, unchanged: the poison alert has no `for`, so only the
scrape and evaluation intervals are made short, 1 s): a poison record makes the poison alert fire,
seen through Prometheus' own API; and every series the rules and the dashboard read is there, with
the labels they expect, as Prometheus stored it."""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streams.engine.broker import free_port
from streams.engine.topics import MESSAGING_EVENTS
from tests.factories import blocked, received, sent, unique, unique_phone
from tests.integration.kafka import publish
from tests.integration.processes import ServiceProcess, http_json, new_worker, stop_process
from tests.integration.test_pipeline import SENDER, eventually
from tests.prometheus_tools import prometheus_binary
from tests.promql import RULES, Expression, dashboard_expressions, rule_expressions

pytestmark = pytest.mark.integration

JOB = "sms-optouts"  # the scrape job the rules and the dashboard select (deploy/prometheus/prometheus.yml)
TOKEN = "a-test-operator-token-prometheus-does-not-send"
POISON_ALERT = "OptOutsPoisonMessages"


@dataclass(frozen=True)
class Prometheus:
    url: str

    def api(self, path: str, **params: str) -> Any:
        status, body = http_json("GET", f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        assert status == 200 and body["status"] == "success", (status, body)
        return body["data"]

    def series(self, selector: str) -> list[dict[str, str]]:
        since = time.time() - 600
        series: list[dict[str, str]] = self.api("series", **{"match[]": selector, "start": f"{since:.3f}"})
        return series

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [alert for alert in self.api("alerts")["alerts"] if alert["labels"]["alertname"] == name]


def counted(worker: ServiceProcess) -> float:
    """Everything the worker has folded or kept aside so far, from its own /metrics."""
    status, text = http_json("GET", f"{worker.url}/metrics")
    assert status == 200
    names = ("optouts_events_folded_total", "optouts_duplicate_events_total", "optouts_decode_failures_total")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in names
    )


def caught_up(worker: ServiceProcess) -> bool:
    """No lag, and nothing folded for a second: what earlier tests left on the shared topics (their
    poison records too) is behind this worker before Prometheus looks at it."""
    status, ready = http_json("GET", f"{worker.url}/ready")
    if status != 200 or ready["max_lag"] != 0:
        return False
    before = counted(worker)
    time.sleep(1.0)
    return counted(worker) == before


@pytest.fixture(scope="module")
def scraped_worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-prometheus")
    process = new_worker(
        kafka_brokers,
        tmp_path_factory.mktemp("worker"),
        app_id,
        output_dir / f"{app_id}.log",
        # The API wants the token; /metrics, as a scrape sees it, does not.
        OPTOUTS_OPERATOR_TOKEN=TOKEN,
        OPTOUTS_LAG_INTERVAL="1",
    )
    process.start()
    try:
        eventually(lambda: caught_up(process), timeout=60)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def prometheus(
    scraped_worker: ServiceProcess, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[Prometheus]:
    binary = prometheus_binary("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{scraped_worker.port}"]}]}
                ],
            }
        )
    )
    port = free_port()
    with open(output_dir / f"prometheus-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")
        eventually(lambda: process.poll() is None and http_json("GET", f"{server.url}/-/ready")[0] == 200)
        # Scraped, and the rules loaded.
        eventually(lambda: server.api("query", query=f'up{{job="{JOB}"}} == 1')["result"])
        eventually(lambda: [rule for group in server.api("rules")["groups"] for rule in group["rules"]])
        yield server
    finally:
        stop_process(process)


def test_a_poison_record_makes_the_poison_alert_fire_in_prometheus(
    prometheus: Prometheus, kafka_brokers: str
) -> None:
    # The counter is scraped before the first failure (at 0 on a fresh worker): else increase()
    # would see no increase.
    eventually(lambda: prometheus.series(f'optouts_decode_failures_total{{topic="{MESSAGING_EVENTS}"}}'))
    assert not prometheus.alerts(POISON_ALERT)

    person, phone = unique("person"), unique_phone()
    poison = {**blocked(person, phone, SENDER), "error_code": "21610"}  # a string: refused
    published_at = time.time()
    publish(kafka_brokers, MESSAGING_EVENTS, [(phone, poison)])

    [alert] = eventually(lambda: prometheus.alerts(POISON_ALERT), timeout=30)
    assert alert["state"] in ("pending", "firing")
    assert alert["labels"]["topic"] == MESSAGING_EVENTS
    assert rfc3339_seconds(alert["activeAt"]) >= published_at - 1  # this record's, not an older one's
    assert f"optouts dead-letters list --topic {MESSAGING_EVENTS}" in alert["annotations"]["runbook"]
    eventually(lambda: prometheus.alerts(POISON_ALERT)[0]["state"] == "firing", timeout=10)


def test_every_series_the_alert_rules_read_is_scraped_with_the_labels_they_use(
    prometheus: Prometheus,
) -> None:
    for expression in rule_expressions():
        assert_scraped(prometheus, expression)


def test_every_series_the_dashboard_reads_is_scraped_with_the_labels_it_uses(
    prometheus: Prometheus, kafka_brokers: str
) -> None:
    # Folds in both stages (a send, then a STOP twice: the second is a duplicate), so that every
    # histogram and counter the dashboard reads has a sample.
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop = received(phone, SENDER, "STOP")  # after the send: it puts the sender on the list
    publish(kafka_brokers, MESSAGING_EVENTS, [(phone, send), (phone, stop), (phone, stop)])
    eventually(lambda: prometheus.series(f'optouts_fold_seconds_bucket{{job="{JOB}",stage="project"}}'))
    eventually(lambda: prometheus.series(f'optouts_duplicate_events_total{{job="{JOB}",stage="resolve"}}'))

    for expression in dashboard_expressions():
        assert_scraped(prometheus, expression)


def assert_scraped(prometheus: Prometheus, expression: Expression) -> None:
    for selector in expression.selectors():
        series = prometheus.series(selector.text)
        assert series, f"{expression.where}: Prometheus has no {selector.text}"
        assert any(selector.labels <= set(labels) for labels in series), (
            f"{expression.where}: no {selector.text} has the labels {sorted(selector.labels)}: {series}"
        )


def rfc3339_seconds(text: str) -> float:
    """Prometheus' timestamps have nanoseconds, which fromisoformat does not take."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{fraction or 0}")


def test_the_worker_serves_metrics_to_prometheus_without_the_operator_token(
    prometheus: Prometheus, scraped_worker: ServiceProcess
) -> None:
    status, _ = http_json("GET", f"{scraped_worker.url}/people/someone/sms-opt-outs")
    [target] = prometheus.api("targets")["activeTargets"]

    assert status == 401
    assert (target["health"], target["labels"]["job"], target["lastError"]) == ("up", JOB, "")
