"""Dashboard and alert-rule queries may only name series and labels that the catalog + mapping produce.

Reads every Grafana dashboard JSON in a directory (ours or anyone's), extracts
each panel target's PromQL and each ``label_values(...)`` variable query, and
reports series or label names that nothing produces - the classic silently
empty panel. The PromQL analysis is :mod:`netauto_statsd.tooling.promql`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from netauto_statsd.tooling.findings import Finding
from netauto_statsd.tooling.promql import parse_label_values, problems, references


def _queries(node: Any, title: str = "") -> Iterator[tuple[str, str]]:
    """Yield (where, query) for every panel target and templating query in a dashboard."""
    if isinstance(node, dict):
        here = str(node.get("title") or node.get("name") or title)
        expr = node.get("expr")
        if isinstance(expr, str) and expr.strip():
            yield here, expr
        query = node.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if node.get("type") == "query" and isinstance(query, str) and query.strip():
            yield f"variable {here}", query
        for value in node.values():
            yield from _queries(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item, title)


def _line_of(text: str, query: str) -> int:
    position = text.find(json.dumps(query)[1:-1])
    return text.count("\n", 0, position) + 1 if position >= 0 else 0


def check_query(query: str, series: Mapping[str, tuple[str, ...]]) -> list[str]:
    """What is wrong with one panel or variable query (empty: every name resolves)."""
    split = parse_label_values(query)
    if split is None:
        return problems(query, series)
    selector, label = split
    if not selector:
        return []
    found = problems(selector, series)
    names = references(selector).metrics
    if not found and names and all(label not in series[n] and label not in ("job", "instance") for n in names):
        found.append(f"variable reads label {label!r}, which {sorted(names)} do not have")
    return found


def check_dashboards(directory: Path, series: Mapping[str, tuple[str, ...]]) -> list[Finding]:
    """Check every ``*.json`` under ``directory`` against ``series`` (name -> label names)."""
    findings: list[Finding] = []
    for path in sorted(directory.rglob("*.json")):
        text = path.read_text()
        try:
            dashboard = json.loads(text)
        except json.JSONDecodeError as exc:
            findings.append(Finding(str(path), exc.lineno, f"not valid JSON: {exc.msg}", "fix the JSON"))
            continue
        for where, query in _queries(dashboard):
            for problem in check_query(query, series):
                fix = "use a series and labels from `netauto-statsd catalog --json` (or fix the mapping)"
                findings.append(Finding(str(path), _line_of(text, query), f"[{where}] {problem}", fix))
    return findings


def rule_queries(path: Path) -> Iterator[tuple[str, str]]:
    """``(alert or record name, expr)`` of every rule in a Prometheus rule file."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    for group in data.get("groups", []) if isinstance(data, dict) else []:
        for rule in group.get("rules", []) or []:
            expr = rule.get("expr")
            if isinstance(expr, str) and expr.strip():
                yield str(rule.get("alert") or rule.get("record") or group.get("name", "")), expr


def check_rule_files(directory: Path, series: Mapping[str, tuple[str, ...]]) -> list[Finding]:
    """Check every rule expression in ``directory/*.yml`` (not the ``tests/`` below it) against ``series``."""
    import yaml

    findings: list[Finding] = []
    for path in sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml")):
        text = path.read_text()
        try:
            queries = list(rule_queries(path))
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
            findings.append(Finding(str(path), line, f"not valid YAML: {exc}", "fix the YAML"))
            continue
        for name, query in queries:
            for problem in check_query(query, series):
                position = text.find(query.strip().splitlines()[0])
                line = text.count("\n", 0, position) + 1 if position >= 0 else 0
                fix = "use a series and labels the mapping produces (`netauto-statsd catalog --json`)"
                findings.append(Finding(str(path), line, f"[{name}] {problem}", fix))
    return findings


def referenced_bucket_series(dashboards: Path | None, rules: Path | None) -> frozenset[str]:
    """``_bucket`` series some dashboard or rule reads (their metrics must stay histograms)."""
    exprs: list[str] = []
    if dashboards is not None and dashboards.is_dir():
        for path in dashboards.rglob("*.json"):
            try:
                exprs += [q for _, q in _queries(json.loads(path.read_text()))]
            except json.JSONDecodeError:
                continue
    if rules is not None and rules.is_dir():
        for path in sorted(rules.glob("*.yml")):
            try:
                exprs += [q for _, q in rule_queries(path)]
            except Exception:  # reported by check_rule_files
                continue
    names: set[str] = set()
    for expr in exprs:
        try:
            names |= {n for n in references(expr).metrics if n.endswith("_bucket")}
        except Exception:  # unparsable queries are reported by the query checks
            continue
    return frozenset(names)
