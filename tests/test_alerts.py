"""deploy/alerts.yml: valid Prometheus rule groups whose expressions name exported metrics."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import interaction_recommender.metrics  # noqa: F401  (registers every metric)

RULES = Path(__file__).resolve().parents[1] / "deploy" / "alerts.yml"


def _exported() -> set[str]:
    names = set()
    for collector in REGISTRY.collect():
        for sample in collector.samples:
            names.add(sample.name)
    return names


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset"}


def _metric_names(expr: str) -> set[str]:
    """Identifiers that are not functions (followed by "("), keywords or label names (inside
    braces): the metrics an expression reads."""
    no_labels = re.sub(r"\{[^}]*\}|\[[^]]*\]", "", expr)
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", no_labels))
    return words - _PROMQL_WORDS


def test_every_alert_names_a_metric_the_service_exports() -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules
    exported = _exported()
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule)
        metrics = _metric_names(rule["expr"])
        assert metrics, rule["expr"]
        assert metrics <= exported, metrics - exported


def test_a_refused_model_has_an_alert() -> None:
    document = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in document["groups"] for rule in group["rules"]]
    assert any("model_artifacts_refused_total" in e for e in expressions)


def test_a_stale_model_has_an_alert() -> None:
    document = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in document["groups"] for rule in group["rules"]]
    assert any("recommender_model_age_seconds" in e for e in expressions)


def test_set_aside_outbox_rows_have_an_alert() -> None:
    document = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in document["groups"] for rule in group["rules"]]
    assert any("outbox_set_aside_rows" in e for e in expressions)
