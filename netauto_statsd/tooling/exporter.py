"""One model of statsd_exporter: its flags, its version, and a throw-away instance on free loopback ports.

``check``'s live proof, the tests (``tests/support.py``) and the benches all start
the exporter through :class:`ThrowawayExporter`, so the flags it runs with are
written once: DogStatsD-only (no InfluxDB, Librato or SignalFx tag parsing), UDP
on loopback, no TCP listener. Its own error counters (:data:`SELF_ERRORS`) are
read the same way everywhere.

Example:
    >>> with ThrowawayExporter("statsd_exporter", Path("bridge/statsd_mapping.yml")) as exp:  # doctest: +SKIP
    ...     exp.wait_value("netauto_runs_created_total", 3)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

#: The version the repo's mapping, compose file and tests are written for.
PINNED_VERSION = "v0.30.0"
#: The first release that accepts DogStatsD multi-value lines (``name:v1:v2|h``).
MULTI_VALUE_SINCE = (0, 27, 1)
#: The client setting that keeps every sample arriving at exporters before :data:`MULTI_VALUE_SINCE`.
COMPAT_SETTING = "NETAUTO_STATSD_EXPORTER_COMPAT=0.26"
#: Turn off every tag dialect but DogStatsD's: a ``,`` or ``#`` in a name must not become labels.
DOGSTATSD_ONLY_FLAGS = (
    "--no-statsd.parse-influxdb-tags",
    "--no-statsd.parse-librato-tags",
    "--no-statsd.parse-signalfx-tags",
)
#: The exporter's own counters that must stay at 0 when everything we send is well formed and mapped.
SELF_ERRORS = (
    "statsd_exporter_sample_errors_total",
    "statsd_exporter_tag_errors_total",
    "statsd_exporter_events_conflict_total",
    "statsd_exporter_events_unmapped_total",
    "statsd_exporter_events_error_total",
    "statsd_exporter_udp_packet_drops_total",
)
INSTALL_HOW = f"go install github.com/prometheus/statsd_exporter@{PINNED_VERSION}"

Sample = tuple[str, dict[str, str], float]


class ExporterError(RuntimeError):
    """The exporter binary cannot be used (missing, not executable, exits at once); one line for humans."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 for ``kind`` (``SOCK_STREAM`` or ``SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> str:
    """GET ``url`` and return the body as text."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def find_exporter(explicit: str | None = None) -> str | None:
    """``explicit`` if given (validated later), else ``statsd_exporter`` on PATH."""
    return explicit or shutil.which("statsd_exporter")


def validate_binary(binary: str) -> str:
    """Return what ``binary --version`` prints; raise :class:`ExporterError` (one line) if it is no statsd_exporter."""
    path = Path(binary)
    if not path.exists():
        raise ExporterError(f"{binary}: no such file (install it: {INSTALL_HOW})")
    if path.is_dir() or not _executable(path):
        raise ExporterError(f"{binary}: not an executable file")
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExporterError(f"{binary}: cannot run it: {exc}") from None
    said = (done.stdout + done.stderr).strip()
    if "statsd_exporter" not in said:
        shown = said.splitlines()[0][:80] if said else "nothing"
        raise ExporterError(f"{binary}: not statsd_exporter (`--version` printed {shown})")
    return said


def _executable(path: Path) -> bool:
    import os

    return os.access(path, os.X_OK)


@dataclass(frozen=True)
class ExporterVersion:
    """What ``go version -m`` says about a go-built binary."""

    module: str
    version: str  # e.g. "v0.30.0" or "(devel)"

    def as_tuple(self) -> tuple[int, ...] | None:
        """``(0, 30, 0)`` for ``v0.30.0``; ``None`` when it is not a release version."""
        found = re.match(r"^v(\d+)\.(\d+)\.(\d+)", self.version)
        return tuple(int(part) for part in found.groups()) if found else None

    def rejects_multi_value(self) -> bool:
        """Whether this release predates multi-value DogStatsD lines (every packed histogram sample lost)."""
        version = self.as_tuple()
        return version is not None and version < MULTI_VALUE_SINCE


def exporter_version(binary: str, go: str | None = None) -> ExporterVersion | None:
    """The version of an exporter binary; ``None`` if unknown.

    The module version of a ``go install``-ed exporter, read with ``go version -m``
    (needs the ``go`` tool); else the release version ``--version`` prints (set
    in release builds, empty in ``go install`` builds).
    """
    go = go or shutil.which("go")
    if go is not None:
        try:
            done = subprocess.run([go, "version", "-m", binary], capture_output=True, text=True, timeout=20)
            for line in done.stdout.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "mod" and parts[1].endswith("statsd_exporter"):
                    return ExporterVersion(parts[1], parts[2])
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        said = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"version (\d+\.\d+\.\d+)", said.stdout + said.stderr)
    return ExporterVersion("github.com/prometheus/statsd_exporter", f"v{found.group(1)}") if found else None


def exporter_args(binary: str, mapping: Path, udp_port: int, web_port: int, extra: Iterable[str] = ()) -> list[str]:
    """The command line every throw-away exporter runs with."""
    return [
        binary,
        f"--statsd.mapping-config={mapping}",
        f"--statsd.listen-udp=127.0.0.1:{udp_port}",
        "--statsd.listen-tcp=",
        f"--web.listen-address=127.0.0.1:{web_port}",
        *DOGSTATSD_ONLY_FLAGS,
        *extra,
    ]


def parse_families(text: str) -> dict[str, Any]:
    """``/metrics`` text as prometheus_client metric families by name (needs the ``check`` extra)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family for family in text_string_to_metric_families(text)}


