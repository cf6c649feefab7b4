"""The metric catalog: every metric netauto_statsd may send, as declared objects.

This package is the single source of truth. Built-in families are declared here;
an app declares its own metrics in its own module with the same API
(:func:`counter`, :func:`histogram`, :func:`gauge`), and they join the same
registry the moment that module is imported::

    from netauto_statsd.catalog import Tag, histogram

    CONFIG_PUSH_SECONDS = histogram(
        "config_push.duration",
        tags=(Tag("site", example="par1"),),
        unit="seconds",
        help="Time to push a configuration to a device.",
        prometheus_name="netauto_config_push_duration_seconds",
        buckets=(0.1, 0.5, 1.0, 5.0, 30.0),
    )

Tools read the registry (:func:`all_metrics`) after importing the app's catalog
modules (:func:`load`). The emitter refuses anything not
declared here, ``netauto-statsd check`` compares the statsd_exporter mapping and
the Grafana dashboards against it, the dashboards are generated from it and the
docs table is printed from it. It imports nothing of ours.

Naming: ``name`` is the statsd name *without* the namespace (``runner.start``);
on the wire it becomes ``<namespace>.<name>`` (``netauto.runner.start``).
``prometheus_name`` is the series the mapping must turn it into.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]

#: Namespace prefixed to every statsd name unless configured otherwise.
DEFAULT_NAMESPACE = "netauto"

#: Value a tag takes when it is not in its allowed set, or when a metric has
#: reached its cap of distinct tag combinations.
OVERFLOW_VALUE = "other"

#: Tags attached to every sample by the emitter (values from configuration).
CONSTANT_TAG_KEYS: tuple[str, ...] = ("env", "service")

#: Tag added by the emitter to per-process gauges (see ``Metric.per_process``).
PROCESS_TAG_KEY = "process"

#: Never valid as tag keys: they crash the exporter, break /metrics, or are
#: rewritten by Prometheus. Keys starting with ``__`` are refused as well.
FORBIDDEN_TAG_KEYS = frozenset({"le", "quantile", "job", "instance", "run_id", "device_id"})

# Buckets, in the unit of the metric (seconds or bytes). Each family gets its own
# range because one set cannot resolve both a 2 ms query and a 10 min device run.
RUN_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WEB_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DB_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
JOB_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
OUTPUT_BYTES = (256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0)
BACKLOG_BYTES = (0.0, 1024.0, 8192.0, 65536.0, 262144.0, 1048576.0, 4194304.0)


class CatalogError(ValueError):
    """A metric, type or tag the catalog does not declare (strict mode), or a conflicting declaration."""


@dataclass(frozen=True)
class Tag:
    """A tag key a metric accepts.

    Attributes:
        key: the tag key, also the Prometheus label name.
        values: the allowed values; anything else becomes ``OVERFLOW_VALUE``.
            ``None`` means free text, normalised and capped by the emitter.
        help: what the value means, for the docs.
        example: a realistic value, used by ``check`` and the docs.
    """

    key: str
    values: tuple[str, ...] | None = None
    help: str = ""
    example: str = ""

    def sample_value(self) -> str:
        """Return a realistic value for this tag (the example or first allowed value)."""
        if self.example:
            return self.example
        return self.values[0] if self.values else "x"


@dataclass(frozen=True)
class Metric:
    """One declared metric.

    Attributes:
        name: statsd name without namespace, e.g. ``runner.start``.
        type: ``counter``, ``gauge`` or ``histogram`` (sent as DogStatsD ``|h``).
        tags: the tag keys the metric accepts, in a fixed order.
        unit: ``seconds``, ``bytes`` or ``1`` (a count).
        help: one line for Prometheus HELP and the docs.
        prometheus_name: the series the mapping must produce (base name for
            histograms; ``_bucket``/``_sum``/``_count`` are added by Prometheus).
        buckets: histogram buckets in ``unit``.
        max_combinations: cap on distinct tag-value combinations this process
            sends; the excess is folded into ``OVERFLOW_VALUE`` and counted.
        per_process: gauges only. The value is absolute per process and tagged
            with ``process`` (host-pid); the exporter expires it after ``ttl``
            and dashboards ``sum`` it. Re-sent at every flush while it lives.
        ttl: gauge expiry in the mapping (e.g. ``2m``); ``""`` for none.
        area: grouping for docs and dashboards.
    """

    name: str
    type: MetricType
    tags: tuple[Tag, ...]
    unit: str
    help: str
    prometheus_name: str
    buckets: tuple[float, ...] = ()
    max_combinations: int = 500
    per_process: bool = False
    ttl: str = ""
    area: str = "core"
    #: dotted name of the module that declared it (the owner a contract finding points at)
    module: str = "netauto_statsd.catalog"
    tag_keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag_keys", tuple(t.key for t in self.tags))

    def label_names(self) -> tuple[str, ...]:
        """All Prometheus label names of the series, constant and process tags included."""
        extra = (PROCESS_TAG_KEY,) if self.per_process else ()
        return tuple(sorted(self.tag_keys + CONSTANT_TAG_KEYS + extra))


def _t(key: str, values: tuple[str, ...] | None = None, help: str = "", example: str = "") -> Tag:
    return Tag(key, values, help, example)


SITE = _t("site", None, "site of the device (bounded by the number of sites)", "par1")
PROTOCOL = _t("protocol", ("ssh", "telnet", "netconf", "restconf", "grpc", "snmp"), "how the device is reached")
RUN_STATUS = _t("status", ("ok", "error", "timeout", "cancelled"), "how the run ended")
ERROR = _t("error", None, "exception class name (capped)", "TimeoutError")
VIEW = _t("view", None, "live-view route template", "/runs/{run_id}/live")
DEVICE = _t("device", None, "device name; capped per process, the excess reads 'other'", "edge-router-1")
METHOD = _t("method", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), "HTTP method")
ROUTE = _t("route", None, "route template, never the raw path; unmatched is 'unmatched'", "/api/devices")
STATUS_CLASS = _t("status_class", ("1xx", "2xx", "3xx", "4xx", "5xx"), "HTTP status class")
EXCEPTION = _t("exception", None, "exception class name (capped)", "ValueError")
QUEUE = _t("queue", None, "RQ queue name", "default")
FUNC = _t("func", None, "job function dotted name (capped)", "netauto_demo.jobs.execute_run")
OPERATION = _t("operation", ("select", "insert", "update", "delete", "other"), "SQL statement kind")
TABLE = _t("table", None, "first table the statement names (capped)", "runs")
POOL = _t("pool", None, "engine name given at instrumentation", "default")

_RUN = (SITE, PROTOCOL)

METRICS: tuple[Metric, ...] = (
    # --- runner lifecycle (seed: [:net_auto, :runner, :start | :stop | :error]) ---
    Metric(
        "runner.start", "counter", _RUN, "1", "Runner executions started.", "netauto_runner_starts_total", area="runner"
    ),
    Metric(
        "runner.stop",
        "counter",
        (*_RUN, RUN_STATUS),
        "1",
        "Runner executions finished, by status.",
        "netauto_runner_stops_total",
        area="runner",
    ),
    Metric(
        "runner.error",
        "counter",
        (*_RUN, ERROR),
        "1",
        "Runner executions that raised, by exception class.",
        "netauto_runner_errors_total",
        area="runner",
        max_combinations=200,
    ),
    Metric(
        "runner.duration",
        "histogram",
        (*_RUN, RUN_STATUS),
        "seconds",
        "Runner execution time.",
        "netauto_runner_duration_seconds",
        RUN_SECONDS,
        area="runner",
    ),
    Metric(
        "runner.bytes",
        "histogram",
        (*_RUN, RUN_STATUS),
        "bytes",
        "Output bytes processed per runner execution.",
        "netauto_runner_processed_bytes",
        OUTPUT_BYTES,
        area="runner",
    ),
    # --- device / command throughput (seed: create_run/1, append_chunk/1) ---
    Metric("run.created", "counter", _RUN, "1", "Runs created.", "netauto_runs_created_total", area="throughput"),
    Metric(
        "run.device",
        "counter",
        (DEVICE,),
        "1",
        "Runs created per device (top devices; capped, excess is 'other').",
        "netauto_device_runs_total",
        max_combinations=100,
        area="throughput",
    ),
    Metric(
        "run.output_bytes",
        "histogram",
        _RUN,
        "bytes",
        "Output bytes per finished run.",
        "netauto_run_output_bytes",
        OUTPUT_BYTES,
        area="throughput",
    ),
    Metric(
        "chunk.appended",
        "counter",
        _RUN,
        "1",
        "Output chunks appended to runs.",
        "netauto_chunks_appended_total",
        area="throughput",
    ),
    Metric(
        "chunk.bytes",
        "counter",
        _RUN,
        "bytes",
        "Bytes of output chunks appended to runs.",
        "netauto_chunk_bytes_total",
        area="throughput",
    ),
    # --- live views (seed: PromEx LiveView plugin + custom mount event) ---
    Metric(
        "liveview.handshake",
        "histogram",
        (VIEW,),
        "seconds",
        "Websocket handshake time (request to 101 sent).",
        "netauto_liveview_handshake_seconds",
        WEB_SECONDS,
        area="liveview",
    ),
    Metric(
        "liveview.mount",
        "histogram",
        (VIEW,),
        "seconds",
        "Mount time: connect to first message sent.",
        "netauto_liveview_mount_seconds",
        WEB_SECONDS,
        area="liveview",
    ),
    Metric(
        "liveview.sessions",
        "gauge",
        (VIEW,),
        "1",
        "Connected live-view sessions (per process, summed).",
        "netauto_liveview_sessions",
        per_process=True,
        ttl="2m",
        area="liveview",
    ),
    Metric(
        "liveview.messages",
        "counter",
        (VIEW, _t("direction", ("sent", "received"), "message direction")),
        "1",
        "Websocket messages sent and received.",
        "netauto_liveview_messages_total",
        area="liveview",
    ),
    Metric(
        "liveview.send_latency",
        "histogram",
        (VIEW,),
        "seconds",
        "Sends that waited >= 1 ms (backpressure), by wait; every send is counted in messages.",
        "netauto_liveview_send_latency_seconds",
        WEB_SECONDS,
        area="liveview",
    ),
    Metric(
        "liveview.backlog",
        "histogram",
        (VIEW,),
        "bytes",
        "Outbound bytes buffered in the transport, sampled at most every 0.25 s per sending session.",
        "netauto_liveview_backlog_bytes",
        BACKLOG_BYTES,
        area="liveview",
    ),
    Metric(
        "liveview.close",
        "counter",
        (VIEW, _t("code_class", ("normal", "going_away", "abnormal", "error"), "websocket close code class")),
        "1",
        "Live-view sessions closed, by close code class.",
        "netauto_liveview_closes_total",
        area="liveview",
    ),
    Metric(
        "liveview.error",
        "counter",
        (VIEW, _t("kind", None, "error kind (exception class, capped)", "ConnectionResetError")),
        "1",
        "Live-view streaming errors.",
        "netauto_liveview_errors_total",
        max_combinations=200,
        area="liveview",
    ),
    # --- HTTP (seed: PromEx Phoenix plugin) ---
    Metric(
        "http.request",
        "counter",
        (METHOD, ROUTE, STATUS_CLASS),
        "1",
        "HTTP requests served.",
        "netauto_http_requests_total",
        area="http",
    ),
    Metric(
        "http.duration",
        "histogram",
        (METHOD, ROUTE, STATUS_CLASS),
        "seconds",
        "HTTP request duration.",
        "netauto_http_request_duration_seconds",
        WEB_SECONDS,
        area="http",
    ),
    Metric(
        "http.exception",
        "counter",
        (METHOD, ROUTE, EXCEPTION),
        "1",
        "HTTP handlers that raised, by exception class.",
        "netauto_http_exceptions_total",
        max_combinations=200,
        area="http",
    ),
    # --- RQ jobs (seed: PromEx Oban plugin) ---
    Metric(
        "rq.job.enqueued", "counter", (QUEUE, FUNC), "1", "Jobs enqueued.", "netauto_rq_jobs_enqueued_total", area="rq"
    ),
    Metric(
        "rq.job.started",
        "counter",
        (QUEUE, FUNC),
        "1",
        "Jobs started by a worker.",
        "netauto_rq_jobs_started_total",
        area="rq",
    ),
    Metric(
        "rq.job.finished",
        "counter",
        (QUEUE, FUNC, _t("status", ("succeeded", "failed", "stopped", "retried", "abandoned"), "job outcome")),
        "1",
        "Jobs finished, by outcome.",
        "netauto_rq_jobs_finished_total",
        area="rq",
    ),
    Metric(
        "rq.job.failure",
        "counter",
        (QUEUE, FUNC, EXCEPTION),
        "1",
        "Job failures by exception class.",
        "netauto_rq_job_failures_total",
        max_combinations=200,
        area="rq",
    ),
    Metric(
        "rq.job.duration",
        "histogram",
        (QUEUE, FUNC, _t("status", ("succeeded", "failed", "stopped", "retried"), "job outcome")),
        "seconds",
        "Job execution time.",
        "netauto_rq_job_duration_seconds",
        JOB_SECONDS,
        area="rq",
    ),
    Metric(
        "rq.job.wait",
        "histogram",
        (QUEUE, FUNC),
        "seconds",
        "Queue wait: started_at - enqueued_at.",
        "netauto_rq_job_wait_seconds",
        JOB_SECONDS,
        area="rq",
    ),
    Metric(
        "rq.queue.jobs",
        "gauge",
        (QUEUE, _t("state", ("queued", "started", "failed", "deferred", "scheduled"), "job registry")),
        "1",
        "Jobs per queue and state, polled by workers (use max, not sum, across reporters).",
        "netauto_rq_queue_jobs",
        per_process=True,
        ttl="1m",
        area="rq",
    ),
    Metric(
        "rq.workers",
        "gauge",
        (QUEUE, _t("state", ("busy", "idle"), "worker state")),
        "1",
        "Workers per queue and state, each worker reporting itself.",
        "netauto_rq_workers",
        per_process=True,
        ttl="1m",
        area="rq",
    ),
    # --- SQLAlchemy (seed: PromEx Ecto plugin) ---
    Metric(
        "db.query",
        "counter",
        (POOL, OPERATION, TABLE),
        "1",
        "SQL statements executed.",
        "netauto_db_queries_total",
        area="db",
    ),
    Metric(
        "db.query.duration",
        "histogram",
        (POOL, OPERATION, TABLE),
        "seconds",
        "SQL statement execution time.",
        "netauto_db_query_duration_seconds",
        DB_SECONDS,
        area="db",
    ),
    Metric(
        "db.error",
        "counter",
        (POOL, OPERATION, EXCEPTION),
        "1",
        "SQL statements that raised, by exception class.",
        "netauto_db_errors_total",
        max_combinations=200,
        area="db",
    ),
    Metric(
        "db.pool.connections",
        "gauge",
        (POOL, _t("state", ("checked_out", "overflow", "size"), "pool figure")),
        "1",
        "Connection pool: checked out, overflow in use, configured size.",
        "netauto_db_pool_connections",
        per_process=True,
        ttl="2m",
        area="db",
    ),
    Metric(
        "db.pool.checkout_wait",
        "histogram",
        (POOL,),
        "seconds",
        "Time to check a connection out of the pool.",
        "netauto_db_pool_checkout_wait_seconds",
        DB_SECONDS,
        area="db",
    ),
    Metric(
        "db.pool.invalidated",
        "counter",
        (POOL,),
        "1",
        "Pooled connections invalidated.",
        "netauto_db_pool_invalidations_total",
        area="db",
    ),
    # --- the client itself: nothing is dropped silently ---
    Metric(
        "client.overflow",
        "counter",
        (_t("metric", None, "catalog metric name (dots as _)", "runner_error"),),
        "1",
        "Samples whose tags were folded into 'other' by the cardinality cap.",
        "netauto_client_cardinality_overflow_total",
        area="client",
    ),
    Metric(
        "client.rejected",
        "counter",
        (_t("reason", ("unknown_metric", "unknown_tag", "bad_value"), "why"),),
        "1",
        "Emissions refused by the catalog check (production mode).",
        "netauto_client_rejected_total",
        area="client",
    ),
)

#: Every declared metric by statsd name: the built-ins, then whatever app catalog
#: modules have been imported. Live: the emitter and the tools read it directly.
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
_registry_lock = threading.Lock()


def declare(metric: Metric) -> Metric:
    """Add ``metric`` to the registry and return it.

    Declaring the same metric twice (a module imported again) is harmless;
    declaring a different metric under a name or Prometheus series already taken
    raises :class:`CatalogError` naming both modules - at import time, not at
    the first emission.
    """
    with _registry_lock:
        existing = BY_NAME.get(metric.name)
        if existing is not None:
            if existing == metric:
                return existing
            raise CatalogError(
                f"metric {metric.name!r} declared in {metric.module} is already declared differently "
                f"in {existing.module}"
            )
        for other in BY_NAME.values():
            if other.prometheus_name == metric.prometheus_name:
                raise CatalogError(
                    f"series {metric.prometheus_name!r} of {metric.name!r} ({metric.module}) is already produced "
                    f"by {other.name!r} ({other.module})"
                )
        BY_NAME[metric.name] = metric
    return metric


def all_metrics() -> tuple[Metric, ...]:
    """Every declared metric: built-ins first, then app metrics in declaration order."""
    return tuple(BY_NAME.values())


def app_metrics() -> tuple[Metric, ...]:
    """The metrics declared outside the library."""
    builtin = set(id(m) for m in METRICS)
    return tuple(m for m in BY_NAME.values() if id(m) not in builtin)


def find(name: str) -> Metric | None:
    """The declared metric ``name`` (without namespace), or ``None``."""
    return BY_NAME.get(name)


def load(modules: Iterable[str]) -> tuple[Metric, ...]:
    """Import app catalog modules (dotted paths) so their declarations register.

    Returns every declared metric afterwards.

    Raises:
        CatalogError: a module cannot be imported (the message names it and why).
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except CatalogError:
            raise
        except Exception as exc:
            raise CatalogError(f"cannot import catalog module {module!r}: {type(exc).__name__}: {exc}") from exc
    return all_metrics()


