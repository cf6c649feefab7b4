"""The exporter side of the compatibility matrix (tests/versions.py, docs/stack.md).

Every statsd_exporter in the matrix gets what the client really sends - several
samples per histogram context (multi-value lines unless the exporter needs
``NETAUTO_STATSD_EXPORTER_COMPAT``), per-process gauges, both wire formats - and
must count every sample, with zero exporter errors.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.catalog import METRICS, Metric
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from netauto_statsd.tags import normalise_value
from netauto_statsd.tooling.live_check import sample_tags
from tests.support import ROOT, Exporter, wait_until
from tests.versions import EXPORTERS, ExporterVersion

pytestmark = pytest.mark.exporter

#: samples per histogram context: more than one, so the newest wire packs them on one line
OBSERVATIONS = 5
COUNTER_TOTAL, GAUGE_VALUE = 3, 7
LOAD = 1000


def _values(metric: Metric) -> list[float]:
    """Known observations: seconds (0.01..0.05) or bytes (100..500)."""
    scale = 0.01 if metric.unit == "seconds" else 100.0
    return [scale * (i + 1) for i in range(OBSERVATIONS)]


@pytest.fixture(params=EXPORTERS, ids=[e.id for e in EXPORTERS])
def version(request: pytest.FixtureRequest) -> ExporterVersion:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def matrix_exporter(version: ExporterVersion, tmp_path: Path) -> Iterator[Exporter]:
    """This version's exporter with the repo's mapping; at teardown its error counters must all be 0."""
    proc = Exporter(version.binary(), tmp_path)
    try:
        yield proc
        errors = {k: v for k, v in proc.self_errors().items() if v}
        assert not errors, f"statsd_exporter {version.version} counted errors: {errors}\n{proc.process.log()[-2000:]}"
    finally:
        proc.stop()


def _emitter(exporter: Exporter, compat: str, **overrides: object) -> Emitter:
    settings = Settings(
        host="127.0.0.1",
        port=exporter.udp_port,
        strict=True,
        exporter_compat=compat,
        **overrides,  # type: ignore[arg-type]
    )
    return Emitter(settings)


@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_every_catalog_metric_lands_as_its_series(
    version: ExporterVersion, matrix_exporter: Exporter, transport: str
) -> None:
    env = f"matrix-{transport}"
    emitter = _emitter(matrix_exporter, version.compat, env=env, transport=transport)
    for metric in METRICS:
        tags = sample_tags(metric)
        if metric.type == "counter":
            for _ in range(COUNTER_TOTAL):
                emitter.increment(metric.name, 1, tags)
        elif metric.type == "gauge":
            emitter.gauge(metric.name, GAUGE_VALUE, tags)
        else:
            for value in _values(metric):
                emitter.histogram(metric.name, value, tags)
    emitter.close()  # flushes once

    last = METRICS[-1]
    matrix_exporter.wait_value(last.prometheus_name, COUNTER_TOTAL, env=env)
    for metric in METRICS:
        labels = {k: normalise_value(v) for k, v in sample_tags(metric).items()} | {"env": env}
        name = metric.prometheus_name
        if metric.type == "counter":
            matrix_exporter.wait_value(name, COUNTER_TOTAL, **labels)
        elif metric.type == "gauge":
            matrix_exporter.wait_value(name, GAUGE_VALUE, **labels)
        else:
            matrix_exporter.wait_value(f"{name}_count", OBSERVATIONS, **labels)
            assert matrix_exporter.value(f"{name}_sum", **labels) == pytest.approx(sum(_values(metric)))
        got = {frozenset(lab) - {"le"} for n, lab, _ in matrix_exporter.samples(name) if lab.get("env") == env}
        assert got == {frozenset(metric.label_names())}, (metric.name, got)


def test_delivery_loses_nothing(version: ExporterVersion, matrix_exporter: Exporter) -> None:
    """1,000 histogram observations + 1,000 counter increments through the real Emitter, flushed once."""
    emitter = _emitter(matrix_exporter, version.compat, env="load")
    tags = {"site": "par1", "protocol": "ssh", "status": "ok"}
    values = [(i % 100 + 1) / 100 for i in range(LOAD)]  # 0.01 .. 1.00 s
    for value in values:
        emitter.histogram("runner.duration", value, tags)
        emitter.increment("run.created", 1, {"site": "par1", "protocol": "ssh"})
    assert emitter.flush() == LOAD + 1  # samples handed to the wire: 1,000 observations + one counter sum
    emitter.close()
    assert emitter.stats()["packets_failed"] == 0
    matrix_exporter.wait_value("netauto_runner_duration_seconds_count", LOAD, env="load")
    matrix_exporter.wait_value("netauto_runs_created_total", LOAD, env="load")
    assert math.isclose(matrix_exporter.value("netauto_runner_duration_seconds_sum", env="load"), sum(values))
    # the fixture then asserts the exporter counted no sample, tag or mapping error


@pytest.mark.parametrize("compat_version", [e for e in EXPORTERS if e.compat], ids=lambda e: e.id)
def test_the_compat_setting_is_what_keeps_histograms(compat_version: ExporterVersion, tmp_path: Path) -> None:
    """Without its setting, an old exporter rejects multi-value lines: proves the setting is needed."""
    exporter = Exporter(compat_version.binary(), tmp_path)
    try:
        emitter = _emitter(exporter, "", env="newest-wire")
        for value in (0.1, 0.2, 0.3):
            emitter.histogram("runner.duration", value, {"site": "par1", "protocol": "ssh", "status": "ok"})
        emitter.increment("run.created", 1, {"site": "par1", "protocol": "ssh"})
        emitter.close()
        exporter.wait_value("netauto_runs_created_total", 1, env="newest-wire")
        wait_until(lambda: exporter.value("statsd_exporter_sample_errors_total") >= 1, 10, "a sample error")
        assert exporter.value("netauto_runner_duration_seconds_count", env="newest-wire") == 0
    finally:
        exporter.stop()


def _check(version: ExporterVersion, compat: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETAUTO_STATSD_EXPORTER_COMPAT": compat}
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", "check", "--exporter", version.binary()]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)


def test_check_live_proof_passes_with_the_right_setting(version: ExporterVersion) -> None:
    """The hook for issue 17.1's live proof: `check` on this exporter, with its setting, says OK."""
    done = _check(version, version.compat)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "check OK" in done.stdout


@pytest.mark.parametrize("compat_version", [e for e in EXPORTERS if e.compat], ids=lambda e: e.id)
def test_check_fails_and_names_the_setting_without_it(compat_version: ExporterVersion) -> None:
    done = _check(compat_version, "")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"NETAUTO_STATSD_EXPORTER_COMPAT={compat_version.compat}" in done.stdout
