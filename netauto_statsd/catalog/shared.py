"""Tags and bucket sets shared by several built-in families."""

from __future__ import annotations

from netauto_statsd.catalog.model import Tag

# Buckets, in the unit of the metric (seconds or bytes). Each family gets its own
# range because one set cannot resolve both a 2 ms query and a 10 min device run.
RUN_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WEB_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DB_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
JOB_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
OUTPUT_BYTES = (256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0)
BACKLOG_BYTES = (0.0, 1024.0, 8192.0, 65536.0, 262144.0, 1048576.0, 4194304.0)

SITE = Tag("site", None, "site of the device (bounded by the number of sites)", "par1")
PROTOCOL = Tag("protocol", ("ssh", "telnet", "netconf", "restconf", "grpc", "snmp"), "how the device is reached")
RUN_STATUS = Tag("status", ("ok", "error", "timeout", "cancelled"), "how the run ended")
ERROR = Tag("error", None, "exception class name (capped)", "TimeoutError")
VIEW = Tag("view", None, "live-view route template", "/runs/{run_id}/live")
DEVICE = Tag("device", None, "device name; capped per process, the excess reads 'other'", "edge-router-1")
METHOD = Tag("method", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), "HTTP method")
ROUTE = Tag("route", None, "route template, never the raw path; unmatched is 'unmatched'", "/api/devices")
STATUS_CLASS = Tag("status_class", ("1xx", "2xx", "3xx", "4xx", "5xx"), "HTTP status class")
EXCEPTION = Tag("exception", None, "exception class name (capped)", "ValueError")
QUEUE = Tag("queue", None, "RQ queue name", "default")
FUNC = Tag("func", None, "job function dotted name (capped)", "netauto_demo.jobs.execute_run")
OPERATION = Tag("operation", ("select", "insert", "update", "delete", "other"), "SQL statement kind")
TABLE = Tag("table", None, "first table the statement names (capped)", "runs")
POOL = Tag("pool", None, "engine name given at instrumentation", "default")

RUN = (SITE, PROTOCOL)
