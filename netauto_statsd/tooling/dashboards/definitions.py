"""The dashboards the generator writes: file name -> builder.

Each dashboard is one module: :mod:`.runner`, :mod:`.liveview`, :mod:`.throughput`
and :mod:`.platform`; :mod:`.app` shows the metrics an app declares. Queries come
from :mod:`.queries` (catalog names in, ``sum by`` PromQL out); panels from :mod:`.panels`.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.catalog import app_metrics
from netauto_statsd.tooling.dashboards.app import APP_DASHBOARD, app_dashboard
from netauto_statsd.tooling.dashboards.liveview import liveview_health
from netauto_statsd.tooling.dashboards.platform import jobs_db_http
from netauto_statsd.tooling.dashboards.runner import runner_overview
from netauto_statsd.tooling.dashboards.throughput import command_throughput

#: file name -> builder, in the order they are documented.
DASHBOARDS: dict[str, Callable[[], dm.Dashboard]] = {
    "runner_overview.json": runner_overview,
    "liveview_health.json": liveview_health,
    "command_throughput.json": command_throughput,
    "jobs_db_http.json": jobs_db_http,
}


def all_dashboards() -> dict[str, Callable[[], dm.Dashboard]]:
    """:data:`DASHBOARDS`, plus the "app metrics" dashboard when app metrics are declared."""
    return {**DASHBOARDS, APP_DASHBOARD: app_dashboard} if app_metrics() else dict(DASHBOARDS)
