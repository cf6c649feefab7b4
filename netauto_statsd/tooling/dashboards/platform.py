"""Jobs, database and HTTP: RQ queues and jobs, SQL and the pool, HTTP routes."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.tooling.dashboards.panels import Q, Row, build, env_variable, graph, quantiles, variable
from netauto_statsd.tooling.dashboards.queries import SERVER_ERROR_CLASSES, Scope, label_values, metric, one_of

_5XX = one_of(metric("http.request"), "status_class", SERVER_ERROR_CLASSES)


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
                quantiles(s, "rq.job.wait"),
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
                quantiles(s, "db.pool.checkout_wait"),
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
                quantiles(s, "http.duration"),
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
            env_variable("http.request"),
            variable("queue", "Queue", label_values("rq.job.enqueued", "queue"), multi=True),
            variable("pool", "Pool", label_values("db.query", "pool"), multi=True),
            variable("route", "Route", label_values("http.request", "route"), multi=True),
        ],
        [_jobs_row(s), _db_row(s), _http_row(s)],
    )


#: file name -> builder, in the order they are documented.
