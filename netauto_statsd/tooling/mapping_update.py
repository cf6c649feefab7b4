"""Maintain the operators' mapping instead of regenerating it: ``mapping --diff`` and ``mapping --update``.

``--diff FILE`` lists what the file lacks or contradicts in the contract (the
same findings as ``check``'s contract half). ``--update FILE`` adds the rules of
catalog metrics the file does not map yet, in both wire formats, just before
the final drop rule, and leaves every other byte alone: operators' buckets,
ttl, help, comments and ordering survive (ruamel.yaml round trip; needs the
``check`` extra).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netauto_statsd.catalog import Metric
from netauto_statsd.tooling.contract import PLAIN, check_contract, encodings, resolve
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.mapping import match_metric_type, render_rule
from netauto_statsd.tooling.mapping_lint import Rule, lint_mapping


@dataclass(frozen=True)
class Missing:
    """A metric's wire form that no rule maps."""

    metric: Metric
    plain: bool


def missing_rules(rules: list[Rule], metrics: Iterable[Metric], namespace: str, plain: bool = True) -> list[Missing]:
    """Every (metric, wire form) that resolves to no rule or to a drop rule."""
    out = []
    for metric in metrics:
        for enc in encodings(metric, namespace, plain):
            rule = resolve(rules, enc.sample_name, match_metric_type(metric))
            if rule is None or rule.action == "drop":
                out.append(Missing(metric, enc.label == PLAIN))
    return out


def diff_mapping(path: Path, metrics: Iterable[Metric], namespace: str, plain: bool = True) -> Report:
    """What ``path`` lacks or contradicts in the contract, as check findings."""
    report = Report()
    rules = lint_mapping(path, report)
    if rules:
        check_contract(str(path), rules, metrics, report, namespace, plain)
    return report


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _last_key_holder(node: Any) -> tuple[Any, Any] | None:
    """The innermost (mapping, key) that ends ``node``: where a comment after it is attached."""
    from ruamel.yaml.comments import CommentedMap

    while isinstance(node, CommentedMap) and node:
        key = list(node.keys())[-1]
        value = node[key]
        if isinstance(value, CommentedMap) and value:
            node = value
            continue
        return node, key
    return None


def _move_trailing_comment(source: Any, target: Any) -> None:
    """Move the comment block that follows ``source`` (e.g. the drop rule's heading) to after ``target``."""
    holder = _last_key_holder(source)
    into = _last_key_holder(target)
    if holder is None or into is None:
        return
    node, key = holder
    entry = node.ca.items.get(key)
    if not entry or entry[2] is None:  # ruamel's comment entries have 4 slots; [2] follows the key
        return
    token, entry[2] = entry[2], None
    into_node, into_key = into
    slot = into_node.ca.items.setdefault(into_key, [None, None, None, None])
    slot[2] = token


def update_mapping(path: Path, metrics: Iterable[Metric], namespace: str, plain: bool = True) -> list[str]:
    """Add rules for every unmapped metric before the final drop rule; return the matches added.

    Raises:
        ValueError: the file does not parse (the message names the line), or has no ``mappings:`` list.
    """
    report = Report()
    rules = lint_mapping(path, report)
    if not rules and report.errors:
        first = report.errors[0]
        raise ValueError(f"{first.path}:{first.line}: {first.problem}")
    missing = missing_rules(rules, metrics, namespace, plain)
    if not missing:
        return []
    yaml = _yaml()
    document = yaml.load(path.read_text())
    mappings = document.get("mappings") if hasattr(document, "get") else None
    if mappings is None:
        raise ValueError(f"{path}: no `mappings:` list")
    drop_at = rules[-1].index if rules and rules[-1].action == "drop" else len(mappings)
    added, new = [], []
    for item in missing:
        lines = render_rule(item.metric, namespace, plain=item.plain)
        new.append(yaml.load("\n".join(line[2:] for line in lines))[0])
        added.append(new[-1]["match"])
    if 0 < drop_at < len(mappings):
        _move_trailing_comment(mappings[drop_at - 1], new[-1])
    for offset, rule in enumerate(new):
        mappings.insert(drop_at + offset, rule)
    modules = ", ".join(dict.fromkeys(item.metric.module for item in missing))
    heading = f"--- {modules} (added by `netauto-statsd mapping --update`: review buckets, ttl, help) ---"
    mappings.yaml_set_comment_before_after_key(drop_at, before=heading, indent=2)
    out = io.StringIO()
    yaml.dump(document, out)
    path.write_text(out.getvalue())
    return [str(match) for match in added]
