"""Every panel alive, with real processes: traffic -> statsd_exporter -> Prometheus -> every panel query.

Grafana cannot run here, so each panel target of each committed dashboard is
interpolated the way Grafana would ($__rate_interval, $__interval, $__range,
multi-value and All variables) and run through Prometheus' HTTP API: it must
parse and return at least one series with a finite value - for the demo app as
for the synthetic traffic, with no exclusion list. Every variable's
``label_values`` query must offer choices, and every alert rule must load and
evaluate healthy.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from netauto_statsd import catalog
from netauto_statsd.tooling.dashboards import DEFAULT_DIR, flat_panels, load_dashboards, variable_queries
from netauto_statsd.tooling.promql import parse_label_values
from tests.support import ROOT, wait_until
from tests.tooling.grafana import grafana_support as grafana
from tests.tooling.grafana.conftest import Stack
from tests.tooling.grafana.prometheus_support import PrometheusError, finite_values

pytestmark = [pytest.mark.exporter, pytest.mark.prometheus, pytest.mark.slow]

DASHBOARDS = load_dashboards(ROOT / DEFAULT_DIR)


def _window(stack: Stack) -> tuple[float, float, float]:
    """The dashboard time range the queries run over: from just before the traffic to now."""
    start = stack.started - 2
    end = stack.ended + 30  # past the last scrape; Prometheus treats the future as "now"
    return start, end, stack.prometheus.interval_s


def _resolve_variables(stack: Stack, dashboard: dict[str, Any], use_all: bool) -> dict[str, str]:
    """Run each variable's label_values query in order; select every value (or "All")."""
    start, end, scrape = _window(stack)
    values = grafana.builtins(end - start, scrape)
    for var in dashboard["templating"]["list"]:
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        parsed = parse_label_values(query)
        assert parsed is not None, f"{var['name']}: not a label_values() query: {query}"
        selector, label = parsed
        options = stack.prometheus.label_values(label, grafana.interpolate(selector, values), start, end)
        assert options, f"variable ${var['name']} offers no value: {query}"
        if var["name"] == "env":
            assert stack.report.env in options, f"$env offers {options}, not the traffic's {stack.report.env!r}"
            options = [stack.report.env]
        if use_all and var.get("includeAll"):
            values[var["name"]] = var["allValue"]
        else:
            values[var["name"]] = grafana.format_value(var, options)
    return values


def _run_panels(stack: Stack, use_all: bool) -> tuple[int, list[str]]:
    start, end, scrape = _window(stack)
    step = grafana.interval(end - start, scrape)
    ran, failures = 0, []
    for file_name, dashboard in DASHBOARDS.items():
        values = _resolve_variables(stack, dashboard, use_all)
        for panel in flat_panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{file_name} / {panel['title']} / {target['refId']}"
                expr = grafana.interpolate(target["expr"], values)
                try:
                    if target.get("instant"):
                        result = stack.prometheus.query(expr, at=end)
                    else:
                        result = stack.prometheus.query_range(expr, start, end, step)
                except PrometheusError as exc:
                    failures.append(f"{where}: {exc}\n    {expr}")
                    continue
                ran += 1
                if not result:
                    failures.append(f"{where}: no series\n    {expr}")
                elif not finite_values(result):
                    failures.append(f"{where}: only NaN/Inf values\n    {expr}")
    return ran, failures


def test_traffic_covers_every_catalog_metric(stack: Stack) -> None:
    """The proof is only as good as its input: every catalog series reached the exporter."""
    exposed = {name for name, _labels, _value in stack.exporter.samples("netauto_")}
    missing = [m.name for m in catalog.METRICS if not set(catalog.exposed_series(m)) <= exposed]
    assert not missing, f"the traffic source never sent {missing}"


def test_exporter_lost_nothing(stack: Stack) -> None:
    """Clean client traffic: no drops, parse errors, conflicts or undeclared names at the exporter."""
    errors = {name: value for name, value in stack.exporter.self_errors().items() if value}
    assert not errors, f"exporter self-errors: {errors}"


@pytest.mark.parametrize("use_all", [False, True], ids=["every-value-selected", "All"])
def test_every_panel_query_returns_data(stack: Stack, use_all: bool) -> None:
    """Each target of each dashboard parses in Prometheus and returns finite data."""
    ran, failures = _run_panels(stack, use_all)
    assert not failures, f"{len(failures)} of {ran + len(failures)} panel queries failed:\n" + "\n".join(failures)
    expected = sum(len(p.get("targets", [])) for d in DASHBOARDS.values() for p in flat_panels(d))
    assert ran == expected > 0


def test_every_variable_offers_values(stack: Stack) -> None:
    """label_values() of every variable returns choices (checked inside _resolve_variables)."""
    for dashboard in DASHBOARDS.values():
        values = _resolve_variables(stack, dashboard, use_all=False)
        assert {name for name, _query in variable_queries(dashboard)} <= values.keys()


def test_every_rule_loads_and_evaluates_healthy(stack: Stack) -> None:
    """/api/v1/rules lists every rule of bridge/rules/*.yml, each evaluated without error."""
    declared = {
        rule.get("alert") or rule.get("record")
        for path in sorted((ROOT / "bridge" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }

    def evaluated() -> list[dict[str, Any]]:
        rules = stack.prometheus.rules()
        done = all(r.get("lastEvaluation", "").startswith("20") for r in rules)
        return rules if done and rules else []

    rules = wait_until(evaluated, 15, "every rule to be evaluated once")
    assert {r["name"] for r in rules} == declared
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy, unhealthy


def test_alerts_react_to_the_traffic(stack: Stack) -> None:
    """Rules see the real series: what the traffic source provokes becomes pending; the bridge stays quiet."""

    def active() -> tuple[set[str]] | None:
        names = {a["labels"]["alertname"] for a in stack.prometheus.alerts()}
        return (names,) if stack.report.pending_alerts <= names else None

    (names,) = wait_until(active, 15, f"alerts {sorted(stack.report.pending_alerts)} to be pending")
    bridge = sorted(n for n in names if n.startswith("StatsdExporter"))
    assert not bridge, f"the bridge alerts on clean traffic: {bridge}"
