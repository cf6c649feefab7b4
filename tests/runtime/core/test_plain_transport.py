"""The plain StatsD transport (``wire.plain``) on its own: exact lines, datagram sizes and loss accounting.

Each test hands a :class:`Batch` to a :class:`PlainStatsdTransport` and reads what a real
loopback UDP socket received (or, for losses, sends to a real closed port): no mock socket.
"""

from __future__ import annotations

import logging
import os
import socket

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.plain import PlainStatsdTransport
from tests.runtime.core.wire import UdpSink, closed_udp_port, split_lines

SITE = (("site", "par1"), ("protocol", "ssh"))
OK = (*SITE, ("status", "ok"))
QUEUE = (("queue", "default"), ("state", "queued"))
VIEW = (("view", "v1"),)


def _settings(port: int, **overrides: object) -> Settings:
    return Settings(**{"host": "127.0.0.1", "port": port, "env": "dev", "service": "netauto", **overrides})  # type: ignore[arg-type]


def _send(settings: Settings, batch: Batch) -> SendResult:
    transport = PlainStatsdTransport(settings)
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    return result


def _every_kind() -> Batch:
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 3
    batch.counters[(get("chunk.bytes"), (("site", "lon2"), ("protocol", "netconf")))] = 1.5
    batch.gauges[(get("liveview.sessions"), VIEW)] = 2.0  # integral float: no '.0'
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = -3  # absolute -3: set 0, then move down
    batch.gauges[(get("rq.queue.jobs"), (("queue", "low"), ("state", "queued")))] = 0  # plain 0, no move
    batch.gauges[(get("rq.workers"), (("queue", "default"), ("state", "busy")))] = 2.5
    batch.histograms[(get("runner.duration"), OK)] = [1.25, 0.0005]
    batch.sampled[(get("runner.duration"), OK)] = [(0.5, [0.25]), (0.25, [2.0])]
    return batch


@pytest.mark.parametrize(("namespace", "prefix"), [("netauto", "netauto."), ("", "")])
def test_plain_sends_each_kind_as_its_exact_line_with_or_without_namespace(
    sink: UdpSink, namespace: str, prefix: str
) -> None:
    """Counters, absolute and negative gauges, |ms x1000 histograms and sampled values repeated 1/rate times."""
    result = _send(_settings(sink.port, namespace=namespace), _every_kind())
    lines = split_lines(sink.drain())
    assert lines == [
        f"{prefix}{line}"
        for line in (
            "runner.start.par1.ssh.dev.netauto:3|c",
            "chunk.bytes.lon2.netconf.dev.netauto:1.5|c",
            "liveview.sessions.v1.dev.netauto:2|g",
            "rq.queue.jobs.default.queued.dev.netauto:0|g",
            "rq.queue.jobs.default.queued.dev.netauto:-3|g",
            "rq.queue.jobs.low.queued.dev.netauto:0|g",
            "rq.workers.default.busy.dev.netauto:2.5|g",
            "runner.duration.par1.ssh.ok.dev.netauto:1250.000000|ms",
            "runner.duration.par1.ssh.ok.dev.netauto:0.500000|ms",
            *["runner.duration.par1.ssh.ok.dev.netauto:250.000000|ms"] * 2,
            *["runner.duration.par1.ssh.ok.dev.netauto:2000.000000|ms"] * 4,
        )
    ]
    assert (result + 0, result.samples_failed, result.datagrams) == (0, 0, 1)


def test_plain_splits_datagrams_at_max_packet_and_counts_each(sink: UdpSink) -> None:
    """No datagram longer than ``max_packet``; ``datagrams`` is the number that arrived, every line kept."""
    batch = Batch()
    batch.histograms[(get("runner.duration"), OK)] = [0.001 * i for i in range(200)]
    result = _send(_settings(sink.port, max_packet=256), batch)
    datagrams = sink.drain()
    assert len(datagrams) == result.datagrams > 10
    assert max(len(d) for d in datagrams) < 256
    assert len(split_lines(datagrams)) == 200
    assert (result + 0, result.samples_failed) == (0, 0)


def test_plain_to_a_closed_port_counts_every_datagram_and_every_sample_lost() -> None:
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 1
    batch.histograms[(get("runner.duration"), OK)] = [0.001 * i for i in range(100)]
    result = _send(_settings(closed_udp_port(), max_packet=256), batch)
    assert result.datagrams > 1
    assert result + 0 == result.datagrams  # every datagram refused
    assert result.samples_failed == len(batch) == 101


def test_plain_lost_negative_gauge_is_one_sample_lost_not_two() -> None:
    """A negative gauge travels as two lines (``0``, then the value) but is one sample of the batch."""
    batch = Batch()
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = -3
    result = _send(_settings(closed_udp_port()), batch)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, len(batch), 1) == (1, 1, 1)


def test_plain_lost_sampled_value_is_one_sample_lost_however_often_repeated() -> None:
    """A sampled value repeated ``1/rate`` times on the wire is still one sample of the batch."""
    batch = Batch()
    batch.sampled[(get("runner.duration"), OK)] = [(0.25, [0.5, 1.5])]
    result = _send(_settings(closed_udp_port()), batch)
    assert (result + 0, result.samples_failed) == (1, len(batch)) == (1, 2)


