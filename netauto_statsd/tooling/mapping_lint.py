"""Strict lint of a statsd_exporter v0.30.0 mapping file, with file:line findings and fixes.

v0.30.0 silently ignores unknown keys, so a typo like ``label:`` does nothing
there; here it is an error. Also: invalid globs (``prefix_*``), ``$1_foo``
substitutions (expand to nothing), captures the match does not define, bad or
reserved label names, conflicting types for one series name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netauto_statsd.tooling.findings import Report

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
        if not isinstance(value_node, yaml.SequenceNode):  # `mappings:` alone (null) is an empty list
            if value_node.tag != "tag:yaml.org,2002:null":
                report.error(
                    where,
                    value_node.start_mark.line + 1,
                    "`mappings:` is not a list of rules",
                    "write each rule as a `- match: ...` item under `mappings:`",
                )
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
    buckets = _numbers(where, bucket_node, report)
    bucket_line = bucket_node.start_mark.line + 1 if bucket_node is not None else line
    if list(buckets) != sorted(set(buckets)):
        report.error(
            where,
            bucket_line,
            f"buckets of `{match}` are not strictly increasing",
            "sort the buckets and remove duplicates (a knob: edit this line)",
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
        ttl=_scalar(fields["ttl"][0]) if "ttl" in fields else defaults["ttl"],  # the exporter applies the default
        help=_scalar(fields["help"][0]) if "help" in fields else "",
    )


def _numbers(where: str, node: Any, report: Report) -> tuple[float, ...]:
    if node is None:
        return ()
    items = node.value if isinstance(node.value, list) else []
    try:
        return tuple(float(item.value) for item in items)
    except (TypeError, ValueError):
        report.error(where, node.start_mark.line + 1, "buckets must be a list of numbers", "write `[0.1, 0.5, 1.0]`")
        return ()


def _kind(rule: Rule) -> str:
    if rule.metric_type == "observer" or (not rule.metric_type and rule.buckets):
        return rule.observer_type
    return rule.metric_type or "any"


def _check_type_conflicts(where: str, rules: list[Rule], report: Report) -> None:
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.action == "drop" or not rule.name or "$" in rule.name:  # a missing name is reported once
            continue
        first = seen.setdefault(rule.name, rule)
        if first is not rule and _kind(first) != _kind(rule):
            report.error(
                where,
                rule.line,
                f"`{rule.name}` is a {_kind(rule)} here but a {_kind(first)} at line {first.line}",
                "one Prometheus name must have one type: rename one of them",
            )
        elif first is not rule and (first.help != rule.help or first.buckets != rule.buckets):
            what = "help" if first.help != rule.help else "buckets"
            report.error(
                where,
                rule.line,
                f"`{rule.name}`: this rule and its twin at line {first.line} disagree on {what} "
                "(the exporter refuses the second one's samples)",
                f"give both rules for `{rule.name}` the same help and buckets (edit them together)",
            )
        elif first is not rule and first.ttl != rule.ttl:
            report.warn(
                where,
                rule.line,
                f"`{rule.name}`: ttl {rule.ttl or 'none'} here, {first.ttl or 'none'} in its twin at line {first.line}",
                "give both rules for one series the same ttl",
            )
