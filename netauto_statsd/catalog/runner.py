"""Runner lifecycle (the seed's ``[:net_auto, :runner, :start | :stop | :error]``)."""

from __future__ import annotations

from netauto_statsd.catalog.registry import counter, histogram
from netauto_statsd.catalog.shared import ERROR, OUTPUT_BYTES, RUN, RUN_SECONDS, RUN_STATUS

AREA = "runner"

STARTS = counter(
    "runner.start",
    tags=RUN,
    help="Runner executions started.",
    prometheus_name="netauto_runner_starts_total",
    area=AREA,
)
STOPS = counter(
    "runner.stop",
    tags=(*RUN, RUN_STATUS),
    help="Runner executions finished, by status.",
    prometheus_name="netauto_runner_stops_total",
    area=AREA,
)
ERRORS = counter(
    "runner.error",
    tags=(*RUN, ERROR),
    help="Runner executions that raised, by exception class.",
    prometheus_name="netauto_runner_errors_total",
    max_combinations=200,
    area=AREA,
)
DURATION = histogram(
    "runner.duration",
    tags=(*RUN, RUN_STATUS),
    unit="seconds",
    help="Runner execution time.",
    prometheus_name="netauto_runner_duration_seconds",
    buckets=RUN_SECONDS,
    area=AREA,
)
BYTES = histogram(
    "runner.bytes",
    tags=(*RUN, RUN_STATUS),
    unit="bytes",
    help="Output bytes processed per runner execution.",
    prometheus_name="netauto_runner_processed_bytes",
    buckets=OUTPUT_BYTES,
    area=AREA,
)
