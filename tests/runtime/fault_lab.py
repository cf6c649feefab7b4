"""The fault lab: exporters on one fixed UDP port, and the accounting row of one scenario.

Used by :mod:`tests.runtime.test_faults`. A :class:`Lab` starts, kills and restarts
real statsd_exporter processes on the same UDP port (so the client's destination
survives restarts) and adds up what every instance counted.
"""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from tests.support import Exporter, free_port

COUNT = "netauto_runner_duration_seconds_count"
ENV = "faults"


@dataclass
class Row:
    """One scenario's accounting."""

    scenario: str
    sent: int = 0
    lost: int = 0
    got: float = 0.0
    failed: int = 0  # of lost: samples_failed (refused / unsendable)
    capped: int = 0  # of lost: dropped_pending (per-context cap)
    #: of lost: samples of the client's own counters (client.send_failures) lost with the data
    #: while the exporter was down - counted by the client, but not among the app's ``sent``
    own: int = 0
    note: str = ""

    @property
    def unexplained(self) -> float:
        return self.sent + self.own - self.lost - self.got


class Lab:
    """Exporters on one fixed UDP port (so the client's destination survives restarts)."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.current: Exporter | None = None
        self.settled = 0.0  # counted by exporters that are gone

    def start(self, read_buffer: int | None = 8388608) -> Exporter:
        self.current = Exporter(self.binary, self.tmp, udp_port=self.udp_port, read_buffer=read_buffer)
        return self.current

    def count(self, **labels: str) -> float:
        now = self.current.value(COUNT, **labels) if self.current is not None else 0.0
        return self.settled + now

    def settle(self, expected: float, timeout: float = 15.0, **labels: str) -> float:
        """Poll until the exporters counted ``expected`` (or stopped moving at ``timeout``)."""
        deadline = time.monotonic() + timeout
        got = self.count(**labels)
        while got != expected and time.monotonic() < deadline:
            time.sleep(0.02)
            got = self.count(**labels)
        return got

    def kill(self, how: int = signal.SIGKILL, **labels: str) -> None:
        """Stop the current exporter after reading what it counted (it must be settled)."""
        assert self.current is not None
        self.settled += self.current.value(COUNT, **labels)
        if how == signal.SIGKILL:
            self.current.process.proc.kill()
            self.current.process.proc.wait(5)
        self.current.stop()
        self.current = None

    def self_errors(self) -> dict[str, float]:
        if self.current is None:
            return {}
        return {k: v for k, v in self.current.self_errors().items() if v}

    def close(self) -> None:
        if self.current is not None:
            self.current.stop()


def emitter_to(lab: Lab, **overrides: object) -> Emitter:
    options: dict[str, object] = {"host": "127.0.0.1", "port": lab.udp_port, "env": ENV, "flush_interval": 60}
    return Emitter(Settings(**{**options, **overrides}))  # type: ignore[arg-type]


def emit(emitter: Emitter, n: int, site: str = "par1") -> int:
    tags = {"site": site, "protocol": "ssh", "status": "ok"}
    for i in range(n):
        emitter.histogram("runner.duration", (i % 50) / 10, tags=tags)
    return n


def client_lost(emitter: Emitter, row: Row | None = None) -> int:
    stats = emitter.stats()
    if row is not None:
        row.failed, row.capped = stats["samples_failed"], stats["dropped_pending"]
    return stats["samples_failed"] + stats["dropped_pending"]


def wait_stable(lab: Lab) -> None:
    last, still = -1.0, 0
    while still < 5:
        now = lab.count()
        still = still + 1 if now == last else 0
        last = now
        time.sleep(0.02)
