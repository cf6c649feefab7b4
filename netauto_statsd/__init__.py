"""netauto_statsd: push-based DogStatsD instrumentation for NetAuto, bridged to Prometheus.

Declare metrics once, emit through the objects (a bound child for hot paths)::

    from netauto_statsd import Tag, counter

    PUSHES = counter("config_push", tags=(Tag("site"),), help="Config pushes.",
                     prometheus_name="netauto_config_pushes_total")
    PUSHES.inc(site="par1")
    par1 = PUSHES.bind(site="par1")
    par1.inc()

Importing this package is inert: no socket, no thread. The emitter is created on
first use (from the environment) or by :func:`configure`.
"""

from netauto_statsd.catalog import CatalogError, Counter, Gauge, Histogram, Tag, counter, gauge, histogram
from netauto_statsd.catalog import model as _model
from netauto_statsd.emitter import configure, flush, get_emitter, stats
from netauto_statsd.instrument import (
    chunk_appended,
    counted,
    current_run,
    run_created,
    run_finished,
    runner_lifecycle,
    timed,
)
from netauto_statsd.shutdown import install_shutdown_handlers, uninstall_shutdown_handlers

# Histogram.time() builds a `timed`, which lives above the catalog: hand it down here
# (the package root imports every floor) so the catalog never imports instrument.
_model.runtime.timed = timed

__all__ = [
    "CatalogError",
    "Counter",
    "Gauge",
    "Histogram",
    "Tag",
    "chunk_appended",
    "configure",
    "counted",
    "counter",
    "current_run",
    "flush",
    "gauge",
    "get_emitter",
    "histogram",
    "install_shutdown_handlers",
    "run_created",
    "run_finished",
    "runner_lifecycle",
    "stats",
    "timed",
    "uninstall_shutdown_handlers",
]
__version__ = "0.1.0"
