"""The registry of declared metrics and the declaration API (:func:`counter`, :func:`histogram`, :func:`gauge`).

Built-in families and app catalog modules declare through the same functions;
a declaration joins :data:`BY_NAME` the moment its module is imported.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable
from typing import TypeVar

from netauto_statsd.catalog.model import (
    DEFAULT_NAMESPACE,
    KINDS,
    CatalogError,
    Counter,
    Gauge,
    Histogram,
    Metric,
    MetricType,
    Tag,
)

#: Every declared metric by statsd name: the built-ins, then whatever app catalog
#: modules have been imported. Live: the emitter and the tools read it directly.
BY_NAME: dict[str, Metric] = {}
_registry_lock = threading.Lock()
#: Families of the library (the rest are the app's); ``client`` can never be disabled.
BUILTIN_MODULE_PREFIX = "netauto_statsd.catalog"
UNDISABLEABLE_GROUPS = frozenset({"client"})

M = TypeVar("M", bound=Metric)


def declare(metric: M) -> M:
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


def is_builtin(metric: Metric) -> bool:
    """True for the library's own families."""
    return metric.module == BUILTIN_MODULE_PREFIX or metric.module.startswith(BUILTIN_MODULE_PREFIX + ".")


def app_metrics() -> tuple[Metric, ...]:
    """The metrics declared outside the library."""
    return tuple(m for m in BY_NAME.values() if not is_builtin(m))


def groups() -> tuple[str, ...]:
    """Metric groups (families) that ``NETAUTO_STATSD_DISABLE`` may name, in declaration order.

    The built-in families, ``app`` (the default area of app metrics) and any
    area an imported app catalog module declared; never ``client``.
    """
    seen = dict.fromkeys(m.area for m in BY_NAME.values())
    seen.setdefault("app")
    return tuple(g for g in seen if g not in UNDISABLEABLE_GROUPS)


def find(name: str) -> Metric | None:
    """The declared metric ``name`` (without namespace), or ``None``."""
    return BY_NAME.get(name)


def get(name: str) -> Metric:
    """Return the declared metric ``name`` (without namespace).

    Raises:
        KeyError: the metric is not in the catalog.
    """
    return BY_NAME[name]


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


def wire_name(metric: Metric, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Return the full statsd name as sent, e.g. ``netauto.runner.start``."""
    return f"{namespace}.{metric.name}" if namespace else metric.name


def exposed_series(metric: Metric) -> tuple[str, ...]:
    """Return every Prometheus series name the metric produces at the exporter."""
    if metric.type == "histogram":
        base = metric.prometheus_name
        return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
    return (metric.prometheus_name,)


def _caller_module() -> str:
    frame = sys._getframe(3)  # _caller_module <- _declare_kind <- counter/histogram/gauge <- the declaring module
    return str(frame.f_globals.get("__name__", "__main__"))


def _declare_kind(kind: MetricType, name: str, **fields: object) -> Metric:
    fields.setdefault("module", _caller_module())
    tags = fields.pop("tags")  # counter/histogram/gauge always pass it
    return declare(KINDS[kind](name, kind, tuple(tags), **fields))  # type: ignore[arg-type]


def counter(
    name: str,
    *,
    tags: Iterable[Tag] = (),
    unit: str = "1",
    help: str,
    prometheus_name: str,
    max_combinations: int = 500,
    area: str = "app",
) -> Counter:
    """Declare a counter (summed across processes; Prometheus series should end in ``_total``)."""
    declared = _declare_kind(
        "counter",
        name,
        tags=tags,
        unit=unit,
        help=help,
        prometheus_name=prometheus_name,
        max_combinations=max_combinations,
        area=area,
    )
    assert isinstance(declared, Counter)
    return declared


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
) -> Histogram:
    """Declare a histogram; ``unit`` is ``seconds`` or ``bytes`` and values are sent in it, never ``|ms``."""
    declared = _declare_kind(
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
    assert isinstance(declared, Histogram)
    return declared


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
) -> Gauge:
    """Declare a gauge; per-process by default (tagged ``process``, expired by the mapping's ``ttl``)."""
    declared = _declare_kind(
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
    assert isinstance(declared, Gauge)
    return declared
