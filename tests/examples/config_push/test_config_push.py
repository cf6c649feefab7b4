"""An app adds metrics without touching the library, and every tool follows (issue 11.6), with real processes.

declared (examples/config_push/config_push/metrics.py) -> emitted (the app, in its own
process, strict) -> ``mapping --update`` on a copy of the repo mapping -> ``check``
(contract, knobs, live proof) -> a real statsd_exporter -> the series on /metrics ->
the generated "app metrics" dashboard's queries return data on a real Prometheus.

Every tool runs as a subprocess from the example's folder, as a user would: its
``pyproject.toml`` names the catalog module, and the declarations never leak into
this test process's registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netauto_statsd.catalog import METRICS
from tests.support import MAPPING, ROOT, Exporter
from tests.tooling.grafana import grafana_support as grafana
from tests.tooling.grafana.prometheus_support import Prometheus, finite_values, require_prometheus

pytestmark = [pytest.mark.exporter, pytest.mark.prometheus, pytest.mark.slow]

APP = ROOT / "examples" / "config_push"
DEVICES, REFUSING, SITES = 4, 1, ("par1", "lon2")
PUSHES = DEVICES * len(SITES)
APP_SERIES = ("netauto_config_pushes_total", "netauto_config_push_duration_seconds", "netauto_config_push_pending")


def tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``netauto-statsd ARGS`` from the example's folder."""
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, cwd=APP, env=full_env, timeout=180)


def run_app(exporter: Exporter) -> subprocess.CompletedProcess[str]:
    """The example app in its own process, strict, sending to ``exporter``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(APP), str(ROOT)]),
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(exporter.udp_port),
        "NETAUTO_STATSD_STRICT": "1",
        "NETAUTO_STATSD_ENV": "config-push-test",
    }
    args = [sys.executable, "-m", "config_push", "--devices", str(DEVICES), "--refusing", str(REFUSING)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def prepared(tmp_path: Path, exporter_binary: str) -> tuple[Path, Path]:
    """A copy of the repo mapping updated for the app, and the dashboards generated with its catalog."""
    pytest.importorskip("grafana_foundation_sdk", reason="the dashboards extra generates the app dashboard")
    mapping = tmp_path / "statsd_mapping.yml"
    shutil.copy(MAPPING, mapping)
    before = mapping.read_text()
    done = tool("mapping", "--update", str(mapping))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"{mapping}: 6 rule(s) added; every other line unchanged"
    after = mapping.read_text()
    assert after.replace(_added_block(before, after), "") == before  # nothing else moved
    dashboards = tmp_path / "dashboards"
    done = tool("dashboards", "--out", str(dashboards))
    assert done.returncode == 0, done.stderr
    assert (dashboards / "app_metrics.json").is_file()
    return mapping, dashboards


def _added_block(before: str, after: str) -> str:
    """The contiguous text ``mapping --update`` inserted (everything else must be byte-identical)."""
    start = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    return after[start : start + len(after) - len(before)]


def test_the_app_metrics_go_the_whole_way(prepared: tuple[Path, Path], exporter_binary: str, tmp_path: Path) -> None:
    mapping, dashboards = prepared

    # check: contract + knobs + live proof, with the app's catalog
    done = tool(
        "check", "--mapping", str(mapping), "--dashboards", str(dashboards),
        "--rules", str(ROOT / "bridge" / "rules"), "--exporter", exporter_binary, "--strict",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = len(METRICS) + len(APP_SERIES)  # the library's catalog and the app's own declarations
    assert f"{metrics} metrics x 2 wire format(s), {2 * metrics} contexts compared sample for sample" in done.stdout

    # the repo mapping itself does not know the app: check says exactly what is missing
    done = tool("check", "--mapping", str(MAPPING), "--exporter", exporter_binary, "--offline")
    assert done.returncode == 1
    drop = _line(MAPPING, '- match: "."')
    assert (
        f"{MAPPING}:{drop}: catalog metric `config_push.pushes` (DogStatsD `netauto.config_push.pushes`) is not mapped"
    ) in done.stdout

    # a real exporter with the updated mapping, fed by the app in its own process
    exporter = Exporter(exporter_binary, tmp_path, mapping=mapping)
    try:
        prometheus = Prometheus(require_prometheus(), tmp_path, {"statsd-exporter": [exporter.url[7:]]})
        try:
            prometheus.wait_for_scrapes("statsd-exporter")
            started = time.time()
            env = {"env": "config-push-test"}
            for batch in (1, 2):  # two batches, scrapes between: rate() and the quantiles see an increase
                ran = run_app(exporter)
                assert ran.returncode == 0, ran.stdout + ran.stderr
                assert ran.stdout.strip() == "pushed 6/8; refused: par1-sw0, lon2-sw0"
                exporter.wait_value("netauto_config_pushes_total", batch * PUSHES, **env)
                exporter.wait_value("netauto_config_pushes_total", batch * 2, status="error", **env)
                exporter.wait_value("netauto_config_push_duration_seconds_count", batch * PUSHES, **env)
                prometheus.wait_until_ingested(exporter)
                prometheus.wait_for_scrapes("statsd-exporter", 2)
            exporter.wait_value("netauto_config_push_pending", 0, **env)
            pending = [lab for n, lab, _ in exporter.samples("netauto_config_push_pending") if n.endswith("pending")]
            assert {lab["site"] for lab in pending} == set(SITES) and all(lab["process"] for lab in pending)
            assert not {k: v for k, v in exporter.self_errors().items() if v}
            _every_app_panel_has_data(prometheus, dashboards / "app_metrics.json", started, time.time())
        finally:
            prometheus.stop()
    finally:
        exporter.stop()


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip().startswith(text))


def _every_app_panel_has_data(prometheus: Prometheus, path: Path, started: float, ended: float) -> None:
    dashboard = json.loads(path.read_text())
    start, end, scrape = started - 2, ended + 30, prometheus.interval_s
    values = grafana.builtins(end - start, scrape)
    values["env"] = "config-push-test"
    read: set[str] = set()
    ran = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = grafana.interpolate(target["expr"], values)
            result = prometheus.query_range(expr, start, end, grafana.interval(end - start, scrape))
            assert finite_values(result), f"{panel['title']}: no data for {expr}"
            read |= {s for s in APP_SERIES if s in expr}
            ran += 1
    assert ran == 5  # a rate, p50 / p95 / p99, and a sum
    assert read == set(APP_SERIES)
