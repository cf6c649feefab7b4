"""The app's own metrics, declared once; tools load this module with ``--catalog config_push.metrics``.

Declaring is all it takes: the emitter accepts them, ``netauto-statsd mapping
--update`` adds their rules, ``check`` proves them and ``dashboards`` draws them.
"""

from __future__ import annotations

from netauto_statsd import Tag, counter, gauge, histogram

SITE = Tag("site", help="site of the device", example="par1")
RESULT = Tag("status", ("ok", "error", "timeout", "cancelled"), help="how the push ended")

#: Every push, by how it ended (``counted`` adds ``status``).
PUSHES = counter(
    "config_push.pushes",
    tags=(SITE, RESULT),
    help="Configuration pushes, by site and outcome.",
    prometheus_name="netauto_config_pushes_total",
    area="config push",
)
#: How long a push takes, in seconds (``timed`` adds ``status``).
PUSH_SECONDS = histogram(
    "config_push.duration",
    tags=(SITE, RESULT),
    unit="seconds",
    help="Time to push one configuration to a device.",
    prometheus_name="netauto_config_push_duration_seconds",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    area="config push",
)
#: Devices still waiting in this process's current batch (per process: summed on dashboards).
PENDING = gauge(
    "config_push.pending",
    tags=(SITE,),
    help="Devices waiting for their configuration push, per process.",
    prometheus_name="netauto_config_push_pending",
    ttl="2m",
    area="config push",
)
