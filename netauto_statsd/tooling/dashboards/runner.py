"""Runner overview: active runs, throughput, failures, duration, output; and the pipeline-health row."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.tooling.dashboards.panels import (
    Q,
    Row,
    build,
    env_variable,
    graph,
    heat,
    quantiles,
    single,
    variable,
)
from netauto_statsd.tooling.dashboards.queries import (
    EXPORTER_JOB,
    FAILED_RUN_STATUSES,
    RANGE_WINDOW,
    Scope,
    exporter_rate,
    label_values,
    metric,
    one_of,
)

_FAILED = one_of(metric("runner.stop"), "status", FAILED_RUN_STATUSES)


def pipeline_row(scope: Scope) -> Row:
    """Client and exporter health: if these are not flat zero, every other panel under-counts."""
    lost = [
        Q(exporter_rate("statsd_exporter_udp_packet_drops_total"), "UDP packets dropped (buffer full)"),
        Q(
            exporter_rate("statsd_exporter_sample_errors_total", ("reason",), zero_if_absent=True),
            "bad sample {{reason}}",
        ),
        Q(exporter_rate("statsd_exporter_tag_errors_total"), "bad tags"),
        Q(exporter_rate("statsd_exporter_events_actions_total", (), 'action="drop"', True), "undeclared (dropped)"),
        Q(exporter_rate("statsd_exporter_events_conflict_total", ("type",), zero_if_absent=True), "conflict {{type}}"),
    ]
    return Row(
        "Metrics pipeline health",
        (
            single(
                "Exporters up",
                f"Scrape targets of job {EXPORTER_JOB} that answered the last scrape (up == 1). "
                "Below the number of exporters you run: some app metrics are missing.",
                "short",
                Q(f'sum(up{{job="{EXPORTER_JOB}"}})'),
            ),
            graph(
                "Client: samples sent altered",
                "Samples delivered, but not as the app gave them. Folded: tags replaced by 'other' because "
                "the metric hit its cap of distinct tag combinations (raise the cap in the catalog or drop "
                "the unbounded value). Not allowed/missing: a tag value outside its allowed set, sent as "
                "'other'. Sampled: a histogram context got more samples than one flush carries; they "
                "travel with an exact 1/n sample rate, so counts stay right. Zero is healthy.",
                "cps",
                [
                    Q(scope.rate("client.overflow", ("metric",)) + " or on() vector(0)", "{{metric}}"),
                    Q(scope.rate("client.unexpected_value", ("metric",)), "not allowed/missing {{metric}}"),
                    Q(scope.rate("client.sampled", ("metric",)), "sampled (exact counts) {{metric}}"),
                ],
                width=9,
            ),
            graph(
                "Client: samples lost",
                "Every sample the client did not deliver, by reason. Rejected: not in the catalog or not a "
                "usable value (production mode counts instead of raising: a code/catalog mismatch). "
                "Dropped: its metric group is disabled (NETAUTO_STATSD_DISABLE, on purpose) or more than "
                "sampling can carry. Send failures: datagrams the socket refused (exporter down, buffer "
                "full). Zero is healthy except for disabled groups.",
                "cps",
                [
                    Q(scope.rate("client.rejected", ("reason",)) + " or on() vector(0)", "{{reason}}"),
                    Q(scope.rate("client.dropped", ("reason",)), "dropped {{reason}}"),
                    Q(scope.rate("client.send_failures", ()), "send failures (datagrams)"),
                ],
                width=9,
            ),
            graph(
                "Exporter: samples received and events by action",
                "Samples parsed per second over every exporter, and mapping results: 'map' is normal, "
                "'drop' means a metric name no mapping rule declares.",
                "cps",
                [
                    Q(exporter_rate("statsd_exporter_samples_total"), "samples"),
                    Q(exporter_rate("statsd_exporter_events_actions_total", ("action",)), "{{action}}"),
                ],
            ),
            graph(
                "Exporter: losses",
                "Everything the exporters threw away, per second. All lines must stay at 0; alerts "
                "StatsdExporterPacketDrops / StatsdExporterDroppingEvents / StatsdExporterSampleErrors fire otherwise.",
                "cps",
                lost,
            ),
        ),
    )


def runner_overview() -> dm.Dashboard:
    """Runner lifecycle: active runs, throughput, failures, duration and output size."""
    s = Scope(("env",), ("site", "protocol"))
    by_site = ("site",)
    return build(
        "netauto-runner-overview",
        "NetAuto / Runner overview",
        "Runner executions by site and protocol: how many run now, how many fail, how long they take.",
        [
            env_variable("runner.start"),
            variable("site", "Site", label_values("runner.start", "site"), multi=True),
            variable("protocol", "Protocol", label_values("runner.start", "protocol"), multi=True),
        ],
        [
            Row(
                "Runs",
                (
                    single(
                        "Active runs",
                        "Runs started and not yet stopped: sum(starts) - sum(stops) over every exporter "
                        "(there is no gauge). Resets to a wrong value for a while if an exporter restarts "
                        "mid-run, so read it with the rates next to it.",
                        "short",
                        Q(s.active_runs()),
                    ),
                    single(
                        "Runs started in range",
                        "Runner executions started during the selected time range.",
                        "short",
                        Q(s.increase("runner.start")),
                    ),
                    single(
                        "Failed runs in range",
                        f"Share of finished runs whose status is {' or '.join(FAILED_RUN_STATUSES)} over the range.",
                        "percentunit",
                        Q(s.ratio("runner.stop", _FAILED, window=RANGE_WINDOW)),
                    ),
                    single(
                        "p95 run duration in range",
                        "95th percentile of runner execution time over the selected range (histogram buckets "
                        "summed over every exporter, then the quantile).",
                        "s",
                        Q(s.quantile(0.95, "runner.duration", window=RANGE_WINDOW)),
                    ),
                    graph(
                        "Starts, stops and errors per second",
                        "Runs started, finished (by status) and raising an exception, per second.",
                        "ops",
                        [
                            Q(s.rate("runner.start"), "started"),
                            Q(s.rate("runner.stop", ("status",)), "stopped {{status}}"),
                            Q(s.rate("runner.error"), "raised"),
                        ],
                    ),
                    graph(
                        "Failed run ratio by site",
                        f"Share of finished runs with status {' or '.join(FAILED_RUN_STATUSES)}, per site. "
                        "Alert NetautoRunnerErrorRatioHigh fires above 10 % for 10 minutes.",
                        "percentunit",
                        [Q(s.ratio("runner.stop", _FAILED, by_site), "{{site}}")],
                        max_=1,
                    ),
                    graph(
                        "Active runs by site",
                        "Runs started and not yet stopped, per site (starts minus stops).",
                        "short",
                        [Q(s.active_runs(by_site), "{{site}}")],
                    ),
                    graph(
                        "Exceptions by class",
                        "Runner executions that raised, per second, by exception class (capped per process).",
                        "ops",
                        [Q(s.rate("runner.error", ("error",)), "{{error}}")],
                    ),
                ),
            ),
            Row(
                "Duration",
                (
                    graph(
                        "Run duration p50 / p95 / p99",
                        "Quantiles of runner execution time over all selected sites and protocols.",
                        "s",
                        quantiles(s, "runner.duration"),
                    ),
                    heat(
                        "Run duration distribution",
                        "Runs per second in each duration bucket (buckets from the catalog, 0.1 s to 10 min).",
                        "s",
                        Q(s.buckets("runner.duration")),
                    ),
                    graph(
                        "p95 run duration by site and protocol",
                        "95th percentile of runner execution time per site and protocol.",
                        "s",
                        [Q(s.quantile(0.95, "runner.duration", ("site", "protocol")), "{{site}} {{protocol}}")],
                    ),
                    graph(
                        "Mean run duration by status",
                        "Average execution time by how the run ended (rate of _sum over rate of _count).",
                        "s",
                        [Q(s.mean("runner.duration", ("status",)), "{{status}}")],
                    ),
                ),
            ),
            Row(
                "Output",
                (
                    graph(
                        "Bytes processed per second by site",
                        "Output bytes processed by runners per second (rate of the histogram's _sum).",
                        "Bps",
                        [Q(s.rate("runner.bytes", by_site, suffix="_sum"), "{{site}}")],
                    ),
                    graph(
                        "Output per run p50 / p95 / p99",
                        "Quantiles of output bytes processed per runner execution.",
                        "bytes",
                        quantiles(s, "runner.bytes"),
                    ),
                ),
            ),
            pipeline_row(Scope(("env",))),
        ],
    )
