"""PromQL for dashboard panels, built from the catalog (no Grafana SDK needed here).

Every query names metrics by their catalog name (``runner.stop``), so a renamed
series or a dropped tag breaks generation loudly instead of leaving a panel
silently empty. Every selector sits inside ``sum by (...)`` (``max by`` for
gauges that every reporter sends identically): the result is the same with
one exporter or many.
"""

from __future__ import annotations

from netauto_statsd import catalog
from netauto_statsd.catalog import Metric

#: Grafana's rate window: at least 4 scrape intervals, so ``rate()`` always has 2+ samples.
RATE_WINDOW = "$__rate_interval"
#: The dashboard's whole time range (stat and top-N panels).
RANGE_WINDOW = "$__range"
#: ``runner.stop`` statuses that count as failed runs (``cancelled`` is an operator's choice, not a failure).
FAILED_RUN_STATUSES = ("error", "timeout")
#: ``http.request`` status classes that count as server errors.
SERVER_ERROR_CLASSES = ("5xx",)

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
#: Prometheus' own per-target series, and the exporter's Go process collector (restarts).
SCRAPE_SERIES: dict[str, tuple[str, ...]] = {"up": (), "process_start_time_seconds": ()}
#: ``job_name`` of the exporter in bridge/prometheus.yml.
EXPORTER_JOB = "statsd-exporter"


def known_series() -> dict[str, tuple[str, ...]]:
    """Every series a dashboard or alert may read, with its labels (``le`` on buckets).

    The catalog's series as the mapping exposes them, the exporter self-metrics
    and ``up``. Prometheus adds ``job`` and ``instance`` to all of them.
    """
    out: dict[str, tuple[str, ...]] = {}
    for m in catalog.METRICS:
        for series in catalog.exposed_series(m):
            out[series] = m.label_names() + (("le",) if series.endswith("_bucket") else ())
    return {**out, **EXPORTER_SERIES, **SCRAPE_SERIES}


def metric(name: str) -> Metric:
    """The catalog metric ``name``; raises ``KeyError`` naming it if it is not declared."""
    try:
        return catalog.get(name)
    except KeyError:
        raise KeyError(f"dashboards use {name!r}, which is not in the catalog") from None


def _check_labels(m: Metric, labels: tuple[str, ...]) -> None:
    missing = [label for label in labels if label not in m.label_names()]
    if missing:
        raise ValueError(f"{m.name} has no label(s) {missing}; it has {list(m.label_names())}")


def _check_values(m: Metric, key: str, values: tuple[str, ...]) -> None:
    allowed = next(t.values for t in m.tags if t.key == key)
    if allowed is not None and not set(values) <= set(allowed):
        raise ValueError(f"{m.name}: {key} values {values} are not all in {allowed}")


def one_of(m: Metric, key: str, values: tuple[str, ...]) -> str:
    """A regex matcher ``key=~"a|b"`` after checking the values against the catalog."""
    _check_labels(m, (key,))
    _check_values(m, key, values)
    return f'{key}=~"{"|".join(values)}"'


def _sum(labels: tuple[str, ...], agg: str = "sum") -> str:
    return f"{agg} by ({', '.join(labels)}) " if labels else agg


