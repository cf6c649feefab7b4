"""Fixtures for the Grafana/Prometheus tests: binaries, and the end-to-end stack."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.grafana.prometheus_support import Prometheus, require_prometheus, require_promtool
from tests.grafana.traffic import SOURCES, TrafficReport, TrafficSource
from tests.support import Exporter


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Path of prometheus (skip on a laptop without it, fail under CI=true)."""
    return require_prometheus()


@pytest.fixture(scope="session")
def promtool_binary() -> str:
    """Path of promtool (skip on a laptop without it, fail under CI=true)."""
    return require_promtool()


@pytest.fixture(scope="module")
def traffic_source() -> TrafficSource:
    """What feeds the exporter in the end-to-end test: ``NETAUTO_E2E_TRAFFIC`` = ``synthetic`` (default) or ``demo``.

    ``synthetic``: realistic samples of every catalog metric through the real
    Emitter (~15 s). ``demo``: ``netauto-statsd demo --duration 30`` - the app,
    an RQ worker and the load generator (~45 s, needs redis-server).
    """
    name = os.environ.get("NETAUTO_E2E_TRAFFIC", "synthetic")
    if name not in SOURCES:
        pytest.fail(f"NETAUTO_E2E_TRAFFIC={name!r}: use one of {sorted(SOURCES)}")
    return SOURCES[name]


@dataclass
class Stack:
    """A running exporter + Prometheus that has scraped the traffic."""

    exporter: Exporter
    prometheus: Prometheus
    report: TrafficReport
    started: float
    ended: float


@pytest.fixture(scope="module")
def stack(
    exporter_binary: str,
    prometheus_binary: str,
    traffic_source: TrafficSource,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Real statsd_exporter -> real Prometheus (bridge/prometheus.yml, bridge/rules), fed by ``traffic_source``."""
    tmp = tmp_path_factory.mktemp("grafana-e2e")
    exporter = Exporter(exporter_binary, tmp)
    try:
        exporter_address = exporter.url.removeprefix("http://")
        prometheus = Prometheus(prometheus_binary, tmp, {"statsd-exporter": [exporter_address]})
        try:
            prometheus.wait_for_scrapes("statsd-exporter")
            started = time.time()
            report = traffic_source(exporter, prometheus)
            ended = time.time()
            prometheus.wait_until_ingested(exporter)
            prometheus.wait_for_scrapes("statsd-exporter")  # a 2nd sample of the final values for rate()
            yield Stack(exporter, prometheus, report, started, ended)
        finally:
            prometheus.stop()
    finally:
        exporter.stop()
