"""Command throughput: runs per site and protocol, busiest devices, chunks, bandwidth, run size."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.tooling.dashboards.panels import Q, Row, build, env_variable, graph, quantiles, top, variable
from netauto_statsd.tooling.dashboards.queries import Scope, label_values

#: Devices shown in the top-N panel. The client caps distinct devices per process
#: (catalog ``max_combinations``) and folds the rest into ``other``, shown as such.
TOP_DEVICES = 10


def command_throughput() -> dm.Dashboard:
    """Runs and output chunks: volume per site and protocol, busiest devices, bandwidth, run size."""
    s = Scope(("env",), ("site", "protocol"))
    sp = ("site", "protocol")
    return build(
        "netauto-command-throughput",
        "NetAuto / Command throughput",
        "How much work flows through NetAuto: runs created, output chunks and bytes.",
        [
            env_variable("run.created"),
            variable("site", "Site", label_values("run.created", "site"), multi=True),
            variable("protocol", "Protocol", label_values("run.created", "protocol"), multi=True),
        ],
        [
            Row(
                "Runs",
                (
                    graph(
                        "Runs created per second by site and protocol",
                        "Runs created, per site and protocol.",
                        "ops",
                        [Q(s.rate("run.created", sp), "{{site}} {{protocol}}")],
                    ),
                    top(
                        f"Top {TOP_DEVICES} devices by runs in range",
                        "Runs created per device over the selected range. Device is a capped tag: each "
                        "process reports its first 100 devices by name and folds the rest into 'other' "
                        "(design.md, Cardinality), so 'other' can rank high on large fleets. Not filtered "
                        "by site/protocol: the device tag travels alone.",
                        "short",
                        Q(f"topk({TOP_DEVICES}, {s.increase('run.device', ('device',))})", "{{device}}"),
                    ),
                ),
            ),
            Row(
                "Output chunks",
                (
                    graph(
                        "Chunks appended per second by site",
                        "Output chunks appended to runs, per site.",
                        "cps",
                        [Q(s.rate("chunk.appended", ("site",)), "{{site}}")],
                        width=8,
                    ),
                    graph(
                        "Output bandwidth by site",
                        "Bytes of output chunks appended per second, per site.",
                        "Bps",
                        [Q(s.rate("chunk.bytes", ("site",)), "{{site}}")],
                        width=8,
                    ),
                    graph(
                        "Mean chunk size by protocol",
                        "Bytes per chunk: chunk bytes rate over chunk count rate.",
                        "bytes",
                        [Q(f"{s.rate('chunk.bytes', ('protocol',))} / {s.rate('chunk.appended', ('protocol',))}")],
                        width=8,
                    ),
                ),
            ),
            Row(
                "Bytes per run",
                (
                    graph(
                        "Output bytes per run p50 / p95 / p99",
                        "Quantiles of total output per finished run.",
                        "bytes",
                        quantiles(s, "run.output_bytes"),
                    ),
                    graph(
                        "Mean output bytes per run by protocol",
                        "Average output per finished run, per protocol.",
                        "bytes",
                        [Q(s.mean("run.output_bytes", ("protocol",)), "{{protocol}}")],
                    ),
                ),
            ),
        ],
    )
