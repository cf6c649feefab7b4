"""The committed Grafana dashboards and provisioning, checked statically (no Grafana, no network)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from netauto_statsd import catalog
from netauto_statsd.tooling.dashboards import (
    DATASOURCE_UID,
    DEFAULT_DIR,
    SDK_REQUIREMENT,
    UNITS,
    flat_panels,
    load_dashboards,
    panel_queries,
    stale_dashboards,
    variable_queries,
)
from netauto_statsd.tooling.dashboards.queries import Scope, known_series
from netauto_statsd.tooling.promql import parse_label_values, problems, references, unaggregated
from tests.support import ROOT, require_module

DASHBOARD_DIR = ROOT / DEFAULT_DIR
PROVISIONING = ROOT / "grafana" / "provisioning"
DASHBOARDS = load_dashboards(DASHBOARD_DIR)
EXPECTED = {
    "runner_overview.json": "netauto-runner-overview",
    "liveview_health.json": "netauto-liveview-health",
    "command_throughput.json": "netauto-command-throughput",
    "jobs_db_http.json": "netauto-jobs-db-http",
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def require_sdk() -> None:
    """Skip without grafana-foundation-sdk on a laptop; fail under CI=true."""
    require_module("grafana_foundation_sdk", f"{SDK_REQUIREMENT}: pip install -e '.[dashboards]'")


def all_queries() -> list[tuple[str, str]]:
    return [(f"{name} / {title}", expr) for name, d in DASHBOARDS.items() for title, expr in panel_queries(d)]


# ------------------------------------------------------------------ generator
def test_committed_json_is_what_the_generator_produces() -> None:
    require_sdk()
    stale = stale_dashboards(DASHBOARD_DIR)
    assert not stale, f"grafana/dashboards is out of date for {stale}: run `netauto-statsd dashboards`"


def test_generation_is_deterministic_across_processes() -> None:
    """Two interpreters with different hash seeds write byte-identical JSON."""
    require_sdk()
    script = (
        "import json; from netauto_statsd.tooling.dashboards import render_dashboards; "
        "print(json.dumps(render_dashboards()))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]


def test_write_dashboards_writes_every_file(tmp_path: Path) -> None:
    require_sdk()
    from netauto_statsd.tooling.dashboards import write_dashboards

    written = write_dashboards(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(EXPECTED)
    assert stale_dashboards(tmp_path / "out") == []
    (tmp_path / "out" / "runner_overview.json").write_text("{}")
    (tmp_path / "out" / "hand_made.json").write_text("{}")
    assert stale_dashboards(tmp_path / "out") == ["runner_overview.json", "hand_made.json"]


def test_queries_refuse_labels_the_catalog_does_not_declare() -> None:
    """The generator breaks loudly when a panel groups by a tag a metric does not have."""
    with pytest.raises(ValueError, match=r"runner\.start has no label"):
        Scope().rate("runner.start", ("status",))
    with pytest.raises(KeyError, match="not in the catalog"):
        Scope().rate("runner.starts")
    with pytest.raises(ValueError, match="is a counter"):
        Scope().series("runner.start", "_bucket")


# ----------------------------------------------------------------- structure
def test_files_and_uids_are_fixed() -> None:
    assert {name: d["uid"] for name, d in DASHBOARDS.items()} == EXPECTED
    for d in DASHBOARDS.values():
        assert d.get("id") is None, "a provisioned dashboard must not carry a database id"
        assert d["title"].startswith("NetAuto / ")
        assert "netauto" in d["tags"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_has_unit_description_and_the_datasource_uid(name: str) -> None:
    for panel in flat_panels(DASHBOARDS[name]):
        where = f"{name} / {panel.get('title')}"
        assert panel.get("description", "").strip(), f"{where}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit") in UNITS, f"{where}: unit missing or unknown"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
        assert panel["targets"], f"{where}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, where
        if panel["type"] == "heatmap":
            assert all(t.get("format") == "heatmap" for t in panel["targets"]), f"{where}: not bucket-formatted"
            assert panel["options"]["calculate"] is False, f"{where}: Grafana must not re-bucket"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_ids_unique_and_no_overlap(name: str) -> None:
    top = DASHBOARDS[name]["panels"]
    ids = [p["id"] for p in top]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    boxes: list[tuple[str, dict[str, int]]] = []
    for p in top:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, f"{name} / {p['title']}: wider than the grid"
        for other_title, o in boxes:
            overlap_x = g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
            overlap_y = g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]
            assert not (overlap_x and overlap_y), f"{name}: {p['title']} overlaps {other_title}"
        boxes.append((p["title"], g))


# ------------------------------------------------------------------- queries
def test_every_catalog_metric_is_on_a_panel() -> None:
    used = set().union(*(references(expr).metrics for _where, expr in all_queries()))
    missing = [m.name for m in catalog.METRICS if not set(catalog.exposed_series(m)) & used]
    assert not missing, f"no panel shows {missing}"


def test_every_histogram_has_a_quantile_panel() -> None:
    used = set().union(*(references(expr).metrics for _where, expr in all_queries()))
    missing = [m.name for m in catalog.METRICS if m.type == "histogram" and f"{m.prometheus_name}_bucket" not in used]
    assert not missing, f"no quantile/heatmap panel for {missing}"


def test_client_health_row_shows_client_and_exporter_self_metrics() -> None:
    used = set().union(*(references(expr).metrics for _where, expr in all_queries()))
    client = {m.prometheus_name for m in catalog.METRICS if m.area == "client"}
    assert client <= used
    assert {"statsd_exporter_udp_packet_drops_total", "statsd_exporter_events_actions_total", "up"} <= used


@pytest.mark.parametrize(("where", "expr"), all_queries())
def test_query_aggregates_every_selector(where: str, expr: str) -> None:
    """sum by / max by around every selector: correct with one exporter or many."""
    assert unaggregated(expr) == [], f"{where}: bare selector(s) in {expr}"


@pytest.mark.parametrize(("where", "expr"), all_queries())
def test_query_reads_only_series_the_catalog_and_mapping_produce(where: str, expr: str) -> None:
    assert problems(expr, known_series()) == [], where


def test_per_process_gauges_are_aggregated_over_process() -> None:
    per_process = {m.prometheus_name for m in catalog.METRICS if m.per_process}
    for where, expr in all_queries():
        refs = references(expr)
        if refs.metrics & per_process:
            assert "process" not in refs.grouping, f"{where}: splits a per-process gauge by process"
            assert re.search(r"\b(sum|max)( by \([^)]*\) )?\(", expr), f"{where}: {expr}"


def test_rq_queue_depth_uses_max_everything_else_sums() -> None:
    """Every worker reports the same registry size: summing would multiply it by the worker count."""
    for where, expr in all_queries():
        if "netauto_rq_queue_jobs" in references(expr).metrics:
            assert expr.startswith("max by"), f"{where}: {expr}"


# ----------------------------------------------------------------- variables
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables(name: str) -> None:
    dashboard = DASHBOARDS[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert next(iter(variables)) == "env", "env comes first: the others depend on it"
    assert not variables["env"]["multi"] and not variables["env"]["includeAll"]
    for var_name, query in variable_queries(dashboard):
        var = variables[var_name]
        assert var["datasource"]["uid"] == DATASOURCE_UID
        parsed = parse_label_values(query)
        assert parsed is not None, f"{var_name}: {query}"
        selector, label = parsed
        assert label == var_name
        assert problems(selector, known_series()) == [], f"{var_name}: {query}"
        if var_name != "env":
            assert var["multi"] and var["includeAll"] and var["allValue"] == ".*", var_name
    defined = set(variables) | GRAFANA_BUILTINS
    for where, expr in panel_queries(dashboard):
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used <= defined, f"{where}: undefined {used - defined}"
        for var_name in used - GRAFANA_BUILTINS:
            op = '="' if var_name == "env" else '=~"'
            assert f"{var_name}{op}${var_name}" in expr, f"{where}: ${var_name} must be matched with {op}"


# -------------------------------------------------------------- provisioning
def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_datasource_provisioning() -> None:
    config = _yaml(PROVISIONING / "datasources" / "prometheus.yml")
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "prometheus"
    # Grafana expands $VAR / ${VAR} only; `${VAR:-default}` expands to "" (Go's os.ExpandEnv).
    assert source["url"] in ("${PROMETHEUS_URL}", "$PROMETHEUS_URL")
    prometheus = _yaml(ROOT / "bridge" / "prometheus.yml")
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"], (
        "Grafana's $__rate_interval assumes the scrape interval: keep them equal"
    )


def test_dashboard_provider_loads_the_folder() -> None:
    config = _yaml(PROVISIONING / "dashboards" / "netauto.yml")
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "NetAuto"
    assert provider["options"]["path"].startswith("/")
    assert provider["allowUiUpdates"] is False


def test_nothing_secret_is_provisioned() -> None:
    secret = re.compile(r"password|secret|token|apikey|api_key|basicauth|securejsondata", re.I)
    for path in sorted(PROVISIONING.rglob("*.y*ml")):
        keys = _keys(_yaml(path))
        assert not [k for k in keys if secret.search(k)], f"{path}: secret-looking keys"


def _keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [str(k) for k in node] + [k for v in node.values() for k in _keys(v)]
    if isinstance(node, list):
        return [k for v in node for k in _keys(v)]
    return []


def test_dashboards_are_valid_json_with_a_trailing_newline() -> None:
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        text = path.read_text()
        assert text.endswith("}\n")
        json.loads(text)
