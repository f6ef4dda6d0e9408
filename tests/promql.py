"""The PromQL in deploy/ (the alert rules, the Grafana dashboard) taken apart: which series each
expression selects, and which labels it needs those series to carry, so that tests can hold them
against what the worker exports (a renamed metric or label must fail a test, not empty a panel or
silence an alert)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "sms-optouts.json"

# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$instance": ".+"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
_ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")
_MATCH = {
    "Equal": lambda actual, value: actual == value,
    "NotEqual": lambda actual, value: actual != value,
    "Re": lambda actual, value: re.fullmatch(value, actual) is not None,
    "NotRe": lambda actual, value: re.fullmatch(value, actual) is None,
}


@dataclass(frozen=True)
class Selector:
    """One vector selector of an expression (`name{matchers}`, as Prometheus' series API takes it),
    with the labels the expression needs its series to carry."""

    text: str
    name: str
    labels: frozenset[str]
    matchers: tuple[tuple[str, str, str], ...] = ()  # (label, op name, value)

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        """Whether a sample of this name and labels is one of the series selected (a missing
        label matches as the empty string, as in Prometheus)."""
        return name == self.name and all(
            _MATCH[op](labels.get(label, ""), value) for label, op, value in self.matchers
        )


@dataclass(frozen=True)
class Expression:
    where: str  # which rule or panel, for a failure's message
    promql: str
    # Labels the result must carry: an alert's annotations name them, a variable lists their values.
    outputs: frozenset[str] = frozenset()

    def selectors(self) -> list[Selector]:
        return list(_selectors(promql_parser.parse(self.promql), frozenset(), self.outputs))

    def kept_labels(self) -> frozenset[str] | None:
        """The labels the result keeps when an aggregation decides them; None: its series' own."""
        return _kept(promql_parser.parse(self.promql))


def rule_expressions(path: Path = RULES) -> list[Expression]:
    """Every alert's expression, with the labels its annotations name."""
    found = []
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            text = " ".join(str(value) for value in rule.get("annotations", {}).values())
            outputs = frozenset(_ANNOTATION_LABEL.findall(text))
            found.append(Expression(f"alert {rule['alert']}", rule["expr"], outputs))
    return found


def dashboard_expressions(path: Path = DASHBOARD) -> list[Expression]:
    """Every query of the dashboard, its panels' and its variables', with Grafana's variables
    replaced as Grafana does before asking Prometheus."""
    dashboard = json.loads(path.read_text())
    found = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} query {target['refId']}"
            found.append(Expression(where, grafana_query(target["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        matched = _LABEL_VALUES.match(query.strip())
        assert matched, f"variable {variable['name']}: only label_values(selector, label) is understood"
        found.append(
            Expression(
                f"variable {variable['name']}",
                grafana_query(matched["selector"]),
                frozenset({matched["label"]}),
            )
        )
    return found


def grafana_query(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not know in {expr!r}"
    return expr


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _selectors(node: Any, needed: frozenset[str], outputs: frozenset[str]) -> Iterator[Selector]:
    """Depth first; `needed`: the labels the enclosing aggregations group by and the matchings join
    on; `outputs` reach the series only while no aggregation stands between them and the result."""
    if isinstance(node, promql_parser.VectorSelector):
        matchers = tuple(
            (matcher.name, str(matcher.op).removeprefix("MatchOp."), matcher.value)
            for matcher in node.matchers.matchers
        )
        named = frozenset(label for label, _, _ in matchers) - {"__name__"}
        yield Selector(str(node), node.name or "", needed | named | outputs, matchers)
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from _selectors(node.vector_selector, needed, outputs)
    elif isinstance(node, promql_parser.AggregateExpr):
        modifier = node.modifier
        grouped = (
            frozenset(modifier.labels)
            if modifier and modifier.type == promql_parser.AggModifierType.By
            else frozenset()
        )
        yield from _selectors(node.expr, needed | grouped, frozenset())
    elif isinstance(node, promql_parser.BinaryExpr):
        matching = node.modifier.matching if node.modifier else None
        joined = (
            frozenset(matching.labels)
            if matching and matching.type == promql_parser.LabelModifierType.Include
            else frozenset()
        )
        yield from _selectors(node.lhs, needed | joined, outputs)
        yield from _selectors(node.rhs, needed | joined, outputs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from _selectors(argument, needed, outputs)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        yield from _selectors(node.expr, needed, outputs)


def _kept(node: Any) -> frozenset[str] | None:
    if isinstance(node, promql_parser.AggregateExpr):
        modifier = node.modifier
        return (
            frozenset(modifier.labels)
            if modifier and modifier.type == promql_parser.AggModifierType.By
            else frozenset()
        )
    if isinstance(node, promql_parser.BinaryExpr):
        sides = [_kept(side) for side in (node.lhs, node.rhs) if not _scalar(side)]
        return sides[0] if sides else frozenset()
    if isinstance(node, promql_parser.Call):
        vectors = [argument for argument in node.args if not _scalar(argument)]
        return _kept(vectors[0]) if vectors else frozenset()
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return _kept(node.expr)
    return None


def _scalar(node: Any) -> bool:
    return isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral)
