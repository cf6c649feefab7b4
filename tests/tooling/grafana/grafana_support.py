"""What Grafana does to a dashboard query before Prometheus sees it: the package's own rules.

Grafana cannot run here, so the end-to-end test interpolates panel queries the
way Grafana's Prometheus datasource does and runs them through a real
Prometheus. The rules live in :mod:`netauto_statsd.tooling.grafana_vars`
(``netauto-statsd report`` uses them too); the tests use the same ones.
"""

from __future__ import annotations

from netauto_statsd.tooling.grafana_vars import (
    builtins,
    duration,
    format_value,
    interpolate,
    interval,
    rate_interval,
    regex_escape,
    regular_escape,
)

__all__ = [
    "builtins",
    "duration",
    "format_value",
    "interpolate",
    "interval",
    "rate_interval",
    "regex_escape",
    "regular_escape",
]