def test_plain_counts_only_the_current_sends_losses(sink: UdpSink) -> None:
    """Failures of one send are not carried into the next one, on the same transport."""
    port = closed_udp_port()
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 1
    transport = PlainStatsdTransport(_settings(port))
    try:
        lost = transport.send(batch)
        assert (lost + 0, lost.samples_failed) == (1, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", port))  # the port now listens: the same batch arrives
            listener.settimeout(5)
            sent = transport.send(batch)
            assert listener.recv(65535) == b"netauto.runner.start.par1.ssh.dev.netauto:1|c"
    finally:
        transport.close()
    assert isinstance(sent, SendResult)
    assert (sent + 0, sent.samples_failed, sent.datagrams) == (0, 0, 1)


def test_plain_send_failing_midway_never_raises_and_counts_the_unsent_samples(sink: UdpSink) -> None:
    """A value the transport cannot format stops the send: what was formatted is sent, the rest counted lost."""
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 2
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    batch.histograms[(get("runner.duration"), OK)] = [0.5, 1.0]
    result = _send(_settings(sink.port), batch)
    assert split_lines(sink.drain()) == ["netauto.runner.start.par1.ssh.dev.netauto:2|c"]
    assert (result + 0, result.samples_failed, result.datagrams) == (1, len(batch) - 1, 1) == (1, 3, 1)


def test_plain_empty_batch_sends_nothing(sink: UdpSink) -> None:
    result = _send(_settings(sink.port), Batch())
    assert sink.drain() == []
    assert (result + 0, result.samples_failed, result.datagrams) == (0, 0, 0)


def test_plain_close_releases_the_socket(sink: UdpSink) -> None:
    """``close`` closes the UDP socket the first send opened (one fewer open descriptor)."""
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 1
    transport = PlainStatsdTransport(_settings(sink.port))
    before = len(os.listdir("/proc/self/fd"))
    transport.send(batch)
    opened = len(os.listdir("/proc/self/fd"))
    transport.close()
    assert opened > before
    assert len(os.listdir("/proc/self/fd")) < opened
    transport.close()  # twice is fine
    assert split_lines(sink.drain()) == ["netauto.runner.start.par1.ssh.dev.netauto:1|c"]


def test_plain_send_failing_midway_after_a_good_send_still_counts_the_unsent_samples(sink: UdpSink) -> None:
    """The samples handed to the socket are counted per send: an earlier send does not hide a later loss."""
    good = Batch()
    good.histograms[(get("runner.duration"), OK)] = [0.5] * 5
    bad = Batch()
    bad.counters[(get("runner.start"), SITE)] = 2
    bad.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    transport = PlainStatsdTransport(_settings(sink.port))
    try:
        assert transport.send(good) == 0
        result = transport.send(bad)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed) == (1, 1)
    assert len(split_lines(sink.drain())) == 6


def test_plain_send_failing_midway_to_a_closed_port_counts_lost_and_unsent_samples_together(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The datagram already refused and the lines never formatted are both lost: one failure each, every sample."""
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 2
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        result = _send(_settings(closed_udp_port()), batch)
    assert (result + 0, result.samples_failed, result.datagrams) == (2, len(batch), 1) == (2, 2, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("netauto_statsd: plain send failed: could not convert") for m in messages)


def test_plain_samples_handed_add_up_over_several_datagrams_before_a_failure(sink: UdpSink) -> None:
    """Thirty counters in several datagrams, then a value that cannot be formatted: only that one sample is lost."""
    batch = Batch()
    for i in range(30):
        batch.counters[(get("runner.start"), (("site", f"site{i}"), ("protocol", "ssh")))] = 1
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    result = _send(_settings(sink.port, max_packet=256), batch)
    datagrams = sink.drain()
    assert len(split_lines(datagrams)) == 30
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 1, len(datagrams))
    assert len(datagrams) > 2


def test_plain_drops_and_counts_a_line_that_is_not_ascii(sink: UdpSink, caplog: pytest.LogCaptureFixture) -> None:
    """Tag values are normalised before the transport; a non-ASCII one is dropped, counted and logged."""
    batch = Batch()
    batch.counters[(get("runner.start"), (("site", "\u00e9t\u00e9"), ("protocol", "ssh")))] = 1
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        result = _send(_settings(sink.port), batch)
    assert sink.drain() == []
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 1, 1)
    assert any(r.getMessage().startswith("netauto_statsd: plain packet dropped: 'ascii' codec") for r in caplog.records)


def test_plain_a_late_refusal_counts_the_earlier_datagrams_samples() -> None:
    """A refusal that surfaces on the next send (remote ICMP) is added to that send's result with the
    samples the refused datagram carried; the datagram after it is retried and delivered."""
    port = closed_udp_port()
    three = Batch()
    for site in ("a", "b", "c"):
        three.counters[(get("runner.start"), (("site", site), ("protocol", "ssh")))] = 1
    one = Batch()
    one.counters[(get("runner.start"), SITE)] = 1
    transport = PlainStatsdTransport(_settings(port))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", port))
            assert transport.send(three) == 0  # delivered: the sender remembers it carried 3 samples
        # the exporter went away: the next datagram is refused, the error left pending as a remote ICMP would
        transport._client.sender._connect().send(b"lost")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", port))
            listener.settimeout(5)
            result = transport.send(one)
            assert listener.recv(65535) == b"netauto.runner.start.par1.ssh.dev.netauto:1|c"
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, 3, 1)


def test_plain_sends_to_the_configured_host_and_pacing() -> None:
    """The host is the configured one (127.0.0.2 here, not the default loopback), and the pacing settings
    reach the sender."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.2", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        batch = Batch()
        batch.counters[(get("runner.start"), SITE)] = 1
        transport = PlainStatsdTransport(
            Settings(host="127.0.0.2", port=port, pace_rate=2_500_000, pace_burst=65536, env="dev", service="x")
        )
        try:
            assert transport.send(batch) == 0
            assert listener.recv(65535) == b"netauto.runner.start.par1.ssh.dev.x:1|c"
            sender = transport._client.sender
            assert (sender.host, sender.port, sender.rate, sender.burst) == ("127.0.0.2", port, 2_500_000, 65536)
        finally:
            transport.close()
