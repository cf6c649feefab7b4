"""The four NetAuto dashboards: what each panel shows and why.

Queries come from :mod:`netauto_statsd.dashboards.queries` (catalog names in,
``sum by`` PromQL out); panels from :mod:`netauto_statsd.dashboards.panels`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.dashboards.panels import Q, Row, build, graph, heat, single, top, variable
from netauto_statsd.dashboards.queries import (
    EXPORTER_JOB,
    FAILED_RUN_STATUSES,
    RANGE_WINDOW,
    SERVER_ERROR_CLASSES,
    Scope,
    exporter_rate,
    label_values,
    metric,
    one_of,
)

QUANTILES = (0.5, 0.95, 0.99)
#: Devices shown in the top-N panel. The client caps distinct devices per process
#: (catalog ``max_combinations``) and folds the rest into ``other``, shown as such.
TOP_DEVICES = 10
_FAILED = one_of(metric("runner.stop"), "status", FAILED_RUN_STATUSES)
_5XX = one_of(metric("http.request"), "status_class", SERVER_ERROR_CLASSES)


def _env(source: str) -> gd.QueryVariable:
    return variable("env", "Environment", label_values(source, "env", ()), multi=False)


def _quantiles(scope: Scope, name: str) -> list[Q]:
    return [Q(scope.quantile(q, name), f"p{round(q * 100)}") for q in QUANTILES]


# --------------------------------------------------------------------- runner
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
                "Client: samples folded into 'other'",
                "Samples whose tags the client replaced by 'other' because the metric hit its cap of "
                "distinct tag combinations (cardinality guard). Raise the cap in the catalog or drop the "
                "unbounded tag value. Zero is healthy.",
                "cps",
                [Q(scope.rate("client.overflow", ("metric",)) + " or on() vector(0)", "{{metric}}")],
                width=9,
            ),
            graph(
                "Client: emissions rejected",
                "Emissions the client refused because they are not in the catalog (production mode "
                "counts instead of raising). Zero is healthy; anything else is a code/catalog mismatch.",
                "cps",
                [Q(scope.rate("client.rejected", ("reason",)) + " or on() vector(0)", "{{reason}}")],
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
            _env("runner.start"),
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
                        _quantiles(s, "runner.duration"),
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
                        _quantiles(s, "runner.bytes"),
                    ),
                ),
            ),
            pipeline_row(Scope(("env",))),
        ],
    )


# ------------------------------------------------------------------ live view
def liveview_health() -> dm.Dashboard:
    """Websocket live views: connect latency, sessions, traffic, backpressure, closes and errors."""
    s = Scope(("env",), ("view",))
    by_view = ("view",)
    return build(
        "netauto-liveview-health",
        "NetAuto / Live-view health",
        "Websocket live views that stream run output to browsers.",
        [_env("liveview.messages"), variable("view", "View", label_values("liveview.messages", "view"), multi=True)],
        [
            Row(
                "Connect",
                (
                    graph(
                        "Handshake latency p50 / p95 / p99",
                        "Time from the upgrade request to the 101 response.",
                        "s",
                        _quantiles(s, "liveview.handshake"),
                    ),
                    graph(
                        "Mount latency p50 / p95 / p99",
                        "Time from connect to the first message sent: what a user waits for the first output. "
                        "Alert NetautoLiveviewMountSlow fires when p95 > 0.5 s for 10 minutes.",
                        "s",
                        _quantiles(s, "liveview.mount"),
                    ),
                    graph(
                        "Mount latency p95 by view",
                        "95th percentile of mount time per live-view route template.",
                        "s",
                        [Q(s.quantile(0.95, "liveview.mount", by_view), "{{view}}")],
                    ),
                    heat(
                        "Mount latency distribution",
                        "Mounts per second in each latency bucket (1 ms to 5 s).",
                        "s",
                        Q(s.buckets("liveview.mount")),
                    ),
                ),
            ),
            Row(
                "Sessions and traffic",
                (
                    single(
                        "Connected sessions",
                        "Open live-view sessions now: each process reports its own count (tagged "
                        "process, expired 2 min after the process stops reporting), summed here.",
                        "short",
                        Q(s.current("liveview.sessions")),
                    ),
                    graph(
                        "Connected sessions by view",
                        "Open sessions per live-view route, summed over processes.",
                        "short",
                        [Q(s.current("liveview.sessions", by_view), "{{view}}")],
                        width=18,
                        height=4,
                    ),
                    graph(
                        "Messages per second",
                        "Websocket messages sent to and received from browsers.",
                        "cps",
                        [Q(s.rate("liveview.messages", ("direction",)), "{{direction}}")],
                    ),
                    graph(
                        "Messages per second by view",
                        "Websocket messages, both directions, per live-view route.",
                        "cps",
                        [Q(s.rate("liveview.messages", by_view), "{{view}}")],
                    ),
                ),
            ),
            Row(
                "Backpressure",
                (
                    graph(
                        "Send latency p50 / p95 / p99",
                        "How long a send waited for the transport to drain: rising values mean slow browsers "
                        "or a saturated network.",
                        "s",
                        _quantiles(s, "liveview.send_latency"),
                    ),
                    graph(
                        "Transport backlog p50 / p95 / p99",
                        "Outbound bytes still buffered in the transport, sampled at each send.",
                        "bytes",
                        _quantiles(s, "liveview.backlog"),
                    ),
                ),
            ),
            Row(
                "Closes and errors",
                (
                    graph(
                        "Closes by code class",
                        "Sessions closed per second, by websocket close code class: 'abnormal' and 'error' "
                        "are the ones to explain.",
                        "cps",
                        [Q(s.rate("liveview.close", ("code_class",)), "{{code_class}}")],
                    ),
                    graph(
                        "Streaming errors by kind",
                        "Errors while streaming to a live view, per second, by exception class (capped).",
                        "cps",
                        [Q(s.rate("liveview.error", ("kind",)), "{{kind}}")],
                    ),
                ),
            ),
        ],
    )


# ----------------------------------------------------------------- throughput
def command_throughput() -> dm.Dashboard:
    """Runs and output chunks: volume per site and protocol, busiest devices, bandwidth, run size."""
    s = Scope(("env",), ("site", "protocol"))
    sp = ("site", "protocol")
    return build(
        "netauto-command-throughput",
        "NetAuto / Command throughput",
        "How much work flows through NetAuto: runs created, output chunks and bytes.",
        [
            _env("run.created"),
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
                        _quantiles(s, "run.output_bytes"),
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


# ------------------------------------------------------- jobs, database, HTTP
def _jobs_row(s: Scope) -> Row:
    by_queue = ("queue",)
    return Row(
        "RQ jobs",
        (
            graph(
                "Queue depth",
                "Jobs waiting per queue. Every worker polls and reports the same registry size, so "
                "this is max over reporters, not sum. Alert NetautoRQBacklogHigh fires above 100 for 10 min.",
                "short",
                [Q(s.current("rq.queue.jobs", ("queue", "state"), agg="max"), "{{queue}} {{state}}")],
            ),
            graph(
                "Workers by state",
                "Workers per queue and state; each worker reports itself, so they are summed.",
                "short",
                [Q(s.current("rq.workers", ("queue", "state")), "{{queue}} {{state}}")],
            ),
            graph(
                "Enqueued, started and finished per second",
                "Job flow: enqueued vs started shows whether workers keep up; finished by outcome.",
                "ops",
                [
                    Q(s.rate("rq.job.enqueued", by_queue), "enqueued {{queue}}"),
                    Q(s.rate("rq.job.started", by_queue), "started {{queue}}"),
                    Q(s.rate("rq.job.finished", ("status",)), "finished {{status}}"),
                ],
            ),
            graph(
                "Job failures by exception",
                "Jobs that failed per second, by exception class (capped).",
                "ops",
                [Q(s.rate("rq.job.failure", ("exception",)), "{{exception}}")],
            ),
            graph(
                "Queue wait p50 / p95 / p99",
                "Time from enqueue to start. Alert NetautoRQJobWaitHigh fires when p95 > 60 s for 10 min.",
                "s",
                _quantiles(s, "rq.job.wait"),
            ),
            graph(
                "Job duration p95 by function",
                "95th percentile of job execution time per job function.",
                "s",
                [Q(s.quantile(0.95, "rq.job.duration", ("func",)), "{{func}}")],
            ),
        ),
    )


def _db_row(s: Scope) -> Row:
    by_op = ("operation",)
    return Row(
        "Database",
        (
            graph(
                "Queries per second by operation",
                "SQL statements executed, by statement kind.",
                "ops",
                [Q(s.rate("db.query", by_op), "{{operation}}")],
                width=8,
            ),
            graph(
                "Query latency p95 by operation",
                "95th percentile of statement execution time per statement kind.",
                "s",
                [Q(s.quantile(0.95, "db.query.duration", by_op), "{{operation}}")],
                width=8,
            ),
            graph(
                "Query errors by exception",
                "Statements that raised per second, by exception class.",
                "ops",
                [Q(s.rate("db.error", ("exception",)), "{{exception}}")],
                width=8,
            ),
            graph(
                "Pool connections",
                "Checked-out and overflow connections and configured size, summed over processes: "
                "checked_out close to size means requests wait for a connection.",
                "short",
                [Q(s.current("db.pool.connections", ("pool", "state")), "{{pool}} {{state}}")],
                width=8,
            ),
            graph(
                "Pool checkout wait p50 / p95 / p99",
                "Time to get a connection from the pool.",
                "s",
                _quantiles(s, "db.pool.checkout_wait"),
                width=8,
            ),
            graph(
                "Connections invalidated per second",
                "Pooled connections invalidated (server gone, network errors).",
                "ops",
                [Q(s.rate("db.pool.invalidated", ("pool",)), "{{pool}}")],
                width=8,
            ),
        ),
    )


def _http_row(s: Scope) -> Row:
    by_route = ("route",)
    return Row(
        "HTTP",
        (
            graph(
                "Requests per second by route",
                "Requests served per route template (never the raw path).",
                "reqps",
                [Q(s.rate("http.request", by_route), "{{route}}")],
                width=8,
            ),
            graph(
                "Requests per second by status class",
                "Requests served by HTTP status class.",
                "reqps",
                [Q(s.rate("http.request", ("status_class",)), "{{status_class}}")],
                width=8,
            ),
            graph(
                "5xx ratio by route",
                "Share of requests answered with a 5xx status, per route.",
                "percentunit",
                [Q(s.ratio("http.request", _5XX, by_route), "{{route}}")],
                width=8,
                max_=1,
            ),
            graph(
                "Latency p50 / p95 / p99",
                "Quantiles of request duration over the selected routes.",
                "s",
                _quantiles(s, "http.duration"),
                width=8,
            ),
            graph(
                "Latency p95 by route",
                "95th percentile of request duration per route template.",
                "s",
                [Q(s.quantile(0.95, "http.duration", by_route), "{{route}}")],
                width=8,
            ),
            graph(
                "Handler exceptions by class",
                "Handlers that raised per second, by exception class.",
                "reqps",
                [Q(s.rate("http.exception", ("exception",)), "{{exception}}")],
                width=8,
            ),
        ),
    )


def jobs_db_http() -> dm.Dashboard:
    """Background jobs (RQ), the database (SQLAlchemy) and the HTTP API (aiohttp)."""
    s = Scope(("env",), ("queue", "pool", "route"))
    return build(
        "netauto-jobs-db-http",
        "NetAuto / Jobs, database and HTTP",
        "RQ queues and jobs, SQL statements and the connection pool, HTTP routes.",
        [
            _env("http.request"),
            variable("queue", "Queue", label_values("rq.job.enqueued", "queue"), multi=True),
            variable("pool", "Pool", label_values("db.query", "pool"), multi=True),
            variable("route", "Route", label_values("http.request", "route"), multi=True),
        ],
        [_jobs_row(s), _db_row(s), _http_row(s)],
    )


#: file name -> builder, in the order they are documented.
DASHBOARDS = {
    "runner_overview.json": runner_overview,
    "liveview_health.json": liveview_health,
    "command_throughput.json": command_throughput,
    "jobs_db_http.json": jobs_db_http,
}
