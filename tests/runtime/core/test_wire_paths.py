"""The two DogStatsD paths put the same bytes on the wire.

Over UDP the transport serialises the lines itself (``wire.base.DogStatsdLines``);
to a unix socket it hands them to datadog's ``DogStatsd`` client. The same batch
sent both ways, to a real UDP socket and a real unix datagram socket, must arrive
as the same lines: every counter, negative gauge, multi-value and sampled
histogram, with and without a namespace, multi-value on and off. A serialiser
that drifts from the client's text (tag order, constant tags, ``|@rate``) fails here.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.wire import UdpSink, closed_udp_port, split_lines


def _batch(repeat: int) -> Batch:
    run, view, queue, duration = (
        get("runner.start"),
        get("liveview.sessions"),
        get("rq.queue.jobs"),
        get("runner.duration"),
    )
    site = (("site", "par1"), ("protocol", "ssh"))
    batch = Batch()
    batch.counters[(run, site)] = 3
    batch.counters[(run, (("site", "lon2"), ("protocol", "netconf")))] = 1.5
    batch.gauges[(view, (("view", "/runs/{run_id}/live"),))] = 7
    batch.gauges[(queue, (("queue", "default"), ("state", "queued")))] = -3  # sent as 0, then -3
    status = (*site, ("status", "ok"))
    batch.histograms[(duration, status)] = [0.5, 3.0, 12, 1e-07] * repeat  # several lines, several datagrams
    batch.sampled[(duration, status)] = [(0.25, [0.125, 2.0] * (repeat // 4)), (0.1, [7.5])]
    return batch


class UnixSink:
    """A unix datagram socket read by a thread (its queue holds only a few datagrams)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            if select.select([self.sock], [], [], 0.01)[0]:
                self.datagrams.append(self.sock.recv(65535))

    def drain(self) -> list[bytes]:
        """Stop reading once nothing is left (the client's sends are synchronous: all were queued)."""
        self._stop.set()
        self._thread.join(5)
        while select.select([self.sock], [], [], 0)[0]:
            self.datagrams.append(self.sock.recv(65535))
        return self.datagrams


@pytest.fixture
def unix_sink(tmp_path: Path) -> Iterator[UnixSink]:
    receiver = UnixSink(tmp_path / "dsd.socket")
    yield receiver
    receiver.sock.close()


@pytest.mark.parametrize(("namespace", "compat"), [("netauto", ""), ("", ""), ("netauto", "0.26")])
def test_udp_and_unix_socket_send_the_same_lines(
    sink: UdpSink, unix_sink: UnixSink, namespace: str, compat: str
) -> None:
    base = Settings(namespace=namespace, exporter_compat=compat, max_packet=512, env="dev", service="netauto")
    udp = DogStatsdTransport(dataclasses.replace(base, host="127.0.0.1", port=sink.port))
    unix = DogStatsdTransport(dataclasses.replace(base, socket_path=f"unix://{unix_sink.path}"))
    try:
        # one value per line makes a datagram per few values: fewer, or the unix socket's short queue overflows
        repeat = 6 if compat else 150
        sent_udp, sent_unix = udp.send(_batch(repeat)), unix.send(_batch(repeat))
        by_unix = unix_sink.drain()
        by_udp = sink.drain()
    finally:
        udp.close()
        unix.close()

    assert isinstance(sent_udp, SendResult) and isinstance(sent_unix, SendResult)
    assert (sent_udp + 0, sent_udp.samples_failed) == (0, 0) == (sent_unix + 0, sent_unix.samples_failed)
    lines = split_lines(by_udp)
    assert lines == split_lines(by_unix)
    assert len(by_udp) == sent_udp.datagrams > 1
    assert max(len(d) for d in by_udp) <= 512
    assert all(d.endswith(b"\n") for d in by_udp)
    prefix = f"{namespace}." if namespace else ""
    assert lines[0] == f"{prefix}runner.start:3|c|#site:par1,protocol:ssh,env:dev,service:netauto"
    assert f"{prefix}rq.queue.jobs:0|g|#queue:default,state:queued,env:dev,service:netauto" in lines
    sampled = [line for line in lines if "|@" in line]
    assert sampled and all("|h|@0.25|#" in line or "|h|@0.1|#" in line for line in sampled)
    # one value per line for old exporters (5 tags), several per line otherwise
    if compat:
        assert all(line.count(":") == 6 for line in lines if "runner.duration" in line)


def test_a_lost_negative_gauge_is_one_sample_lost_not_two() -> None:
    """A negative gauge travels as two lines (``0``, then the value) but is one sample of the batch."""
    batch = Batch()
    batch.gauges[(get("rq.queue.jobs"), (("queue", "default"), ("state", "queued")))] = -3
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=closed_udp_port()))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, len(batch), 1) == (1, 1, 1)
