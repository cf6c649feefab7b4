"""`netauto-statsd demo` against the real exporter: every catalog metric arrives, faults stay quiet."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from netauto_statsd.catalog import METRICS
from tests.support import ROOT, Exporter, require_binary
from tests.udp_relay import DEMO_BACK, DEMO_DOWN, run_demo_through_outage

#: what the demo's summary line says this process sent, e.g. {'accepted': 10, 'rejected': 2, ...}
SENT = re.compile(r"metrics from this process: (\{.*\})")


def run_demo(exporter: Exporter, seconds: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """``netauto-statsd demo`` in production mode (not strict), pushing to ``exporter``.

    The exporter is down when the demo starts (a closed port) and comes back once the
    demo has said so: its refused datagrams are counted, and the count arrives.
    """
    require_binary("redis-server", "apt-get install redis-server")
    env = {**os.environ, "NETAUTO_STATSD_ENV": "demo-test"}
    for name in ("REDIS_URL", "DATABASE_URL", "NETAUTO_STATSD_STRICT", "NETAUTO_STATSD_DISABLE"):
        env.pop(name, None)
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo", "--duration", str(seconds), *extra]
    return run_demo_through_outage(command, env, exporter.udp_port, ROOT, timeout=seconds + 150)


def test_demo_exercises_every_catalog_metric(exporter: Exporter) -> None:
    """Every metric of the catalog reaches the exporter - no exclusion list - and only the injected faults."""
    done = run_demo(exporter, 20, "--rate", "3", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "demo summary" in done.stdout
    assert "local redis-server" in done.stderr, done.stderr[-2000:]
    present = {name for name, _, _ in exporter.samples("netauto_")}
    missing = []
    for metric in METRICS:
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
    assert exporter.value("netauto_liveview_send_latency_seconds_count", view="/devices/_device_id_/console") > 0
    assert exporter.value("netauto_db_pool_invalidations_total") > 0
    assert exporter.value("netauto_client_cardinality_overflow_total", metric="run_device") > 0
    assert exporter.value("netauto_liveview_sessions") == 0, "sessions must return to 0 after the demo"
    # every way a sample is not delivered as sent, each from its injected fault
    assert exporter.value("netauto_client_unexpected_values_total", metric="run_created") > 0
    assert exporter.value("netauto_client_sampled_total", metric="liveview_backlog") > 0
    assert exporter.value("netauto_client_dropped_total", reason="disabled_group") > 0  # the muted worker
    assert exporter.value("netauto_db_queries_total") > 0  # while the app and the other worker feed DB panels
    assert exporter.value("netauto_client_send_failures_total") > 0  # refused while down, arrived once back
    assert DEMO_DOWN in done.stderr and DEMO_BACK in done.stderr, done.stderr[-2000:]
    # the only refused emissions are the stale plugin's, all of them from the app process
    # (one may have been lost with the datagrams the down exporter refused: counted in send_failures)
    sent = ast.literal_eval(SENT.search(done.stdout).group(1))  # type: ignore[union-attr]
    rejected = {labels["reason"]: value for name, labels, value in exporter.samples("netauto_client_rejected_total")}
    assert set(rejected) == {"unknown_metric"} and 0 < rejected["unknown_metric"] <= sent["rejected"], (rejected, sent)
    injected = done.stderr.count("a stale plugin emitted 'runner.restart'")
    assert injected == sent["rejected"]
    assert sent["unexpected_values"] == done.stderr.count("a stale plugin counted a run with protocol 'SSH'")


def test_demo_output_is_quiet_and_explicit(exporter: Exporter) -> None:
    """Where metrics go is said first; each injected fault is one line; no traceback at all."""
    done = run_demo(exporter, 12, "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert re.fullmatch(r"netauto-statsd demo: metrics go to udp://127\.0\.0\.1:\d+ \(DD_DOGSTATSD_URL\)", lines[0])
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert "Cannot write to closing transport" not in done.stderr
    faults = [line for line in lines if "injected fault:" in line]
    kinds = {"DeviceUnreachableError", "ViewerProtocolError", "database failover", "stale plugin",
             "console probe", "NETAUTO_STATSD_DISABLE=db"}  # fmt: skip
    assert all(any(kind in line for kind in kinds) for line in faults), faults
    assert {kind for kind in kinds if any(kind in line for line in faults)} == kinds, faults
    # the exporter is down at start: said once, and once when it is back
    assert done.stderr.count(DEMO_DOWN) == 1 and done.stderr.count(DEMO_BACK) == 1, done.stderr[-2000:]
