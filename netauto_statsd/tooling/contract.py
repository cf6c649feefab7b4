"""The contract half of ``check``: every declared metric, in each wire format, becomes its declared series.

The catalog fixes what dashboards, alerts and code depend on: the series name,
its type and its label names. A rule that contradicts it is a contract finding;
its fix names the catalog module that declares the metric (``Metric.module``),
because changing the contract means changing that declaration (and the
dashboards), never only the mapping. Buckets, ttl and help are the operators'
knobs and are not compared with the catalog here (see :mod:`.knobs`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netauto_statsd.catalog import Metric, wire_name
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.mapping import match_metric_type, plain_match
from netauto_statsd.tooling.mapping_lint import Rule
from netauto_statsd.wire.base import segment_keys

DOGSTATSD, PLAIN = "DogStatsD", "plain StatsD"


@dataclass(frozen=True)
class Encoding:
    """One wire form of a metric: the name a sample arrives with, and the tag keys carried as segments."""

    label: str
    sample_name: str
    keys: tuple[str, ...]  # empty for DogStatsD (tags travel as tags)


def encodings(metric: Metric, namespace: str, plain: bool = True) -> list[Encoding]:
    """The DogStatsD form of ``metric`` and, if ``plain``, its plain-StatsD form."""
    out = [Encoding(DOGSTATSD, wire_name(metric, namespace), ())]
    if plain:
        keys = segment_keys(metric)
        out.append(Encoding(PLAIN, ".".join([wire_name(metric, namespace)] + ["v"] * len(keys)), keys))
    return out


def resolve(rules: Iterable[Rule], name: str, metric_type: str) -> Rule | None:
    """The rule the exporter applies to ``name``: globs first in file order, then regexes."""
    rules = list(rules)
    for kind in ("glob", "regex"):
        for rule in rules:
            if rule.match_type == kind and rule.matches(name, metric_type):
                return rule
    return None


def rules_for(rules: list[Rule], metric: Metric, namespace: str, plain: bool = True) -> list[Rule]:
    """The (non-drop) rules that catch ``metric`` in its wire forms."""
    found = []
    for enc in encodings(metric, namespace, plain):
        rule = resolve(rules, enc.sample_name, match_metric_type(metric))
        if rule is not None and rule.action != "drop" and rule not in found:
            found.append(rule)
    return found


def _owner(metric: Metric) -> str:
    return f"the contract is declared in `{metric.module}`"


def check_contract(
    where: str,
    rules: list[Rule],
    metrics: Iterable[Metric],
    report: Report,
    namespace: str,
    plain: bool = True,
    bucket_series: frozenset[str] = frozenset(),
    catalog_args: str = "",
) -> list[Metric]:
    """Compare every metric's rules with its declaration; return the metrics the mapping produces as declared.

    Args:
        bucket_series: ``_bucket`` series some dashboard or alert reads; their
            metrics must stay histograms (otherwise a summary is an operator's choice).
        catalog_args: ``--catalog`` options to repeat in the suggested ``mapping --update`` command.
    """
    produced = []
    for metric in metrics:
        ok = True
        for enc in encodings(metric, namespace, plain):
            ok = _check_one(where, rules, report, metric, enc, namespace, bucket_series, catalog_args) and ok
        if ok:
            produced.append(metric)
    return produced


def _check_one(
    where: str,
    rules: list[Rule],
    report: Report,
    metric: Metric,
    enc: Encoding,
    namespace: str,
    bucket_series: frozenset[str],
    catalog_args: str,
) -> bool:
    rule = resolve(rules, enc.sample_name, match_metric_type(metric))
    want = plain_match(metric, namespace) if enc.keys else wire_name(metric, namespace)
    if rule is None or rule.action == "drop":
        dropped = f" (dropped by the rule at line {rule.line})" if rule else ""
        report.error(
            where,
            rule.line if rule else 0,
            f"catalog metric `{metric.name}` ({enc.label} `{want}`) is not mapped{dropped}",
            f"run `netauto-statsd mapping{catalog_args} --update {where}` (adds its rule before the final drop rule)",
        )
        return False
    problems = []
    if rule.name != metric.prometheus_name:
        problems.append(f"becomes `{rule.name}`, the catalog declares `{metric.prometheus_name}`")
    read_as_buckets = f"{metric.prometheus_name}_bucket" in bucket_series
    if metric.type == "histogram" and rule.observer_type != "histogram" and read_as_buckets:
        problems.append(f"is a {rule.observer_type}, but dashboards or alerts read `{metric.prometheus_name}_bucket`")
    # a rule typed for another kind never resolves for this metric (the exporter skips it too): such a
    # metric is reported unmapped above, and the lint reports the series' two types
    if enc.keys:
        expected = {k: f"${{{i}}}" for i, k in enumerate(enc.keys, start=1)}
        if rule.labels != expected:
            problems.append(f"labels must be {', '.join(f'{k}: {v}' for k, v in expected.items())}")
    elif rule.labels:
        problems.append(f"adds labels {sorted(rule.labels)} that the catalog does not declare (tags become labels)")
    for problem in problems:
        report.error(
            where,
            rule.line,
            f"`{metric.name}` ({enc.label}) {problem}",
            f"restore this rule to the contract; {_owner(metric)} (change it there, and the dashboards, to change it)",
        )
    return not problems
