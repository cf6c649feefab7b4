"""Device and command throughput (the seed's ``create_run/1`` and ``append_chunk/1`` hooks)."""

from __future__ import annotations

from netauto_statsd.catalog.registry import counter, histogram
from netauto_statsd.catalog.shared import DEVICE, OUTPUT_BYTES, RUN

AREA = "throughput"

RUNS_CREATED = counter(
    "run.created", tags=RUN, help="Runs created.", prometheus_name="netauto_runs_created_total", area=AREA
)
DEVICE_RUNS = counter(
    "run.device",
    tags=(DEVICE,),
    help="Runs created per device (top devices; capped, excess is 'other').",
    prometheus_name="netauto_device_runs_total",
    max_combinations=100,
    area=AREA,
)
RUN_OUTPUT_BYTES = histogram(
    "run.output_bytes",
    tags=RUN,
    unit="bytes",
    help="Output bytes per finished run.",
    prometheus_name="netauto_run_output_bytes",
    buckets=OUTPUT_BYTES,
    area=AREA,
)
CHUNKS_APPENDED = counter(
    "chunk.appended",
    tags=RUN,
    help="Output chunks appended to runs.",
    prometheus_name="netauto_chunks_appended_total",
    area=AREA,
)
CHUNK_BYTES = counter(
    "chunk.bytes",
    tags=RUN,
    unit="bytes",
    help="Bytes of output chunks appended to runs.",
    prometheus_name="netauto_chunk_bytes_total",
    area=AREA,
)
