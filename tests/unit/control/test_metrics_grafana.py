"""The Grafana dashboard shipped in ``grafana/fsmtrader.json`` shows what ``/metrics``
exports: every metric name in a panel's query is one Metrics really exposes (read from
its rendered text with prometheus_client's parser), and every exported metric has a
panel. Queries go through the dashboard's Prometheus datasource variable."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.exchange.ccxt_adapter.retry import RetryStats
from fsmtrader.exchange.timed import CallStats
from fsmtrader.store.sqlite import SqliteStore

DASHBOARD = Path(__file__).resolve().parents[3] / "grafana" / "fsmtrader.json"
SUFFIXES = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
NAME = re.compile(r"\bfsmtrader_[a-z0-9_]+")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """Family name -> the sample names it exposes (families without samples included)."""
    tmp = tmp_path_factory.mktemp("grafana")
    SqliteStore(tmp / "fsmtrader.db").close()
    reader = BookReader(tmp / "fsmtrader.db", tmp)
    metrics = Metrics(
        status=lambda: reader.status(0),
        balance=reader.balance,
        calls=CallStats(),
        retries=RetryStats().snapshot,
    )
    text = metrics.render()[0].decode()
    families = {
        f.name: {f.name + suffix for suffix in SUFFIXES[f.type]}
        for f in text_string_to_metric_families(text)
    }
    reader.close()
    yield families


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def targets(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in d["panels"] for t in p.get("targets", [])]


def test_every_query_names_an_exported_metric(exported: dict[str, set[str]]) -> None:
    samples = set().union(*exported.values())
    exprs = [t["expr"] for t in targets(dashboard())]
    assert len(exprs) > 40
    used = {name for e in exprs for name in NAME.findall(e)}
    assert used - samples == set()
    for e in exprs:
        assert NAME.search(e), e


def test_every_exported_metric_has_a_panel(exported: dict[str, set[str]]) -> None:
    used = {name for t in targets(dashboard()) for name in NAME.findall(t["expr"])}
    missing = [family for family, names in exported.items() if not names & used]
    assert missing == []
    assert len(exported) >= 35


def test_panels_query_the_prometheus_datasource_variable() -> None:
    d = dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    panels = [p for p in d["panels"] if p["type"] != "row"]
    assert all(p["datasource"] == ds for p in panels)
    assert all(t["datasource"] == ds for t in targets(d))
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in d["panels"])
    assert all(t["refId"] for t in targets(d))
