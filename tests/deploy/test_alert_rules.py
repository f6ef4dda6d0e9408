"""The alert rules (deploy/prometheus/alerts.yml): valid for Prometheus, each shown to fire by
promtool's unit tests (alerts_test.yml), each with its runbook, and the same alerts the operations
guide names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings
from streams.worker import build_service
from tests.prometheus_tools import prometheus_binary
from tests.promql import ROOT, RULES, rule_expressions

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}
TARGET_LABELS = {"job", "instance"}  # Prometheus adds them to every series it scrapes


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_pass_promtools_check() -> None:
    checked = promtool("check", "rules", str(RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_shown_to_fire_by_a_unit_test() -> None:
    cases = [
        case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}

    assert {rule["alert"] for rule in alerts()} <= firing


def test_every_alert_has_a_severity_and_says_what_it_means_and_what_to_run() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, rule["alert"]


def test_the_labels_an_alert_names_are_kept_by_its_expression() -> None:
    # `{{ $labels.topic }}` of an aggregation that drops `topic` renders empty; labels of plain
    # selectors are checked against the live worker (tests/integration/test_prometheus.py).
    for expression in rule_expressions():
        kept = expression.kept_labels()
        if kept is not None:
            assert expression.outputs <= kept, f"{expression.where}: {expression.outputs - kept} are dropped"


def test_the_operations_guide_names_every_alert_and_no_other() -> None:
    named = set(re.findall(r"`(OptOuts[A-Za-z]+)`", OPERATIONS.read_text()))

    assert named == {rule["alert"] for rule in alerts()}


def test_every_counter_an_alert_reads_is_exported_at_zero_before_anything_happens(tmp_path: Path) -> None:
    # increase() and rate() see nothing of a series born at 1 with its first failure: a worker's
    # first poison record or refused webhook would alert no one (alerts_test.yml shows it).
    settings = Settings(kafka_brokers="127.0.0.1:9", data_dir=tmp_path, auth="off")
    exposition = build_service(settings).metrics.exposition().decode()
    samples = [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    ]

    counted = [
        (expression.where, selector)
        for expression in rule_expressions()
        for selector in expression.selectors()
        if selector.name.endswith("_total")
    ]
    assert counted
    for where, selector in counted:
        found = [(labels, value) for name, labels, value in samples if selector.matches(name, labels)]
        assert found, f"{where}: no {selector.text} on a fresh worker"
        assert all(value == 0 for _, value in found)
        assert all(selector.labels - TARGET_LABELS <= set(labels) for labels, _ in found), where
