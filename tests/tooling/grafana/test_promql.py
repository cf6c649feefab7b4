"""netauto_statsd.tooling.promql: metric and label names out of PromQL, without a parser."""

from __future__ import annotations

import pytest

from netauto_statsd.tooling.promql import Selector, parse_label_values, problems, references, unaggregated


def test_histogram_quantile_query() -> None:
    refs = references(
        'histogram_quantile(0.95, sum by (le, site) (rate(netauto_runner_duration_seconds_bucket{env="$env"}[5m])))'
    )
    assert refs.metrics == {"netauto_runner_duration_seconds_bucket"}
    assert refs.labels == {"le", "site", "env"}
    assert refs.grouping == {"le", "site"}
    assert refs.selectors == (Selector("netauto_runner_duration_seconds_bucket", ("env",), True),)


def test_strings_and_grafana_variables_are_not_names() -> None:
    expr = (
        'sum by (route) (rate(http_total{route=~"/api/{id}|x", method!="GET", env="${env}"}[$__rate_interval]))'
        " / on() group_left sum(rate(http_total[[[interval]]]))"
    )
    refs = references(expr)
    assert refs.metrics == {"http_total"}
    assert refs.labels == {"route", "method", "env"}
    assert [s.labels for s in refs.selectors] == [("route", "method", "env"), ()]


def test_aggregation_forms_and_keywords() -> None:
    # aggregation with the grouping after the parentheses, offset, bool, subquery, @ start()
    expr = (
        "sum(rate(a_total[5m] offset 1h)) by (site) > bool 0"
        " and max without (process) (b) unless topk(3, c) or max_over_time(d[10m:1m]) @ start()"
    )
    refs = references(expr)
    assert refs.metrics == {"a_total", "b", "c", "d"}
    assert refs.grouping == {"site", "process"}
    assert unaggregated(expr) == ["d"]


def test_selector_without_metric_name() -> None:
    refs = references('count({__name__="netauto_x_total", env="prod"}) + sum({job="statsd-exporter"})')
    assert refs.metrics == {"netauto_x_total"}
    assert refs.labels == {"env", "job"}
    assert [s.metric for s in refs.selectors] == ["netauto_x_total", ""]


def test_functions_and_numbers_are_not_metrics() -> None:
    refs = references("clamp_min(sum(x) - sum(y), 0) or on() vector(1e3) + time() - 0x1F * Inf")
    assert refs.metrics == {"x", "y"}


@pytest.mark.parametrize(
    ("expr", "bare"),
    [
        ("rate(x_total[5m])", ["x_total"]),
        ("sum(rate(x_total[5m])) / rate(y_total[5m])", ["y_total"]),
        ("histogram_quantile(0.9, rate(x_bucket[5m]))", ["x_bucket"]),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", []),
        ("x - on() group_left sum(y)", ["x"]),
    ],
)
def test_unaggregated(expr: str, bare: list[str]) -> None:
    assert unaggregated(expr) == bare


def test_label_values() -> None:
    assert parse_label_values('label_values(netauto_x_total{env="$env"}, site)') == (
        'netauto_x_total{env="$env"}',
        "site",
    )
    assert parse_label_values("label_values(site)") == ("", "site")
    assert parse_label_values("query_result(up)") is None


def test_problems_against_known_series() -> None:
    known = {"netauto_x_total": ("env", "site"), "netauto_h_seconds_bucket": ("env", "le")}
    assert problems('sum by (site) (rate(netauto_x_total{env="dev"}[5m]))', known) == []
    assert problems("histogram_quantile(0.5, sum by (le) (rate(netauto_h_seconds_bucket[5m])))", known) == []
    assert problems('sum by (instance) (netauto_x_total{job="a"})', known) == []
    assert problems("sum(rate(netauto_y_total[5m]))", known) == ["unknown series netauto_y_total"]
    assert problems('sum(netauto_x_total{protocol="ssh"})', known) == ["netauto_x_total has no label 'protocol'"]
    assert problems("sum by (status) (netauto_x_total)", known) == [
        "grouping by 'status', which no selected series has"
    ]
