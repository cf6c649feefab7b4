"""Issue 18.4: a killed process's per-process gauges stop counting after their ``ttl``, on the real exporter.

Two real processes report every per-process gauge of the catalog (live-view
sessions, RQ queue and worker gauges, DB pool connections) through the real
Emitter, each under its own ``process`` label, re-sending them at every flush as
a live process does. One is killed with SIGKILL: no goodbye, no last flush. The
exporter runs the repo's mapping with every ``ttl`` shortened to 2 s (a copy);
the dead process's series must disappear while the living one's stay. A
per-process gauge whose rule lost its ``ttl`` keeps the dead process's sessions
on the dashboards forever: this test fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.catalog import METRICS
from tests.support import MAPPING, ROOT, Exporter, wait_until

pytestmark = pytest.mark.exporter

TEST_TTL = "2s"
PER_PROCESS = [m for m in METRICS if m.type == "gauge" and m.per_process]
ENV = "ttl"

#: A stand-in for an app process: reports each per-process gauge, then keeps running
#: (its emitter re-sends the gauges at every flush) until it is stopped.
CHILD = """
import sys, time
from netauto_statsd.emitter import configure
from netauto_statsd.tooling.live_check import sample_tags
from netauto_statsd.catalog import METRICS
emitter = configure(host="127.0.0.1", port=int(sys.argv[1]), env="ttl", strict=True, flush_interval=0.2)
for metric in METRICS:
    if metric.type == "gauge" and metric.per_process:
        emitter.gauge_add(metric.name, 2, sample_tags(metric))
emitter.flush()
print("reporting", flush=True)
while True:
    time.sleep(3600)  # alive, idle: the flush thread keeps re-sending
"""


def short_ttl_mapping(tmp_path: Path) -> Path:
    """The repo's mapping with every ``ttl`` set to ``TEST_TTL`` (other rules untouched)."""
    text, replaced = re.subn(r"(?m)^(\s+ttl:\s*)\S+\s*$", rf"\g<1>{TEST_TTL}", MAPPING.read_text())
    assert replaced, "the mapping has no ttl at all"
    path = tmp_path / "statsd_mapping.yml"
    path.write_text(text)
    return path


@pytest.fixture
def short_ttl_exporter(exporter_binary: str, tmp_path: Path) -> Iterator[Exporter]:
    proc = Exporter(exporter_binary, tmp_path, mapping=short_ttl_mapping(tmp_path))
    try:
        yield proc
    finally:
        proc.stop()


def _start_child(port: int) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "reporting", "the reporting process did not start"
    return child


def _processes(exporter: Exporter, series: str) -> dict[str, float]:
    return {lab["process"]: v for name, lab, v in exporter.samples(series) if name == series and lab.get("env") == ENV}


def test_every_per_process_gauge_has_a_ttl_in_the_repo_mapping() -> None:
    """The premise of the copy: each per-process gauge's rule carries a ttl (the copy only shortens it)."""
    import yaml

    rules = yaml.safe_load(MAPPING.read_text())["mappings"]
    missing = [
        (m.prometheus_name, rule["match"])
        for m in PER_PROCESS
        for rule in rules
        if rule.get("name") == m.prometheus_name and not rule.get("ttl")
    ]
    assert PER_PROCESS and not missing, f"per-process gauge rules without ttl: {missing}"


def test_a_killed_process_stops_counting_after_its_ttl(short_ttl_exporter: Exporter) -> None:
    exporter = short_ttl_exporter
    survivor, victim = _start_child(exporter.udp_port), _start_child(exporter.udp_port)
    try:
        for metric in PER_PROCESS:
            wait_until(
                lambda m=metric: len(_processes(exporter, m.prometheus_name)) == 2,
                10,
                f"{metric.name} from both processes",
            )
            assert sum(_processes(exporter, metric.prometheus_name).values()) == 4
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        for metric in PER_PROCESS:
            name = metric.prometheus_name
            wait_until(lambda n=name: len(_processes(exporter, n)) == 1, 15, f"{name} of the killed process to expire")
        # The survivor reported before the victim's last update, which is now a ttl old:
        # its series outlived a ttl only because its emitter re-sends them.
        for metric in PER_PROCESS:
            assert list(_processes(exporter, metric.prometheus_name).values()) == [2]
        errors = {k: v for k, v in exporter.self_errors().items() if v}
        assert not errors, errors
    finally:
        for child in (survivor, victim):
            child.kill()
            child.wait(10)