class Scope:
    """The dashboard variables that filter every query of a dashboard.

    A variable applies to a metric only if the metric has that label, so one
    scope serves panels of metrics with different tags.

    Args:
        single: labels with a single-value variable (matched with ``=``).
        multi: labels with a multi-value variable that has an "All" option
            (matched with ``=~``; Grafana substitutes a regex alternation).
    """

    def __init__(self, single: tuple[str, ...] = ("env",), multi: tuple[str, ...] = ()) -> None:
        self.single = single
        self.multi = multi

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable name, in order."""
        return self.single + self.multi

    def series(self, name: str, suffix: str = "", *extra: str) -> str:
        """The selector of catalog metric ``name`` (``suffix`` e.g. ``_bucket``) with the scope's filters."""
        m = metric(name)
        if suffix and m.type != "histogram":
            raise ValueError(f"{name} is a {m.type}: no {suffix} series")
        labels = m.label_names()
        parts = [f'{k}="${k}"' for k in self.single if k in labels]
        parts += [f'{k}=~"${k}"' for k in self.multi if k in labels]
        parts += extra
        return m.prometheus_name + suffix + ("{" + ", ".join(parts) + "}" if parts else "")

    def rate(
        self, name: str, by: tuple[str, ...] = (), *extra: str, suffix: str = "", window: str = RATE_WINDOW
    ) -> str:
        """Per-second rate of a counter (or of a histogram's ``_sum``/``_count``), summed by ``by``."""
        _check_labels(metric(name), by)
        return f"{_sum(by)}(rate({self.series(name, suffix, *extra)}[{window}]))"

    def increase(self, name: str, by: tuple[str, ...] = (), *extra: str, window: str = RANGE_WINDOW) -> str:
        """Increase of a counter over ``window`` (default: the dashboard range), summed by ``by``."""
        _check_labels(metric(name), by)
        return f"{_sum(by)}(increase({self.series(name, '', *extra)}[{window}]))"

    def quantile(self, q: float, name: str, by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
        """The ``q`` quantile of a histogram, from buckets summed over every exporter."""
        _check_labels(metric(name), by)
        inner = f"{_sum(('le', *by))}(rate({self.series(name, '_bucket')}[{window}]))"
        return f"histogram_quantile({q}, {inner})"

    def buckets(self, name: str) -> str:
        """Per-bucket rate of a histogram, for a heatmap (``format: heatmap``)."""
        return f"sum by (le) (rate({self.series(name, '_bucket')}[{RATE_WINDOW}]))"

    def mean(self, name: str, by: tuple[str, ...] = ()) -> str:
        """Mean observation of a histogram: rate of ``_sum`` over rate of ``_count``."""
        return f"{self.rate(name, by, suffix='_sum')} / {self.rate(name, by, suffix='_count')}"

    def ratio(self, name: str, matcher: str, by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
        """Share of counter ``name`` whose samples match ``matcher``; 0 (not "no data") when none do."""
        part, whole = self.rate(name, by, matcher, window=window), self.rate(name, by, window=window)
        return f"({part} or {whole} * 0) / {whole}"

    def current(self, name: str, by: tuple[str, ...] = (), agg: str = "sum") -> str:
        """A gauge now: ``sum`` over processes (per-process gauges) or ``max`` when all report the same."""
        m = metric(name)
        if m.type != "gauge":
            raise ValueError(f"{name} is a {m.type}, not a gauge")
        _check_labels(m, by)
        return f"{_sum(by, agg)}({self.series(name)})"

    def active_runs(self, by: tuple[str, ...] = ()) -> str:
        """Runs started and not yet stopped: there is no gauge, the two counters are subtracted."""
        started = f"{_sum(by)}({self.series('runner.start')})"
        stopped = f"{_sum(by)}({self.series('runner.stop')})"
        return f"clamp_min({started} - {stopped}, 0)"


def exporter_rate(series: str, by: tuple[str, ...] = (), matcher: str = "", zero_if_absent: bool = False) -> str:
    """Rate of an exporter self-metric over every exporter; optionally 0 instead of "no data".

    Labelled self-metrics (``sample_errors_total{reason}``...) only exist after
    their first increment; a healthy exporter then shows a flat 0, not a gap.
    """
    labels = EXPORTER_SERIES[series]
    missing = [label for label in by if label not in labels]
    if missing:
        raise ValueError(f"{series} has no label(s) {missing}")
    selector = series + (f"{{{matcher}}}" if matcher else "")
    expr = f"{_sum(by)}(rate({selector}[{RATE_WINDOW}]))"
    return f"{expr} or on() vector(0)" if zero_if_absent else expr


def label_values(name: str, label: str, depends_on: tuple[str, ...] = ("env",)) -> str:
    """A Grafana ``label_values`` variable query for ``label`` of catalog metric ``name``.

    ``depends_on`` names single-value variables (defined earlier) that narrow the choices.
    """
    m = metric(name)
    _check_labels(m, (label,))
    parts = [f'{k}="${k}"' for k in depends_on if k in m.label_names() and k != label]
    series = m.prometheus_name + ("_count" if m.type == "histogram" else "")
    return f"label_values({series}{'{' + ', '.join(parts) + '}' if parts else ''}, {label})"
