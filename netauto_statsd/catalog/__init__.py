"""The metric catalog: every metric netauto_statsd may send, as declared objects.

This package is the single source of truth. Built-in families are declared in
one module each (:mod:`.runner`, :mod:`.throughput`, :mod:`.liveview`,
:mod:`.http`, :mod:`.rq`, :mod:`.db`, :mod:`.client`); an app declares its own
metrics in its own module with the same API (:func:`counter`,
:func:`histogram`, :func:`gauge`), and they join the same registry the moment
that module is imported::

    from netauto_statsd.catalog import Tag, histogram

    CONFIG_PUSH_SECONDS = histogram(
        "config_push.duration",
        tags=(Tag("site", example="par1"),),
        unit="seconds",
        help="Time to push a configuration to a device.",
        prometheus_name="netauto_config_push_duration_seconds",
        buckets=(0.1, 0.5, 1.0, 5.0, 30.0),
    )
    CONFIG_PUSH_SECONDS.observe(0.42, site="par1")

Tools read the registry (:func:`all_metrics`) after importing the app's catalog
modules (:func:`load`). The emitter refuses anything not declared here,
``netauto-statsd check`` compares the statsd_exporter mapping and the Grafana
dashboards against it, the dashboards are generated from it and the docs table
is printed from it. Importing it loads no runtime module.

Naming: ``name`` is the statsd name *without* the namespace (``runner.start``);
on the wire it becomes ``<namespace>.<name>`` (``netauto.runner.start``).
``prometheus_name`` is the series the mapping must turn it into.
"""

from __future__ import annotations

# isort: off
# Registration order is catalog order (docs, mapping and dashboards follow it).
from netauto_statsd.catalog import runner, throughput, liveview, http, rq, db, client

# isort: on
from netauto_statsd.catalog.model import (
    CONSTANT_TAG_KEYS,
    DEFAULT_NAMESPACE,
    FORBIDDEN_TAG_KEYS,
    OVERFLOW_VALUE,
    PROCESS_TAG_KEY,
    CatalogError,
    Counter,
    Gauge,
    Histogram,
    Metric,
    MetricType,
    Tag,
)
from netauto_statsd.catalog.registry import (
    BY_NAME,
    all_metrics,
    app_metrics,
    counter,
    declare,
    exposed_series,
    find,
    gauge,
    get,
    groups,
    histogram,
    is_builtin,
    load,
    wire_name,
)
from netauto_statsd.catalog.shared import (
    BACKLOG_BYTES,
    DB_SECONDS,
    JOB_SECONDS,
    OUTPUT_BYTES,
    RUN_SECONDS,
    WEB_SECONDS,
)

#: The library's own families, one module each, in catalog order.
FAMILIES = (runner, throughput, liveview, http, rq, db, client)

#: The built-in metrics, in catalog order (app metrics are in :data:`BY_NAME`).
METRICS: tuple[Metric, ...] = tuple(m for m in BY_NAME.values() if is_builtin(m))

__all__ = [
    "BACKLOG_BYTES",
    "BY_NAME",
    "CONSTANT_TAG_KEYS",
    "DB_SECONDS",
    "DEFAULT_NAMESPACE",
    "FAMILIES",
    "FORBIDDEN_TAG_KEYS",
    "JOB_SECONDS",
    "METRICS",
    "OUTPUT_BYTES",
    "OVERFLOW_VALUE",
    "PROCESS_TAG_KEY",
    "RUN_SECONDS",
    "WEB_SECONDS",
    "CatalogError",
    "Counter",
    "Gauge",
    "Histogram",
    "Metric",
    "MetricType",
    "Tag",
    "all_metrics",
    "app_metrics",
    "counter",
    "declare",
    "exposed_series",
    "find",
    "gauge",
    "get",
    "groups",
    "histogram",
    "is_builtin",
    "load",
    "wire_name",
]
