"""What one :meth:`Emitter.flush` counts when its datagrams cannot go out, and what it tells operators.

A flush whose packets fail adds them to ``stats()`` (``flushes``, ``packets_failed``,
``samples_failed``), logs one debug line with the number, and hands the number to the
client's own counter ``client.send_failures``, which the next flush that can send
delivers. Tested with the real unix-socket transport (the socket missing, then bound),
a third-party transport that raises (the ``Transport`` protocol is open to them), and
the per-context cap that drops what sampling rates cannot carry.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.aggregate import MAX_REPEAT
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]
RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}


def _debug_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "netauto_statsd" and r.levelno == logging.DEBUG]


def _read_all(receiver: socket.socket) -> list[bytes]:
    datagrams = []
    while True:
        try:
            datagrams.append(receiver.recv(65536))
        except BlockingIOError:
            return datagrams


def test_failed_packets_are_logged_counted_and_sent_as_the_clients_own_counter_next_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unix_path = str(tmp_path / "statsd.socket")  # not bound yet: every send to it fails
    emitter = Emitter(Settings(socket_path=f"unix://{unix_path}", flush_interval=60))
    try:
        values = [i / 1000 for i in range(2000)]  # several datagrams' worth
        emitter.histogram_many("runner.duration", values, tags=RUN_OK)
        emitter.gauge("liveview.sessions", 3, tags={"view": "/v"})
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            assert emitter.flush() == len(values) + 1
        first = emitter.stats()
        failed = first["packets_failed"]
        assert failed > 1 and first["samples_failed"] == len(values) + 1 and first["flushes"] == 1
        assert f"netauto_statsd: {failed} packet(s) could not be sent" in _debug_lines(caplog)

        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # the agent's socket appears
        try:
            receiver.bind(unix_path)
            receiver.setblocking(False)
            caplog.clear()
            with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
                assert emitter.flush() == 2  # the failure count, and the gauge that still lives
            lines = sorted(split_lines(_read_all(receiver)))
            second = emitter.stats()
        finally:
            receiver.close()
    finally:
        emitter.close()
    process = normalise_value(f"{socket.gethostname()}-{os.getpid()}")  # this process (a worker may fork us)
    assert lines == [
        f"netauto.client.send_failures:{failed}|c|#env:dev,service:netauto",
        f"netauto.liveview.sessions:3|g|#view:/v,process:{process},env:dev,service:netauto",
    ]
    assert second == {**first, "flushes": 2}  # nothing else failed
    assert not any("could not be sent" in line for line in _debug_lines(caplog))


@dataclasses.dataclass
class RaisesOnce:
    """A third-party transport with a bug in its first send; afterwards it sends through the real one."""

    real: DogStatsdTransport
    raised: int = 0

    def send(self, batch: Batch) -> int:
        if not self.raised:
            self.raised = 1
            raise OSError("cable unplugged")
        return self.real.send(batch)

    def close(self) -> None:
        self.real.close()


def test_a_transport_that_raises_is_one_failed_packet_logged_never_raised(
    sink: UdpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(host="127.0.0.1", port=sink.port, flush_interval=60)
    emitter = Emitter(settings, transport=RaisesOnce(DogStatsdTransport(settings)))
    try:
        emitter.increment("run.created", 2, tags={"site": "par1", "protocol": "ssh"})
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            assert emitter.flush() == 1
        assert _debug_lines(caplog) == [
            "netauto_statsd: transport error: cable unplugged",
            "netauto_statsd: 1 packet(s) could not be sent",
        ]
        stats = emitter.stats()
        assert (stats["flushes"], stats["packets_failed"], stats["samples_failed"]) == (1, 1, 1)
        assert emitter.flush() == 1
        assert split_lines(sink.drain()) == ["netauto.client.send_failures:1|c|#env:dev,service:netauto"]
    finally:
        emitter.close()


def test_samples_past_the_repetition_cap_add_up_over_flushes_in_stats(sink: UdpSink) -> None:
    """``dropped_pending`` is a total since creation, like ``client.dropped{reason=pending_overflow}``."""
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, flush_interval=60))
    emitter._agg.capacity = 2  # tiny per-flush capacity, so the cap on repetition is reachable
    try:
        dropped = []
        for extra in (3, 5):
            emitter.histogram_many("runner.duration", [0.5] * (2 * MAX_REPEAT + extra), tags=RUN_OK)
            emitter.flush()
            lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
            dropped += [x.values[0] for x in lines if x.name == "netauto.client.dropped"]
            assert emitter.stats()["dropped_pending"] == sum(dropped)
    finally:
        emitter.close()
    assert dropped == [3, 5] and emitter.stats()["flushes"] == 2
