"""The Prometheus series the stack exposes: the catalog's, the exporter's own, and ``up``.

Shared knowledge of ``check`` (dashboard and rule queries may only name these),
the dashboard generator and the rule checks; it lives here so no tool reaches
into another sideways. Reads the live catalog registry, so app metrics loaded
with :func:`netauto_statsd.catalog.load` count too.
"""

from __future__ import annotations

from collections.abc import Iterable

from netauto_statsd.catalog import Metric, all_metrics, exposed_series

#: Exporter self-metrics the dashboards and alerts read (``statsd_exporter`` v0.30.0), with their labels.
EXPORTER_SERIES: dict[str, tuple[str, ...]] = {
    "statsd_exporter_samples_total": (),
    "statsd_exporter_udp_packet_drops_total": (),
    "statsd_exporter_tag_errors_total": (),
    "statsd_exporter_events_unmapped_total": (),
    "statsd_exporter_sample_errors_total": ("reason",),
    "statsd_exporter_events_actions_total": ("action",),
    "statsd_exporter_events_conflict_total": ("type",),
    "statsd_exporter_events_error_total": ("reason",),
}
#: Prometheus' own per-target series, and the exporter's Go process collector (restart alerts).
SCRAPE_SERIES: dict[str, tuple[str, ...]] = {"up": (), "process_start_time_seconds": ()}
#: ``job_name`` of the exporter in bridge/prometheus.yml.
EXPORTER_JOB = "statsd-exporter"


def catalog_series(metrics: Iterable[Metric] | None = None) -> dict[str, tuple[str, ...]]:
    """Every series the catalog's metrics become at the exporter, with label names (``le`` on buckets)."""
    out: dict[str, tuple[str, ...]] = {}
    for m in all_metrics() if metrics is None else metrics:
        for series in exposed_series(m):
            out[series] = m.label_names() + (("le",) if series.endswith("_bucket") else ())
    return out


def known_series(metrics: Iterable[Metric] | None = None) -> dict[str, tuple[str, ...]]:
    """Every series a dashboard or alert may read, with its labels.

    The catalog's series as the mapping exposes them, the exporter self-metrics
    and ``up``. Prometheus adds ``job`` and ``instance`` to all of them.
    """
    return {**catalog_series(metrics), **EXPORTER_SERIES, **SCRAPE_SERIES}


def rule_series(name: str, labels: Iterable[str], observer: bool) -> dict[str, tuple[str, ...]]:
    """The series a mapping rule for another sender produces (its labels as the rule names them)."""
    labels = tuple(sorted(labels))
    if not observer:
        return {name: labels}
    return {f"{name}_bucket": (*labels, "le"), f"{name}_sum": labels, f"{name}_count": labels, name: labels}
