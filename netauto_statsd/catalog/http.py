"""HTTP requests (the seed's PromEx Phoenix plugin)."""

from __future__ import annotations

from netauto_statsd.catalog.registry import counter, histogram
from netauto_statsd.catalog.shared import EXCEPTION, METHOD, ROUTE, STATUS_CLASS, WEB_SECONDS

AREA = "http"

REQUESTS = counter(
    "http.request",
    tags=(METHOD, ROUTE, STATUS_CLASS),
    help="HTTP requests served.",
    prometheus_name="netauto_http_requests_total",
    area=AREA,
)
DURATION = histogram(
    "http.duration",
    tags=(METHOD, ROUTE, STATUS_CLASS),
    unit="seconds",
    help="HTTP request duration.",
    prometheus_name="netauto_http_request_duration_seconds",
    buckets=WEB_SECONDS,
    area=AREA,
)
EXCEPTIONS = counter(
    "http.exception",
    tags=(METHOD, ROUTE, EXCEPTION),
    help="HTTP handlers that raised, by exception class.",
    prometheus_name="netauto_http_exceptions_total",
    max_combinations=200,
    area=AREA,
)
