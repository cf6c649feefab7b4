"""PromQL analysis for `check`: name-less selectors and several selectors in one query.

Written for mutants of ``netauto_statsd.tooling.promql`` that survived the suite
(docs/testing.md): the aggregated flag of a ``{__name__=...}`` selector, the
finding for a selector without a name, and problems after the first selector.
"""

from __future__ import annotations

from netauto_statsd.tooling.promql import problems, references, unaggregated

KNOWN = {"netauto_x_total": ("env", "site"), "netauto_y_total": ("env", "queue")}


def test_a_nameless_selector_is_aggregated_only_inside_an_aggregation() -> None:
    assert unaggregated('sum({__name__="netauto_x_total"})') == []
    assert unaggregated('{__name__="netauto_x_total"}') == ["netauto_x_total"]
    selectors = references('sum({__name__="netauto_x_total"}) + {__name__="netauto_y_total"}').selectors
    assert [(s.metric, s.aggregated) for s in selectors] == [("netauto_x_total", True), ("netauto_y_total", False)]


def test_a_selector_without_any_name_is_a_finding_and_the_rest_is_still_checked() -> None:
    found = problems('sum({job="a"}) + sum(netauto_z_total) + sum(netauto_x_total{queue="q"})', KNOWN)
    assert found == [
        "selector without a metric name",
        "unknown series netauto_z_total",
        "netauto_x_total has no label 'queue'",
    ]


def test_labels_of_every_selected_series_may_be_grouped_on() -> None:
    expr = "sum by (site, queue) (netauto_x_total) + sum by (site, queue) (netauto_y_total)"
    assert problems(expr, KNOWN) == []
