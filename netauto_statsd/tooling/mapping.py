"""Render the statsd_exporter mapping the catalog implies.

``bridge/statsd_mapping.yml`` is owned by operators and committed; this renders
what the catalog says a new mapping contains (``netauto-statsd mapping``) and the
rules ``mapping --update`` adds for new metrics. The header states the split:
the catalog owns the contract, operators own the knobs. Reads the catalog only.
"""

from __future__ import annotations

import json

from netauto_statsd.catalog import DEFAULT_NAMESPACE, Metric, all_metrics, wire_name
from netauto_statsd.wire.base import segment_keys

HEADER = """\
# statsd_exporter v0.30.0 mapping for netauto_statsd - OWNED BY OPS, checked by CI.
#
# One contract, two owners.
#
# THE CONTRACT - not changed here. For every metric the app may send: its statsd
# name, type, unit, Prometheus series name and label names. Dashboards, alert
# rules and code depend on it. It is declared in Python: the built-in families in
# netauto_statsd/catalog/, an app's own metrics in the app's catalog module
# (`netauto-statsd catalog --json --catalog myapp.metrics` shows each metric's
# "module"). To rename a series or change a type or a label, change that
# declaration and the dashboards, then run `mapping --update` on this file.
#
# THE KNOBS - yours, edit them freely:
#   * histogram buckets (`histogram_options`, or native-histogram options), in
#     SECONDS or BYTES, the same in both twin rules of a series;
#   * `ttl` of per-process gauges (at least 30s; 2m-5m is typical);
#   * `help` text (the same in both twin rules);
#   * `observer_type: summary` for a histogram that no dashboard or alert reads
#     as `_bucket`;
#   * rules for other senders and drop rules, anywhere before the final drop
#     rule; comments; the order of rules.
#
# Editing safely:
#   * v0.30.0 silently IGNORES unknown keys: a typo such as `label:` does nothing.
#   * Glob `*` matches one whole dot segment; `prefix_*` is invalid; write
#     `${1}_suffix`, never `$1_suffix` (it expands to nothing).
#   * All glob rules are tried before any regex rule, whatever the file order.
#   * Label names need 2+ characters; never create `le`, `quantile`, `job`,
#     `instance` or `__*` labels.
#   * Durations and sizes are histograms with explicit buckets in SECONDS or
#     BYTES (summaries cannot be aggregated across exporters).
#   * Per-process gauges carry a `ttl` so a dead process's series disappears.
#   * Each metric has two rules: its DogStatsD name (tags -> labels) and its
#     plain-StatsD form (tags as dot segments -> labels). Keep them in step:
#     the exporter refuses one of two rules that disagree on help or buckets.
#   * The last rule drops anything unmapped, so no mangled default name ever
#     reaches a dashboard. Drops are visible as
#     statsd_exporter_events_actions_total{action="drop"} (alerted on).
#
# Check after every edit (exit 0 = safe to deploy, 1 = a finding, 3 = a proof
# was skipped); a contract finding names the catalog module to change, a knob
# finding the line of this file:
#   netauto-statsd check --mapping bridge/statsd_mapping.yml
# A metric was added to a catalog? Add its rules, keeping every edit here:
#   netauto-statsd mapping --update bridge/statsd_mapping.yml
# What this file lacks or contradicts in the contract:
#   netauto-statsd mapping --diff bridge/statsd_mapping.yml
# (add `--catalog myapp.metrics` to each, or set it once in pyproject.toml:
# [tool.netauto-statsd] catalog = ["myapp.metrics"])
#
# Bucket choices (per family, see netauto_statsd/catalog/): runner runs take
# 0.1 s to 10 min; web/live-view latencies 1 ms to 5 s; SQL 0.1 ms to 1 s; RQ
# jobs and queue wait 10 ms to 15 min; output sizes 256 B to 16 MiB; transport
# backlog 0 to 4 MiB.
"""


def _number(value: float) -> str:
    return json.dumps(value)


def match_metric_type(metric: Metric) -> str:
    """The exporter's ``match_metric_type`` for ``metric`` (histograms arrive as observers)."""
    return "observer" if metric.type == "histogram" else metric.type


def plain_match(metric: Metric, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Glob matching the plain-StatsD encoding of ``metric``: one ``*`` per tag segment."""
    return ".".join([wire_name(metric, namespace)] + ["*"] * len(segment_keys(metric)))


def render_rule(metric: Metric, namespace: str = DEFAULT_NAMESPACE, plain: bool = False) -> list[str]:
    """Return the YAML lines of the rule mapping ``metric`` (its plain-StatsD form if ``plain``)."""
    match = plain_match(metric, namespace) if plain else wire_name(metric, namespace)
    lines = [
        f'  - match: "{match}"',
        f"    match_metric_type: {match_metric_type(metric)}",
        f'    name: "{metric.prometheus_name}"',
        f"    help: {json.dumps(metric.help)}",
    ]
    if plain:
        lines.append("    labels:")
        lines += [f'      {key}: "${{{i}}}"' for i, key in enumerate(segment_keys(metric), start=1)]
    if metric.type == "histogram":
        buckets = ", ".join(_number(b) for b in metric.buckets)
        lines += ["    observer_type: histogram", "    histogram_options:", f"      buckets: [{buckets}]"]
    if metric.ttl:
        lines.append(f"    ttl: {metric.ttl}")
    return lines


DROP_RULE = [
    "  # Anything not declared above: drop it (counted in",
    '  # statsd_exporter_events_actions_total{action="drop"}).',
    '  - match: "."',
    "    match_type: regex",
    "    action: drop",
    '    name: "dropped"',
]


PLAIN_HEADER = [
    "",
    "  # ===== plain StatsD (NETAUTO_STATSD_TRANSPORT=statsd): tags travel as name",
    "  # segments in catalog order, then env and service. Same series, same labels.",
    "  # Timers (|ms) are divided by 1000 by the exporter; the client sends x1000.",
]


def render_mapping(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Return the whole mapping file the catalog implies."""
    out = [HEADER, "defaults:", "  observer_type: histogram", "  match_type: glob", "", "mappings:"]
    for plain in (False, True):
        if plain:
            out += PLAIN_HEADER
        area = ""
        for metric in all_metrics():
            if metric.area != area:
                area = metric.area
                out.append(f"  # --- {area}{' (plain)' if plain else ''} ---")
            out += render_rule(metric, namespace, plain)
    out += DROP_RULE
    return "\n".join(out) + "\n"
