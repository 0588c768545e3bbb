"""The Grafana dashboard and the Prometheus alert rules in deploy/ reference only series that a
server which has served calls exposes at /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openai
import pytest
import yaml

from conftest import App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "stockade.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SAY_HI = [{"role": "user", "content": "Say hi"}]
# The series a family of each type exposes, by the suffix added to the family's name.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
NAME = re.compile(r"\bstockade_[a-zA-Z0-9_]+")


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name in /metrics after chat, streamed, embedding and throttled calls."""
    deployments = (("gpt-4o", CHAT_MODEL, 1), ("embed", EMBEDDING_MODEL, 10))
    with in_process(tmp_path_factory.mktemp("served"), deployments) as app:
        served(app)
        text = app.http().get("/metrics").text
    return series(text)


def served(app: App) -> None:
    sdk = app.azure()
    list(sdk.chat.completions.create(model="gpt-4o", messages=SAY_HI, max_tokens=3, stream=True))
    sdk.embeddings.create(model="embed", input="hello")
    with pytest.raises(openai.RateLimitError):  # capacity 1: one call per window
        sdk.chat.completions.create(model="gpt-4o", messages=SAY_HI, max_tokens=3)


def series(exposition: str) -> set[str]:
    """The names a query may use: each family's, with the suffixes of its type."""
    names = set()
    for found in re.finditer(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        family, kind = found.groups()
        if kind == "counter":  # the text format names a counter's family with its _total
            family = family.removesuffix("_total")
        names.update(family + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries + variables


def rule_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def referenced(expressions: list[str]) -> set[str]:
    """The metric names in PromQL expressions: identifiers that start with stockade_ (label
    names that do too, such as stockade_rate_limiter's own, are also its metric's name)."""
    return {name for expression in expressions for name in NAME.findall(expression)}


def test_the_served_exposition_names_counters_with_total_and_histograms_with_buckets(exposed: set[str]) -> None:
    assert "stockade_requests_total" in exposed and "stockade_requests" not in exposed
    assert "stockade_request_duration_seconds_bucket" in exposed


def test_the_dashboard_references_only_exposed_metrics(exposed: set[str]) -> None:
    names = referenced(dashboard_expressions())
    assert len(names) >= 10
    assert sorted(names - exposed) == []


def test_the_dashboard_shows_every_series_the_issue_asks_for() -> None:
    names = referenced(dashboard_expressions())
    for wanted in ("stockade_requests_total", "stockade_throttled_requests_total", "stockade_tokens_total",
                   "stockade_request_duration_seconds_bucket", "stockade_time_to_first_token_seconds_bucket",
                   "stockade_model_queue_depth", "stockade_batch_lines_total"):
        assert wanted in names


def test_the_alert_rules_reference_only_exposed_metrics(exposed: set[str]) -> None:
    names = referenced(rule_expressions())
    assert {"stockade_requests_total", "stockade_throttled_requests_total"} <= names
    assert sorted(names - exposed) == []


def test_the_alert_rules_include_the_guides_rate_limit_and_total_error_alerts() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"StockadeRateLimitErrors", "StockadeTotalErrors"} <= names


def test_exposed_series_are_found_by_type_not_by_a_bare_prefix() -> None:
    # The check itself: a made-up name, or a counter without its _total, is not "exposed".
    text = "# TYPE stockade_x_total counter\nstockade_x_total 1.0\n# TYPE stockade_h histogram\n"
    assert series(text) == {"stockade_x_total", "stockade_h_bucket", "stockade_h_sum", "stockade_h_count"}

