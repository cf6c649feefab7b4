"""``netauto-statsd check``: the mapping and the dashboards, checked against the catalog.

What an operator runs after editing ``bridge/statsd_mapping.yml`` and what CI runs:

1. the YAML is linted strictly (:mod:`netauto_statsd.tooling.mapping_lint`);
2. ``statsd_exporter --check-config`` runs on it when the binary is available;
3. every catalog metric (DogStatsD and plain-StatsD encodings) is resolved
   against the rules the way the exporter does, then proved live: a throw-away
   exporter gets one sample of every metric and the scrape is compared
   (:mod:`netauto_statsd.tooling.live_check`);
4. every dashboard query may only name series and labels the catalog produces
   (:mod:`netauto_statsd.tooling.dashboard_check`).

Each finding names the file, the line and a one-line fix. Exit 0 when all
holds, 1 otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from netauto_statsd.catalog import DEFAULT_NAMESPACE, METRICS, Metric, wire_name
from netauto_statsd.tooling.dashboard_check import check_dashboards
from netauto_statsd.tooling.dashboards.queries import known_series
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.live_check import live_check
from netauto_statsd.tooling.mapping import match_metric_type, plain_match
from netauto_statsd.tooling.mapping_lint import Rule, lint_mapping
from netauto_statsd.wire.base import segment_keys

__all__ = ["Report", "Rule", "check_catalog", "lint_mapping", "resolve", "run_check"]


def resolve(rules: list[Rule], name: str, metric_type: str) -> Rule | None:
    """The rule the exporter applies to ``name``: globs first in file order, then regexes."""
    for kind in ("glob", "regex"):
        for rule in rules:
            if rule.match_type == kind and rule.matches(name, metric_type):
                return rule
    return None


def check_catalog(where: str, rules: list[Rule], report: Report, plain: bool, namespace: str) -> None:
    """Every catalog metric, in each encoding, must land on its declared series."""
    for metric in METRICS:
        encodings: list[tuple[str, str, tuple[str, ...]]] = [("DogStatsD", wire_name(metric, namespace), ())]
        if plain:
            sample = ".".join([wire_name(metric, namespace)] + ["v"] * len(segment_keys(metric)))
            encodings.append(("plain StatsD", sample, segment_keys(metric)))
        for label, name, keys in encodings:
            _check_one(where, rules, report, metric, label, name, keys, namespace)


def _check_one(
    where: str,
    rules: list[Rule],
    report: Report,
    metric: Metric,
    label: str,
    name: str,
    keys: tuple[str, ...],
    namespace: str,
) -> None:
    rule = resolve(rules, name, match_metric_type(metric))
    want = plain_match(metric, namespace) if keys else wire_name(metric, namespace)
    if rule is None or rule.action == "drop":
        report.error(
            where,
            rule.line if rule else 0,
            f"catalog metric `{metric.name}` ({label} `{want}`) is not mapped",
            f'add a rule `match: "{want}"` (see `netauto-statsd mapping`)',
        )
        return
    problems = []
    if rule.name != metric.prometheus_name:
        problems.append(f"becomes `{rule.name}`, catalog says `{metric.prometheus_name}`")
    if metric.type == "histogram" and (rule.observer_type != "histogram" or rule.buckets != metric.buckets):
        problems.append(f"must be a histogram with buckets {list(metric.buckets)}")
    if metric.ttl and rule.ttl != metric.ttl:
        problems.append(f"needs `ttl: {metric.ttl}` (per-process gauge)")
    if keys and rule.labels != {k: f"${{{i}}}" for i, k in enumerate(keys, start=1)}:
        problems.append(f"labels must be {', '.join(f'{k}: ${{{i}}}' for i, k in enumerate(keys, 1))}")
    if not keys and rule.labels:
        problems.append("DogStatsD rules must not set labels (tags become labels)")
    for problem in problems:
        report.error(where, rule.line, f"`{metric.name}` ({label}): {problem}", "edit this rule to match the catalog")


def run_check(
    mapping: str, dashboards: str, exporter: str | None = None, plain: bool = True, namespace: str = DEFAULT_NAMESPACE
) -> int:
    """Run every check, print the report, return the exit code (0 ok, 1 problems)."""
    report = Report()
    path = Path(mapping)
    if not path.is_file():
        report.error(mapping, 0, "mapping file not found", "pass --mapping PATH")
        print(report.render())
        return 1
    rules = lint_mapping(path, report)
    if rules:
        check_catalog(mapping, rules, report, plain, namespace)
    binary = exporter or shutil.which("statsd_exporter")
    if binary is None:
        report.notes.append("statsd_exporter not found: --check-config and the live proof were SKIPPED")
    else:
        done = subprocess.run(
            [binary, f"--statsd.mapping-config={path}", "--check-config"], capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            report.error(mapping, 0, f"statsd_exporter --check-config failed: {last[0]}", "fix what it names")
        elif not report.errors:
            for problem in live_check(binary, path, plain):
                report.error(mapping, 0, problem, "the exporter disagrees with the catalog: fix the rule for it")
            report.notes.append(f"live proof against {binary}: {len(METRICS)} metrics x {2 if plain else 1} encodings")
    dash_dir = Path(dashboards)
    if dash_dir.is_dir():
        for finding in check_dashboards(dash_dir, known_series()):
            report.errors.append(finding)
    else:
        report.notes.append(f"no dashboards directory at {dashboards}: dashboard queries not checked")
    print(report.render())
    return 1 if report.errors else 0
