"""Fixtures for the Grafana/Prometheus tests: binaries, and the end-to-end stack."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import IN_CI, Exporter
from tests.tooling.grafana.prometheus_support import Prometheus, require_prometheus, require_promtool
from tests.tooling.grafana.traffic import SOURCES, TrafficReport, TrafficSource
from tests.versions import PROMETHEUS, PrometheusVersion


@pytest.fixture(scope="session", params=PROMETHEUS, ids=[p.id for p in PROMETHEUS])
def prometheus_version(request: pytest.FixtureRequest) -> PrometheusVersion:
    """Each Prometheus of the compatibility matrix (tests/versions.py): Debian's 2.42 and v3.5.0."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prometheus_binary(prometheus_version: PrometheusVersion) -> str:
    """Path of this version's prometheus (skip on a laptop without it, fail under CI=true)."""
    return require_prometheus() if prometheus_version.directory is None else prometheus_version.binary()


@pytest.fixture(scope="session")
def promtool_binary(prometheus_version: PrometheusVersion) -> str:
    """Path of this version's promtool (skip on a laptop without it, fail under CI=true)."""
    return require_promtool() if prometheus_version.directory is None else prometheus_version.binary("promtool")


def _sources() -> list[str]:
    """Both traffic sources; ``NETAUTO_E2E_TRAFFIC`` narrows to one on a laptop, never under CI=true."""
    chosen = os.environ.get("NETAUTO_E2E_TRAFFIC")
    return [chosen] if chosen and not IN_CI else ["demo", "synthetic"]


@pytest.fixture(scope="module", params=_sources())
def traffic_source(request: pytest.FixtureRequest) -> TrafficSource:
    """What feeds the exporter in the end-to-end test: both sources by default, or ``NETAUTO_E2E_TRAFFIC``.

    Under ``CI=true`` both sources always run and a set ``NETAUTO_E2E_TRAFFIC``
    fails every end-to-end test: the proof cannot be narrowed quietly.

    ``demo``: ``netauto-statsd demo --duration 30`` - the app, RQ workers and the
    load generator (~45 s, needs redis-server); panels reading only what the demo
    cannot produce must parse but may be empty. ``synthetic``: realistic samples
    of every catalog metric through the real Emitter (~15 s): every panel must
    return data.
    """
    name = str(request.param)
    chosen = os.environ.get("NETAUTO_E2E_TRAFFIC")
    if IN_CI and chosen:
        pytest.fail(f"CI=true and NETAUTO_E2E_TRAFFIC={chosen!r}: CI runs every traffic source; unset it")
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
