"""The knob half of ``check``: lints of what operators own in the mapping (after the contract holds).

Operators may retune buckets, lengthen a ``ttl``, reword help, add rules for
other senders and drop rules. These lints catch the knob settings that lose
data or mislead, and point at the mapping line (the operators' file):

fail
    no final catch-all drop rule; a catch-all rule before it; a per-process
    gauge without ``ttl`` or with one shorter than :data:`MIN_TTL_SECONDS`
    (strictly increasing buckets are checked by :mod:`.mapping_lint`).
warn (fail only with ``--strict``)
    buckets that look like milliseconds on a ``_seconds`` series (or seconds
    on a ``_bytes`` series); more than :data:`MAX_BUCKETS` buckets; a rule
    that matches no catalog metric and is not a drop rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from netauto_statsd.catalog import Metric
from netauto_statsd.tooling.contract import rules_for
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.mapping import match_metric_type
from netauto_statsd.tooling.mapping_lint import Rule

#: The client re-sends per-process gauges at every flush (default 0.5 s) and Prometheus
#: scrapes every 15 s (bridge/prometheus.yml): a ttl shorter than two scrapes makes the
#: series flicker between scrapes; a few flush intervals are far below that.
MIN_TTL_SECONDS = 30.0
#: More buckets than this cost series and rarely add resolution.
MAX_BUCKETS = 30
#: Names no real sender uses; a rule catching them is a catch-all.
_PROBES = ("zz_probe", "zz_probe.unrelated", "a.b.c.d.e.f.g.h", "other-team.requests.count.x.y")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def ttl_seconds(text: str) -> float | None:
    """``2m`` -> 120.0; ``None`` when the exporter would not read it as a duration."""
    found = _DURATION.match(text.strip())
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)] if found else None


def is_catch_all(rule: Rule) -> bool:
    """Whether ``rule`` catches names no catalog metric or known sender uses."""
    if rule.match_type == "glob" and all(segment == "*" for segment in rule.match.split(".")):
        return True
    kinds = ("counter", "gauge", "observer")
    return all(any(rule.matches(probe, kind) for kind in kinds) for probe in _PROBES)  # every probe, any type


def lint_knobs(where: str, rules: list[Rule], metrics: Iterable[Metric], report: Report, namespace: str) -> None:
    """Lint the operators' knobs of ``rules`` (see the module docstring)."""
    metrics = list(metrics)
    _drop_rules(where, rules, report)
    claimed: set[int] = set()
    for metric in metrics:
        # both wire forms claim their rules even when only DogStatsD is proved (--no-plain)
        for rule in rules_for(rules, metric, namespace, plain=True):
            claimed.add(rule.index)
            _metric_knobs(where, rule, metric, report)
    for rule in rules:
        if rule.action != "drop" and rule.index not in claimed and not is_catch_all(rule):
            report.warn(
                where,
                rule.line,
                f"rule `{rule.match}` matches no catalog metric",
                "fine for another sender's metrics; otherwise declare the metric in a catalog module "
                "(--catalog) or remove the rule",
            )


def _drop_rules(where: str, rules: list[Rule], report: Report) -> None:
    last = rules[-1] if rules else None
    final = last is not None and last.action == "drop" and is_catch_all(last)
    if not final:
        report.error(
            where,
            last.line if last else 0,
            "no final drop rule: unmapped names would reach Prometheus under mangled default names",
            'end `mappings:` with `- match: "."`, `match_type: regex`, `action: drop`, `name: "dropped"`',
        )
    for rule in rules[:-1] if final else rules:
        if rule.action != "drop" and is_catch_all(rule):
            report.error(
                where,
                rule.line,
                f"catch-all rule `{rule.match}` before the final drop rule maps every unknown name",
                "match only the names you mean (e.g. `myteam.*.*`), or make it `action: drop`",
            )


def _metric_knobs(where: str, rule: Rule, metric: Metric, report: Report) -> None:
    if metric.per_process:
        seconds = ttl_seconds(rule.ttl) if rule.ttl else None
        if not rule.ttl:
            report.error(
                where,
                rule.line,
                f"`{rule.name}` is a per-process gauge without `ttl`: a dead process's value stays forever",
                f"add `ttl: {metric.ttl or '2m'}` to this rule (any value >= {MIN_TTL_SECONDS:g}s)",
            )
        elif seconds is None or seconds < MIN_TTL_SECONDS:
            report.error(
                where,
                rule.line,
                f"`{rule.name}`: `ttl: {rule.ttl}` is shorter than {MIN_TTL_SECONDS:g}s (two scrapes): "
                "the series would flicker",
                f"use `ttl: {metric.ttl or '2m'}` or longer",
            )
    if rule.buckets and match_metric_type(metric) == "observer":
        _bucket_units(where, rule, report)


def _bucket_units(where: str, rule: Rule, report: Report) -> None:
    buckets = rule.buckets
    if rule.name.endswith("_seconds") and min(buckets) >= 1 and max(buckets) >= 1000:
        report.warn(
            where,
            rule.line,
            f"buckets of `{rule.name}` ({min(buckets):g} .. {max(buckets):g}) look like milliseconds",
            "the client sends seconds: divide the buckets by 1000",
        )
    if rule.name.endswith("_bytes") and any(0 < b < 1 for b in buckets):
        report.warn(
            where,
            rule.line,
            f"buckets of `{rule.name}` include fractions of a byte ({min(b for b in buckets if b > 0):g}): "
            "they look like seconds",
            "use byte sizes such as [256, 1024, 4096, ...]",
        )
    if len(buckets) > MAX_BUCKETS:
        report.warn(
            where,
            rule.line,
            f"`{rule.name}` has {len(buckets)} buckets (each is a series per label set)",
            f"keep {MAX_BUCKETS} or fewer",
        )


__all__ = ["MAX_BUCKETS", "MIN_TTL_SECONDS", "is_catch_all", "lint_knobs", "ttl_seconds"]
