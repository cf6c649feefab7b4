"""Dashboard queries may only name series and labels that the catalog + mapping produce.

Reads every Grafana dashboard JSON in a directory, extracts each panel target's
PromQL (and each ``label_values(...)`` variable query), and reports series
names or label names that nothing produces - the classic silently-empty panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netauto_statsd.findings import Finding

#: Series that exist without the catalog (exporter self-metrics, Prometheus' own).
EXTERNAL_PREFIXES = ("statsd_exporter_", "up", "scrape_", "go_", "process_", "prometheus_")
ALWAYS_LABELS = {"job", "instance"}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
}
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_LABEL_VALUES = re.compile(
    r"label_values\(\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,\s*)?([a-zA-Z_]\w*)\s*\)"
)


def references(expr: str) -> tuple[set[str], dict[str | None, set[str]], set[str]]:
    """Return (metric names, label names per selector metric, grouping label names) of a PromQL ``expr``."""
    text = _GRAFANA_VAR.sub("10", expr)
    selectors: dict[str | None, set[str]] = {}
    for metric, body in _SELECTOR.findall(_STRING.sub('""', text)):
        selectors.setdefault(metric or None, set()).update(_MATCHER.findall(_STRING.sub('""', body)))
    text = _STRING.sub('""', text)
    grouping: set[str] = set()
    for body in _GROUPING.findall(text):
        grouping.update(label.strip() for label in body.split(",") if label.strip())
    text = _GROUPING.sub(" ", text)
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _RANGE.sub(" ", text)
    names = {n for n in _IDENT.findall(text) if n.lower() not in _KEYWORDS}
    return names, selectors, grouping


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


def _external(name: str) -> bool:
    return name.startswith(EXTERNAL_PREFIXES)


def check_query(query: str, produced: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Problems of one query as (problem, fix) pairs; empty when every name resolves."""
    problems: list[tuple[str, str]] = []
    lv = _LABEL_VALUES.search(query)
    if lv:
        metric, label = lv.group(1), lv.group(2)
        if metric and not _external(metric) and metric not in produced:
            problems.append(
                (
                    f"variable query names `{metric}`, which no catalog metric produces",
                    "use a series from `netauto-statsd catalog`",
                )
            )
        elif metric and metric in produced and label not in produced[metric] | ALWAYS_LABELS:
            problems.append((f"`{metric}` has no label `{label}`", f"use one of {sorted(produced[metric])}"))
        return problems
    names, selectors, grouping = references(query)
    known: set[str] = set(ALWAYS_LABELS)
    unknown = False
    for name in sorted(names):
        if name in produced:
            known |= produced[name]
        elif not _external(name):
            unknown = True
            problems.append(
                (
                    f"query names `{name}`, which no catalog metric produces",
                    "use a series from `netauto-statsd catalog` (or fix the mapping)",
                )
            )
    any_external = any(_external(n) for n in names)
    for metric, labels in selectors.items():
        allowed = produced.get(metric or "", known) | ALWAYS_LABELS
        if (metric and _external(metric)) or (metric and metric not in produced) or (not metric and unknown):
            continue
        for label in sorted(labels - allowed - {"__name__"}):
            problems.append(
                (
                    f"label `{label}` does not exist on `{metric or 'the selected series'}`",
                    f"use one of {sorted(allowed - ALWAYS_LABELS)}",
                )
            )
    if not any_external and not unknown:
        for label in sorted(grouping - known - {"le"}):
            problems.append(
                (
                    f"grouping label `{label}` exists on none of {sorted(names & set(produced))}",
                    "group by a label the series carries",
                )
            )
    return problems


def check_dashboards(directory: Path, produced: dict[str, set[str]]) -> list[Finding]:
    """Check every ``*.json`` dashboard under ``directory`` against ``produced`` series -> labels."""
    findings: list[Finding] = []
    for path in sorted(directory.rglob("*.json")):
        text = path.read_text()
        try:
            dashboard = json.loads(text)
        except json.JSONDecodeError as exc:
            findings.append(Finding(str(path), exc.lineno, f"not valid JSON: {exc.msg}", "fix the JSON"))
            continue
        for where, query in _queries(dashboard):
            for problem, fix in check_query(query, produced):
                findings.append(Finding(str(path), _line_of(text, query), f"[{where}] {problem}", fix))
    return findings
