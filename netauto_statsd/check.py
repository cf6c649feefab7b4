"""``netauto-statsd check``: the mapping and the dashboards, checked against the catalog.

What an operator runs after editing ``bridge/statsd_mapping.yml`` and what CI runs:

1. the YAML is linted strictly (statsd_exporter v0.30.0 silently ignores unknown
   keys, so a typo like ``label:`` would do nothing): unknown keys, invalid globs,
   ``$1_foo`` substitutions, bad label names, conflicting types for one name;
2. ``statsd_exporter --check-config`` runs on it when the binary is available;
3. every catalog metric (DogStatsD and plain-StatsD encodings) is resolved
   against the rules the way the exporter does, then proved live: a throw-away
   exporter gets one sample of every metric and the scrape is compared;
4. every dashboard query may only name series and labels the catalog produces.

Each finding names the file, the line and a one-line fix. Exit 0 when all
holds, 1 otherwise.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netauto_statsd.catalog import DEFAULT_NAMESPACE, METRICS, Metric, exposed_series, wire_name
from netauto_statsd.dashboard_check import check_dashboards
from netauto_statsd.findings import Finding
from netauto_statsd.live_check import live_check
from netauto_statsd.mapping import match_metric_type, plain_match
from netauto_statsd.plain import segment_keys

TOP_KEYS = {"defaults", "mappings"}
DEFAULT_KEYS = {
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "glob_disable_ordering",
    "ttl",
    "summary_options",
    "histogram_options",
}
RULE_KEYS = {
    "match",
    "name",
    "labels",
    "honor_labels",
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "help",
    "action",
    "match_metric_type",
    "ttl",
    "summary_options",
    "histogram_options",
    "scale",
}
OPTION_KEYS = {
    "histogram_options": {"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"},
    "summary_options": {"quantiles", "max_age", "age_buckets", "buf_cap"},
}
ENUMS = {
    "match_type": {"glob", "regex"},
    "match_metric_type": {"counter", "gauge", "observer"},
    "observer_type": {"histogram", "summary"},
    "action": {"map", "drop"},
}
_FIRST_SEGMENT = re.compile(r"^(\*|[a-zA-Z_][a-zA-Z0-9_\-]*)$")
_NEXT_SEGMENT = re.compile(r"^(\*|[a-zA-Z0-9_][a-zA-Z0-9_\-]*)$")
_BAD_SUBST = re.compile(r"\$(\d+)([A-Za-z0-9_])")
_SUBST = re.compile(r"\$\{?(\d+)\}?")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
_METRIC_NAME = re.compile(r"^([a-zA-Z_]|\$\{?\d+\}?)([a-zA-Z0-9_]|\$\{?\d+\}?)*$")
_RESERVED_LABELS = {"le", "quantile", "job", "instance"}


@dataclass
class Rule:
    """One mapping rule as the exporter will use it."""

    index: int
    line: int
    match: str
    match_type: str
    metric_type: str  # "" = any
    name: str
    action: str
    labels: dict[str, str]
    observer_type: str
    buckets: tuple[float, ...]
    ttl: str
    help: str

    def matches(self, name: str, metric_type: str) -> bool:
        """Whether this rule catches statsd ``name`` of ``metric_type`` (counter/gauge/observer)."""
        if self.metric_type and self.metric_type != metric_type:
            return False
        if self.match_type == "regex":
            try:
                return re.search(self.match, name) is not None
            except re.error:
                return False
        pattern, parts = self.match.split("."), name.split(".")
        return len(pattern) == len(parts) and all(p in ("*", s) for p, s in zip(pattern, parts, strict=True))


@dataclass
class Report:
    """Findings of one check run, printed for humans."""

    errors: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, path: str, line: int, problem: str, fix: str) -> None:
        """Record a problem that makes the check fail."""
        self.errors.append(Finding(path, line, problem, fix))

    def render(self) -> str:
        """The report as text."""
        lines = [f"{f.path}:{f.line}: {f.problem}\n    fix: {f.fix}" for f in self.errors]
        lines += [f"note: {n}" for n in self.notes]
        verdict = "FAILED" if self.errors else "OK"
        lines.append(f"check {verdict}: {len(self.errors)} problem(s)")
        return "\n".join(lines)


def _suggest(key: str, allowed: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"did you mean `{close[0]}`?" if close else f"allowed keys: {', '.join(sorted(allowed))}"


def _scalar(node: Any) -> str:
    return str(node.value) if hasattr(node, "value") and isinstance(node.value, str) else ""


def _mapping_items(node: Any) -> list[tuple[Any, Any]]:
    import yaml

    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def lint_mapping(path: Path, report: Report) -> list[Rule]:
    """Parse and lint the mapping file; return its rules in file order."""
    import yaml

    text = path.read_text()
    where = str(path)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        report.error(where, line, f"not valid YAML: {exc}", "fix the YAML syntax at that line")
        return []
    if not isinstance(data, dict):
        report.error(where, 1, "the file is not a mapping with `mappings:`", "start from `netauto-statsd mapping`")
        return []
    for key_node, _ in _mapping_items(root):
        if key_node.value not in TOP_KEYS:
            report.error(
                where,
                key_node.start_mark.line + 1,
                f"unknown top-level key `{key_node.value}`",
                _suggest(key_node.value, TOP_KEYS),
            )
    defaults: dict[str, Any] = {"match_type": "glob", "observer_type": "histogram", "ttl": ""}
    for key_node, value_node in _mapping_items(root):
        if key_node.value == "defaults":
            for k, v in _mapping_items(value_node):
                if k.value not in DEFAULT_KEYS:
                    report.error(
                        where,
                        k.start_mark.line + 1,
                        f"unknown key `{k.value}` in defaults (ignored by the exporter)",
                        _suggest(k.value, DEFAULT_KEYS),
                    )
                elif isinstance(v.value, str):
                    defaults[k.value] = v.value
    rules: list[Rule] = []
    for key_node, value_node in _mapping_items(root):
        if key_node.value != "mappings":
            continue
        for index, rule_node in enumerate(value_node.value):
            rule = _lint_rule(where, index, rule_node, defaults, report)
            if rule is not None:
                rules.append(rule)
    _check_type_conflicts(where, rules, report)
    return rules


def _lint_rule(where: str, index: int, node: Any, defaults: dict[str, Any], report: Report) -> Rule | None:
    import yaml

    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        report.error(
            where,
            line,
            f"mapping #{index + 1} is not a key/value block",
            "each rule is `- match: ...` with keys below it",
        )
        return None
    fields: dict[str, Any] = {}
    for k, v in _mapping_items(node):
        key = k.value
        kline = k.start_mark.line + 1
        if key not in RULE_KEYS:
            report.error(
                where,
                kline,
                f"unknown key `{key}` (statsd_exporter v0.30.0 silently ignores it)",
                _suggest(key, RULE_KEYS),
            )
            continue
        fields[key] = (v, kline)
        if key in OPTION_KEYS:
            for ok, _ in _mapping_items(v):
                if ok.value not in OPTION_KEYS[key]:
                    report.error(
                        where,
                        ok.start_mark.line + 1,
                        f"unknown key `{ok.value}` in {key}",
                        _suggest(ok.value, OPTION_KEYS[key]),
                    )
        if key in ENUMS and _scalar(v) not in ENUMS[key]:
            report.error(
                where, kline, f"`{key}: {_scalar(v)}` is not valid", f"use one of {', '.join(sorted(ENUMS[key]))}"
            )
    match = _scalar(fields["match"][0]) if "match" in fields else ""
    name = _scalar(fields["name"][0]) if "name" in fields else ""
    match_type = _scalar(fields["match_type"][0]) if "match_type" in fields else defaults["match_type"]
    if not match:
        report.error(where, line, "rule has no `match`", 'add `match: "netauto.some.metric"`')
    if not name:
        report.error(where, line, "rule has no `name` (required even for `action: drop`)", 'add `name: "netauto_..."`')
    elif not _METRIC_NAME.match(name):
        report.error(
            where,
            fields["name"][1],
            f"`{name}` is not a valid Prometheus metric name",
            "use letters, digits and _ only",
        )
    captures = 0
    if match and match_type == "glob":
        segments = match.split(".")
        captures = segments.count("*")
        bad = [s for i, s in enumerate(segments) if not (_FIRST_SEGMENT if i == 0 else _NEXT_SEGMENT).match(s)]
        if bad:
            report.error(
                where,
                fields["match"][1],
                f"invalid glob `{match}`: segment `{bad[0]}`",
                "`*` must be a whole dot segment (no `prefix_*`); segments use letters, digits, _ and -",
            )
    elif match and match_type == "regex":
        try:
            captures = re.compile(match).groups
        except re.error as exc:
            report.error(where, fields["match"][1], f"invalid regex `{match}`: {exc}", "fix the regular expression")
    labels: dict[str, str] = {}
    if "labels" in fields:
        for k, v in _mapping_items(fields["labels"][0]):
            lk, lv, lline = str(k.value), str(v.value), k.start_mark.line + 1
            labels[lk] = lv
            if not _LABEL.match(lk):
                report.error(
                    where, lline, f"label name `{lk}` is invalid (2+ chars, letters/digits/_)", "rename the label"
                )
            if lk in _RESERVED_LABELS or lk.startswith("__"):
                report.error(
                    where,
                    lline,
                    f"label name `{lk}` is reserved and breaks the exporter or Prometheus",
                    "rename the label",
                )
    for text, tline in [(name, fields.get("name", (None, line))[1])] + [(v, line) for v in labels.values()]:
        bad_sub = _BAD_SUBST.search(text)
        if bad_sub:
            n, rest = bad_sub.group(1), bad_sub.group(2)
            report.error(
                where,
                tline,
                f"`${n}{rest}` expands to nothing (`${n}{rest}...` is read as one variable)",
                f"write `${{{n}}}{rest}...`",
            )
        for ref in _SUBST.findall(text):
            if int(ref) > captures:
                report.error(
                    where,
                    tline,
                    f"`${ref}` refers to capture {ref} but `{match}` has {captures}",
                    "use a capture the match defines",
                )
    bucket_node = None
    if "histogram_options" in fields:
        for ok, ov in _mapping_items(fields["histogram_options"][0]):
            if ok.value == "buckets":
                bucket_node = ov
    buckets = tuple(float(b.value) for b in bucket_node.value) if bucket_node is not None else ()
    if list(buckets) != sorted(set(buckets)):
        report.error(
            where, line, f"buckets of `{match}` are not strictly increasing", "sort the buckets and remove duplicates"
        )
    return Rule(
        index=index,
        line=line,
        match=match,
        match_type=match_type,
        metric_type=_scalar(fields["match_metric_type"][0]) if "match_metric_type" in fields else "",
        name=name,
        action=_scalar(fields["action"][0]) if "action" in fields else "map",
        labels=labels,
        observer_type=_scalar(fields["observer_type"][0]) if "observer_type" in fields else defaults["observer_type"],
        buckets=buckets,
        ttl=_scalar(fields["ttl"][0]) if "ttl" in fields else "",
        help=_scalar(fields["help"][0]) if "help" in fields else "",
    )


def _kind(rule: Rule) -> str:
    if rule.metric_type == "observer" or (not rule.metric_type and rule.buckets):
        return rule.observer_type
    return rule.metric_type or "any"


def _check_type_conflicts(where: str, rules: list[Rule], report: Report) -> None:
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.action == "drop" or "$" in rule.name:
            continue
        first = seen.setdefault(rule.name, rule)
        if first is not rule and _kind(first) != _kind(rule):
            report.error(
                where,
                rule.line,
                f"`{rule.name}` is a {_kind(rule)} here but a {_kind(first)} at line {first.line}",
                "one Prometheus name must have one type: rename one of them",
            )
        elif first is not rule and (first.help != rule.help or first.buckets != rule.buckets or first.ttl != rule.ttl):
            report.error(
                where,
                rule.line,
                f"`{rule.name}` differs from line {first.line} in help, buckets or ttl",
                "keep every rule for one series identical apart from match and labels",
            )


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
    produced = {
        s: set(m.label_names()) | ({"le"} if s.endswith("_bucket") else set())
        for m in METRICS
        for s in exposed_series(m)
    }
    dash_dir = Path(dashboards)
    if dash_dir.is_dir():
        for finding in check_dashboards(dash_dir, produced):
            report.errors.append(finding)
    else:
        report.notes.append(f"no dashboards directory at {dashboards}: dashboard queries not checked")
    print(report.render())
    return 1 if report.errors else 0
