"""Real processes for tests: statsd_exporter, Prometheus, Redis on free loopback ports.

A missing binary skips the test with a reason on a laptop, and FAILS it when
``CI=true``: CI must never pass by skipping the real thing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "bridge" / "statsd_mapping.yml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_binary(name: str) -> str | None:
    """Locate ``name`` on PATH, in the repo's .tools/bin or in Go's bin directory."""
    override = os.environ.get(f"NETAUTO_{name.upper().replace('-', '_')}_BIN")
    candidates = [
        override,
        shutil.which(name),
        str(ROOT / ".tools" / "bin" / name),
        str(Path.home() / "go" / "bin" / name),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_binary(name: str, how: str) -> str:
    """Return the path of ``name`` or skip (laptop) / fail (CI) with ``how`` to install it."""
    path = find_binary(name)
    if path is None:
        message = f"{name} not found ({how})"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


def require_module(name: str, how: str) -> Any:
    """Import ``name`` or skip (laptop) / fail (CI) with ``how`` to install it; usable at module level."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"Python package {name} not installed ({how})"
        if IN_CI:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 for ``kind`` (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes (then fail)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # not ready yet
            last_error = exc
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def http_get(url: str, timeout: float = 5.0) -> str:
    """GET ``url`` and return the body as text."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


class Process:
    """A child process that is always stopped and whose log is kept for failures."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Exporter:
    """A real statsd_exporter with the given mapping, DogStatsD-only, on free ports."""

    SELF_ERRORS = (
        "statsd_exporter_sample_errors_total",
        "statsd_exporter_tag_errors_total",
        "statsd_exporter_events_conflict_total",
        "statsd_exporter_events_unmapped_total",
        "statsd_exporter_events_error_total",
        "statsd_exporter_udp_packet_drops_total",
    )

    def __init__(
        self,
        binary: str,
        tmp: Path,
        mapping: Path = MAPPING,
        extra: Iterable[str] = (),
        read_buffer: int | None = 8388608,
        udp_port: int | None = None,
    ) -> None:
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM)
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        args = [
            binary,
            f"--statsd.mapping-config={mapping}",
            f"--statsd.listen-udp=127.0.0.1:{self.udp_port}",
            "--statsd.listen-tcp=",
            f"--web.listen-address=127.0.0.1:{self.web_port}",
            "--no-statsd.parse-influxdb-tags",
            "--no-statsd.parse-librato-tags",
            "--no-statsd.parse-signalfx-tags",
            *([f"--statsd.read-buffer={read_buffer}"] if read_buffer else []),
            # events are applied in batches; a shorter interval keeps polling tests quick
            "--statsd.event-flush-interval=50ms",
            "--log.level=debug",
            *extra,
        ]
        self.process = Process(args, tmp / f"statsd_exporter-{self.web_port}.log")
        try:
            wait_until(self._ready, 20, "statsd_exporter /-/ready")
        except AssertionError:
            self.process.stop()
            raise AssertionError(f"statsd_exporter did not start:\n{self.process.log()}") from None

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"statsd_exporter exited:\n{self.process.log()}")
        return http_get(f"{self.url}/-/ready").strip() != ""

    def scrape_text(self) -> str:
        return http_get(f"{self.url}/metrics")

    def families(self) -> dict[str, Any]:
        """Metric families by name, parsed with prometheus_client's text parser."""
        return {f.name: f for f in text_string_to_metric_families(self.scrape_text())}

    def samples(self, prefix: str = "netauto_") -> list[tuple[str, dict[str, str], float]]:
        """Every sample whose name starts with ``prefix``."""
        out = []
        for family in self.families().values():
            for s in family.samples:
                if s.name.startswith(prefix):
                    out.append((s.name, dict(s.labels), s.value))
        return out

    def value(self, name: str, **labels: str) -> float:
        """Sum of samples named ``name`` whose labels include ``labels``."""
        return sum(v for n, lab, v in self.samples(name) if n == name and labels.items() <= lab.items())

    def wait_value(self, name: str, expected: float, timeout: float = 10.0, **labels: str) -> float:
        """Poll until ``value(name, **labels) == expected`` (events land up to ~200 ms late)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.value(name, **labels)
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert got == expected, f"{name}{labels}: expected {expected}, got {got}"
        return got

    def self_errors(self) -> dict[str, float]:
        """The exporter's own error/drop counters, summed per family (all must stay 0)."""
        text = self.scrape_text()
        totals = dict.fromkeys(self.SELF_ERRORS, 0.0)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in totals:
                    totals[s.name] += s.value
                if s.name == "statsd_exporter_events_actions_total" and s.labels.get("action") == "drop":
                    totals["drop_actions"] = totals.get("drop_actions", 0.0) + s.value
        totals.setdefault("drop_actions", 0.0)
        return totals

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on the exporter's UDP socket (receive buffer full).

        ``statsd_exporter_udp_packet_drops_total`` does not see these: they never reach
        the exporter. Read from ``/proc/net/udp`` (last column), Linux only.
        """
        return udp_socket_drops(self.udp_port)

    def stop(self) -> None:
        self.process.stop()


def udp_socket_drops(port: int) -> int:
    """Kernel drops of the IPv4 UDP socket(s) bound to ``port`` (``/proc/net/udp``); 0 if none."""
    total = 0
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            total += int(fields[-1])
    return total