class ThrowawayExporter:
    """A real statsd_exporter on free loopback ports, stopped by :meth:`stop` (or ``with``).

    Args:
        binary: the statsd_exporter executable.
        mapping: the mapping file it loads.
        log_dir: where its log goes (a temporary file when ``None``).
        extra: more flags, e.g. ``--statsd.event-flush-interval=50ms``.
        timeout: seconds to wait for ``/-/ready``.

    Raises:
        ExporterError: the binary is missing, not executable, or exited / never became ready
            (the message quotes the last line of its log).
    """

    def __init__(
        self,
        binary: str,
        mapping: Path,
        log_dir: Path | None = None,
        extra: Iterable[str] = (),
        timeout: float = 20.0,
        udp_port: int | None = None,
    ) -> None:
        validate_binary(binary)
        self.binary = binary
        # a given UDP port: a restarted exporter listens where the client already sends
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM)
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.args = exporter_args(binary, mapping, self.udp_port, self.web_port, extra)
        self._tail = ""
        self.log_path: Path | None = log_dir / f"statsd_exporter-{self.web_port}.log" if log_dir else None
        self._log: IO[bytes] = (
            open(self.log_path, "w+b") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        )
        try:
            self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        except OSError as exc:
            self._log.close()
            raise ExporterError(f"{binary}: cannot run it: {exc.strerror or exc}") from None
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.proc.poll() is not None else f"not ready after {timeout:g}s"
                last = self.last_log_line()
                self.stop()
                raise ExporterError(
                    f"{binary} {why} instead of serving /-/ready"
                    + (f": {last}" if last else " (no output: is it really statsd_exporter?)")
                )
            time.sleep(0.02)

    def __enter__(self) -> ThrowawayExporter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _ready(self) -> bool:
        try:
            return http_get(f"{self.url}/-/ready", timeout=1).strip() != ""
        except OSError:
            return False

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def log(self, limit: int = 4000) -> str:
        """The tail of its log."""
        if self._log.closed:
            return self._tail[-limit:]
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def last_log_line(self) -> str:
        """The last non-empty log line ('' when it printed nothing)."""
        lines = [line for line in self.log().splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    # ---------------------------------------------------------------- reading
    def scrape_text(self) -> str:
        """The raw ``/metrics`` page."""
        return http_get(f"{self.url}/metrics")

    def families(self) -> dict[str, Any]:
        """Metric families by name, parsed with prometheus_client's text parser."""
        return parse_families(self.scrape_text())

    def samples(self, prefix: str = "netauto_") -> list[Sample]:
        """Every sample whose name starts with ``prefix``."""
        return [
            (s.name, dict(s.labels), s.value)
            for family in self.families().values()
            for s in family.samples
            if s.name.startswith(prefix)
        ]

    def value(self, name: str, **labels: str) -> float:
        """Sum of samples named ``name`` whose labels include ``labels``."""
        return sum(v for n, lab, v in self.samples(name) if n == name and labels.items() <= lab.items())

    def wait_value(self, name: str, expected: float, timeout: float = 10.0, **labels: str) -> float:
        """Poll until ``value(name, **labels) == expected`` (events land up to ~200 ms late); assert it."""
        got = float(self.poll(lambda: self.value(name, **labels), lambda v: v == expected, timeout))
        assert got == expected, f"{name}{labels}: expected {expected}, got {got}"
        return got

    def poll(self, read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """Call ``read`` until ``done(result)`` or ``timeout``; return the last result."""
        deadline = time.monotonic() + timeout
        while True:
            result = read()
            if done(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.02)

    def self_errors(self) -> dict[str, float]:
        """The exporter's own error/drop counters, summed per family, plus ``drop_actions`` (all must stay 0).

        ``statsd_exporter_sample_errors_total`` is also broken down by reason as
        ``statsd_exporter_sample_errors_total{reason=...}`` keys when non-zero.
        """
        totals = dict.fromkeys(SELF_ERRORS, 0.0)
        totals["drop_actions"] = 0.0
        for family in self.families().values():
            for s in family.samples:
                if s.name in totals:
                    totals[s.name] += s.value
                    reason = s.labels.get("reason")
                    if reason and s.value:
                        key = f"{s.name}{{reason={reason}}}"
                        totals[key] = totals.get(key, 0.0) + s.value
                if s.name == "statsd_exporter_events_actions_total" and s.labels.get("action") == "drop":
                    totals["drop_actions"] += s.value
        return totals

    def stop(self) -> None:
        """Terminate the process (kill after 5 s) and close its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._tail = self.log(20000)
            self._log.close()