def _caller_module() -> str:
    frame = sys._getframe(3)  # _caller_module <- _declare_kind <- counter/histogram/gauge <- the declaring module
    return str(frame.f_globals.get("__name__", "__main__"))


def _declare_kind(kind: MetricType, name: str, **fields: object) -> Metric:
    fields.setdefault("module", _caller_module())
    fields.setdefault("area", "app")
    tags = fields.pop("tags", ())
    return declare(Metric(name, kind, tuple(tags), **fields))  # type: ignore[arg-type]


def counter(
    name: str,
    *,
    tags: Iterable[Tag] = (),
    unit: str = "1",
    help: str,
    prometheus_name: str,
    max_combinations: int = 500,
    area: str = "app",
) -> Metric:
    """Declare a counter (summed across processes; Prometheus series should end in ``_total``)."""
    return _declare_kind(
        "counter",
        name,
        tags=tags,
        unit=unit,
        help=help,
        prometheus_name=prometheus_name,
        max_combinations=max_combinations,
        area=area,
    )


def histogram(
    name: str,
    *,
    tags: Iterable[Tag] = (),
    unit: str,
    help: str,
    prometheus_name: str,
    buckets: Iterable[float],
    max_combinations: int = 500,
    area: str = "app",
) -> Metric:
    """Declare a histogram; ``unit`` is ``seconds`` or ``bytes`` and values are sent in it, never ``|ms``."""
    return _declare_kind(
        "histogram",
        name,
        tags=tags,
        unit=unit,
        help=help,
        prometheus_name=prometheus_name,
        buckets=tuple(float(b) for b in buckets),
        max_combinations=max_combinations,
        area=area,
    )


def gauge(
    name: str,
    *,
    tags: Iterable[Tag] = (),
    unit: str = "1",
    help: str,
    prometheus_name: str,
    per_process: bool = True,
    ttl: str = "2m",
    max_combinations: int = 500,
    area: str = "app",
) -> Metric:
    """Declare a gauge; per-process by default (tagged ``process``, expired by the mapping's ``ttl``)."""
    return _declare_kind(
        "gauge",
        name,
        tags=tags,
        unit=unit,
        help=help,
        prometheus_name=prometheus_name,
        per_process=per_process,
        ttl=ttl if per_process else "",
        max_combinations=max_combinations,
        area=area,
    )


def get(name: str) -> Metric:
    """Return the declared metric ``name`` (without namespace).

    Raises:
        KeyError: the metric is not in the catalog.
    """
    return BY_NAME[name]


def wire_name(metric: Metric, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Return the full statsd name as sent, e.g. ``netauto.runner.start``."""
    return f"{namespace}.{metric.name}" if namespace else metric.name


def exposed_series(metric: Metric) -> tuple[str, ...]:
    """Return every Prometheus series name the metric produces at the exporter."""
    if metric.type == "histogram":
        base = metric.prometheus_name
        return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
    return (metric.prometheus_name,)
