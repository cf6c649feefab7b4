"""What every generated panel shares with Grafana: the datasource uid and the units Grafana knows.

Its own module so that panel builders and the package that assembles dashboards
both import it without importing each other.
"""

from __future__ import annotations

#: uid of the provisioned Prometheus datasource every panel queries.
DATASOURCE_UID = "netauto-prometheus"
#: Grafana unit ids a panel may use; the tests hold every panel to this list.
UNITS = frozenset({"s", "bytes", "Bps", "percentunit", "short", "ops", "reqps", "cps"})
