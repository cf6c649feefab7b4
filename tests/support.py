"""Real processes for tests: statsd_exporter, Prometheus, Redis on free loopback ports.

A missing binary skips the test with a reason on a laptop, and FAILS it when
``CI=true``: CI must never pass by skipping the real thing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd.tooling.exporter import ExporterError, ThrowawayExporter, free_port, http_get

__all__ = [
    "IN_CI",
    "MAPPING",
    "ROOT",
    "Exporter",
    "Process",
    "find_binary",
    "free_port",
    "http_get",
    "require_binary",
    "require_module",
    "wait_until",
]

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


class Exporter(ThrowawayExporter):
    """The tooling's throw-away statsd_exporter with test-speed flags and a failing start as an AssertionError.

    The flags DogStatsD-only, loopback, no TCP come from
    :mod:`netauto_statsd.tooling.exporter` (one model of the exporter); tests add
    a large read buffer, a 50 ms event flush (polling stays quick) and debug logs.
    """

    TEST_FLAGS = ("--statsd.read-buffer=8388608", "--statsd.event-flush-interval=50ms", "--log.level=debug")

    def __init__(
        self,
        binary: str,
        tmp: Path,
        mapping: Path = MAPPING,
        extra: Iterable[str] = (),
        read_buffer: int | None = 8388608,
        udp_port: int | None = None,
    ) -> None:
        flags = [f for f in self.TEST_FLAGS if not f.startswith("--statsd.read-buffer=")]
        if read_buffer:
            flags.append(f"--statsd.read-buffer={read_buffer}")
        try:
            super().__init__(binary, mapping, log_dir=tmp, extra=(*flags, *extra), udp_port=udp_port)
        except ExporterError as exc:
            raise AssertionError(f"statsd_exporter did not start: {exc}") from None

    @property
    def process(self) -> Exporter:
        """Itself (``.log()``, ``.alive()``, ``.stop()``), like :class:`Process`."""
        return self

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on the exporter's UDP socket (receive buffer full).

        ``statsd_exporter_udp_packet_drops_total`` does not see these: they never reach
        the exporter. Read from ``/proc/net/udp`` (last column), Linux only.
        """
        return udp_socket_drops(self.udp_port)


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
