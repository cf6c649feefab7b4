"""The DogStatsD transport over UDP: what a failure half-way and a late refusal cost (and log), on real sockets."""

from __future__ import annotations

import logging
import socket

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.wire import UdpSink, closed_udp_port, split_lines

SITE = (("site", "par1"), ("protocol", "ssh"))
QUEUE = (("queue", "default"), ("state", "queued"))


def _counters(count: int) -> Batch:
    batch = Batch()
    for i in range(count):
        batch.counters[(get("runner.start"), (("site", f"s{i}"), ("protocol", "ssh")))] = 1
    return batch


def test_udp_failing_after_several_datagrams_counts_only_the_unsent_samples(sink: UdpSink) -> None:
    """Datagrams sent before a value that cannot be formatted are delivered and not counted as lost."""
    batch = _counters(40)
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=sink.port, max_packet=512))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    datagrams = sink.drain()
    assert isinstance(result, SendResult)
    delivered = len(split_lines(datagrams))
    assert len(datagrams) == result.datagrams > 3
    assert (result + 0, result.samples_failed) == (1, len(batch) - delivered)


def test_udp_to_a_closed_port_failing_half_way_counts_every_datagram_and_sample() -> None:
    batch = _counters(40)
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=closed_udp_port(), max_packet=512))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert result.datagrams > 3
    assert (result + 0, result.samples_failed) == (result.datagrams + 1, len(batch))


def test_udp_a_late_refusal_counts_the_earlier_datagrams_samples() -> None:
    """A refusal that surfaces on the next send (remote ICMP) costs the samples the refused datagram carried."""
    port = closed_udp_port()
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=port))
    one = Batch()
    one.counters[(get("runner.start"), SITE)] = 1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", port))
            assert transport.send(_counters(3)) == 0  # delivered: the sender remembers it carried 3 samples
        transport._sender._connect().send(b"lost")  # type: ignore[union-attr]  # refused, error left pending
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", port))
            listener.settimeout(5)
            result = transport.send(one)
            assert listener.recv(65535).startswith(b"netauto.runner.start:1|c|#site:par1")
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 3, 1)


def test_a_udp_send_failing_half_way_logs_why_and_what_it_cost(sink: UdpSink, caplog: pytest.LogCaptureFixture) -> None:
    """A value that cannot be formatted: the debug log says why the send failed, then how many of the
    datagrams and samples were not delivered."""
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 3
    batch.gauges[(get("rq.queue.jobs"), (("queue", "default"), ("state", "queued")))] = "many"  # type: ignore[assignment]
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=sink.port))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            result = transport.send(batch)
    finally:
        transport.close()
    assert sink.drain() == []  # the counter was never sent: the datagram was still being filled
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 2, 0)
    assert [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"] == [
        "netauto_statsd: send failed: '<' not supported between instances of 'str' and 'int'",
        "netauto_statsd: 1 of 0 datagram(s) not delivered (2 samples)",
    ]


def test_a_refused_udp_flush_logs_its_datagrams_and_samples(caplog: pytest.LogCaptureFixture) -> None:
    """Three datagrams to a closed port: "3 of 3 datagram(s) not delivered (150 samples)"."""
    batch = _counters(150)
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=closed_udp_port(), max_packet=4000))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (3, 150, 3)
    messages = [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"]
    assert messages[-1] == "netauto_statsd: 3 of 3 datagram(s) not delivered (150 samples)"
    assert not any("send failed" in m for m in messages)  # refused datagrams are no failure of the send itself


def test_one_value_per_line_for_old_exporters_each_line_lost_is_one_sample() -> None:
    """``NETAUTO_STATSD_EXPORTER_COMPAT=0.26``: a histogram travels one value a line; to a closed port
    the samples lost are the values, not more."""
    batch = Batch()
    batch.histograms[(get("runner.duration"), (*SITE, ("status", "ok")))] = [0.5, 1.25, 2.0, 3.5, 7.0]
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=closed_udp_port(), exporter_compat="0.26"))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 5, 1)
