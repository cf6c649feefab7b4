"""The live half of ``check``: a throw-away statsd_exporter gets one sample of every catalog metric.

Proves, with the real binary, that each metric lands on the series the catalog
declares, with the declared type and label set, and that the exporter counted
no sample, tag or mapping error. Used by ``netauto-statsd check``; tests use
their own fixtures for the same exporter.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from netauto_statsd.catalog import METRICS, Metric
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter

_SELF_ERRORS = (
    "statsd_exporter_sample_errors_total",
    "statsd_exporter_tag_errors_total",
    "statsd_exporter_events_conflict_total",
    "statsd_exporter_events_unmapped_total",
)
_PROM_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def sample_tags(metric: Metric) -> dict[str, object]:
    """Realistic tag values for one sample of ``metric``."""
    return {tag.key: tag.sample_value() for tag in metric.tags}


def send_every_metric(emitter: Emitter) -> None:
    """Emit one realistic sample of every catalog metric and flush."""
    for metric in METRICS:
        tags = sample_tags(metric)
        if metric.type == "counter":
            emitter.increment(metric.name, 1, tags)
        elif metric.type == "gauge":
            emitter.gauge(metric.name, 1, tags)
        else:
            emitter.histogram(metric.name, 0.25 if metric.unit == "seconds" else 1024, tags)
    emitter.flush()


def _scrape(url: str) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        f.name: (f.type, [(s.name, dict(s.labels), s.value) for s in f.samples])
        for f in text_string_to_metric_families(_get(url))
    }


def _compare(metric: Metric, families: dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]) -> list[str]:
    family_name = metric.prometheus_name.removesuffix("_total") if metric.type == "counter" else metric.prometheus_name
    if family_name not in families:
        return [f"`{metric.name}` did not produce `{metric.prometheus_name}`"]
    kind, samples = families[family_name]
    problems = []
    if kind != _PROM_TYPE[metric.type]:
        problems.append(f"`{metric.prometheus_name}` is a {kind}, catalog says {metric.type}")
    expected = set(metric.label_names())
    for name, labels, _ in samples:
        got = set(labels) - {"le"}
        if got != expected:
            problems.append(f"`{name}` has labels {sorted(got)}, catalog says {sorted(expected)}")
            break
    return problems


def live_check(binary: str, mapping: Path, plain: bool = True, timeout: float = 15.0) -> list[str]:
    """Start ``binary`` with ``mapping``, send every metric (each encoding), return the problems."""
    problems: list[str] = []
    for transport in ("dogstatsd", "statsd") if plain else ("dogstatsd",):
        problems += [f"[{transport}] {p}" for p in _run_once(binary, mapping, transport, timeout)]
    return problems


def _run_once(binary: str, mapping: Path, transport: str, timeout: float) -> list[str]:
    udp, web = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    url = f"http://127.0.0.1:{web}"
    args = [
        binary,
        f"--statsd.mapping-config={mapping}",
        f"--statsd.listen-udp=127.0.0.1:{udp}",
        "--statsd.listen-tcp=",
        f"--web.listen-address=127.0.0.1:{web}",
        "--no-statsd.parse-influxdb-tags",
        "--no-statsd.parse-librato-tags",
        "--no-statsd.parse-signalfx-tags",
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _ready(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    return [f"exporter did not start: {log.read().decode(errors='replace')[-500:]}"]
                time.sleep(0.05)
            emitter = Emitter(Settings(host="127.0.0.1", port=udp, transport=transport, strict=True))
            try:
                send_every_metric(emitter)
            finally:
                emitter.close()
            families = _wait_for_all(url, deadline)
            problems = [p for metric in METRICS for p in _compare(metric, families)]
            for name in _SELF_ERRORS:
                total = sum(v for _, _, v in families.get(name.removesuffix("_total"), ("", []))[1])
                if total:
                    problems.append(f"exporter counted {total:g} in {name}")
            return problems
        finally:
            proc.terminate()
            proc.wait(10)


def _ready(url: str) -> bool:
    try:
        _get(f"{url}/-/ready")
        return True
    except OSError:
        return False


def _wait_for_all(url: str, deadline: float) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """Scrape until every catalog series is there (events land up to ~200 ms late) or time is up."""
    while True:
        families = _scrape(f"{url}/metrics")
        if all(not _compare(m, families) for m in METRICS) or time.monotonic() > deadline:
            return families
        time.sleep(0.1)
