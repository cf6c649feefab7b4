"""`netauto-statsd demo` against the real exporter: the metrics it is meant to exercise all arrive."""

from __future__ import annotations

import os
import subprocess
import sys

from netauto_statsd.catalog import METRICS
from tests.support import ROOT, Exporter, require_binary

#: Catalog metrics the demo does not exercise: faults of the client itself (cardinality
#: abuse, undeclared emissions), broken database connections, and websocket sends that
#: wait >= 1 ms (real backpressure needs megabytes queued to a viewer that stopped
#: reading; tests/integrations/test_aiohttp.py builds that with a slow consumer).
NOT_EXERCISED = {"db.pool.invalidated", "client.overflow", "client.rejected", "liveview.send_latency"} | {
    "client.unexpected_value", "client.sampled", "client.dropped", "client.send_failures"  # client faults
}  # fmt: skip


def test_demo_exercises_every_metric_it_should(exporter: Exporter) -> None:
    require_binary("redis-server", "apt-get install redis-server")
    env = {
        **os.environ,
        "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{exporter.udp_port}",
        "NETAUTO_STATSD_STRICT": "1",  # an undeclared metric or tag in the demo fails loudly
        "NETAUTO_STATSD_ENV": "demo-test",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo", "--duration", "20", "--rate", "3", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "demo summary" in done.stdout
    assert "local redis-server" in done.stderr, done.stderr[-2000:]
    present = {name for name, _, _ in exporter.samples("netauto_")}
    missing = []
    for metric in METRICS:
        if metric.name in NOT_EXERCISED:
            continue
        series = metric.prometheus_name + ("_count" if metric.type == "histogram" else "")
        if series not in present:
            missing.append(f"{metric.name} -> {series}")
    assert not missing, f"the demo did not produce: {missing}\n{done.stderr[-2000:]}"
    # outcomes the demo is built to produce
    assert exporter.value("netauto_runner_stops_total", status="ok") > 0
    assert exporter.value("netauto_rq_jobs_finished_total", status="failed") > 0
    assert exporter.value("netauto_http_requests_total", status_class="4xx") > 0
    assert exporter.value("netauto_http_exceptions_total", exception="DeviceUnreachableError") > 0
    assert exporter.value("netauto_db_errors_total", exception="IntegrityError") > 0
    assert exporter.value("netauto_liveview_errors_total", kind="ViewerProtocolError") > 0
    assert exporter.value("netauto_liveview_sessions") == 0, "sessions must return to 0 after the demo"
