"""Pacing (wire/pacing.py, wire/receiver.py): small flushes never wait, large ones arrive complete.

Everything runs against real sockets and the real kernel: the receive-buffer
charge of a datagram is read back from the kernel, the exporter is a real
statsd_exporter with the kernel's default receive buffer, and pauses are
counted, never timed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.config import ConfigError, Settings, from_env
from netauto_statsd.emitter import Emitter
from netauto_statsd.wire.pacing import DEFAULT_RATE, REMOTE_BURST, Pacer, kernel_cost, rmem_default
from netauto_statsd.wire.receiver import ReceiverProbe
from netauto_statsd.wire.udp import UdpSender
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines
from tests.support import Exporter, require_binary, udp_socket_drops

FULL = 1432  # the default max_packet: a full datagram of a large flush


@pytest.fixture
def quiet_receiver() -> Iterator[socket.socket]:
    """A UDP socket that reads nothing until the test does (a stopped exporter), with a 64 KiB buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # the kernel doubles it
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def read_all(sock: socket.socket) -> list[bytes]:
    """Every datagram queued on ``sock`` now."""
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(sock.recv(65535))
        except BlockingIOError:
            return got


@pytest.mark.parametrize("size", [64, 200, 512, 1000, FULL, 4000, 8000])
def test_the_cost_estimate_is_never_below_what_the_kernel_charges(size: int) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    receiver.bind(("127.0.0.1", 0))
    probe = ReceiverProbe(receiver.getsockname()[1])
    try:
        before = probe.room()
        assert before is not None, "sock_diag did not report the socket"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(10):
                sender.sendto(b"x" * size, receiver.getsockname())
        after = probe.room()
        assert after is not None
        charged = (before - after) / 10
        assert size < charged <= kernel_cost(size), (size, charged, kernel_cost(size))
        assert len(read_all(receiver)) == 10
    finally:
        probe.close()
        receiver.close()


def test_the_probe_sees_a_dual_stack_socket_and_nothing_on_a_free_port() -> None:
    receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    receiver.bind(("::", 0))
    port = receiver.getsockname()[1]
    probe = ReceiverProbe(port)
    try:
        empty = probe.room()
        assert empty is not None and empty > 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"x" * FULL, ("127.0.0.1", port))  # IPv4 into the [::] socket
        assert (probe.room() or empty) < empty
    finally:
        probe.close()
        receiver.close()
    assert ReceiverProbe(port).room() is None  # nobody bound: unknown, not "empty"


def test_a_small_flush_never_pauses(sink: UdpSink) -> None:
    """30 full datagrams, the fixed bucket (a receiver the client cannot observe): within the burst."""
    sender = UdpSender("127.0.0.1", sink.port, observe=False)
    try:
        for _ in range(30):
            assert sender.send(b"x" * FULL)
        assert sender.pauses == 0
        assert len(sink.drain()) == 30
    finally:
        sender.close()


def test_a_flush_of_10000_contexts_does_not_pause_while_the_receiver_has_room(sink: UdpSink) -> None:
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, flush_interval=60))
    try:
        for i in range(10_000):
            emitter.increment("run.created", tags={"site": f"s{i}", "protocol": "ssh"})
        emitter.flush()
        sender = emitter._transport._sender  # type: ignore[attr-defined]
        assert sender.pacer.probe is not None and sender.pacer.probes >= 1  # observed, not guessed
        assert sender.pauses == 0
        assert emitter.stats()["packets_failed"] == 0
    finally:
        emitter.close()


def test_the_fixed_bucket_pauses_beyond_its_burst(sink: UdpSink) -> None:
    sender = UdpSender("127.0.0.1", sink.port, burst=16384, rate=2_000_000, observe=False)
    try:
        for _ in range(100):  # 237 KB charged: 16 KB at once, the rest at 2 MB/s
            assert sender.send(b"x" * FULL)
        assert sender.pauses >= 3
        assert sender.slept > 0
        assert len(sink.drain()) == 100
    finally:
        sender.close()


def test_beyond_the_exporters_packet_queue_the_rate_applies_even_with_room(sink: UdpSink) -> None:
    """statsd_exporter drops what overflows its own queue of packets, however empty its socket is."""
    pacer = Pacer(burst=1 << 30, rate=1_000_000, probe=ReceiverProbe(sink.port), queue=100)
    assert all(pacer.admit(64) for _ in range(100))
    assert pacer.pauses == 0  # the whole queue allowance at once: the socket has megabytes of room
    assert all(pacer.admit(64) for _ in range(50))
    assert pacer.pauses >= 1  # then at ``rate`` (~420 full datagrams/s here)
    assert pacer.probes >= 1 and pacer.refused == 0


def test_a_receiver_that_stays_full_loses_nothing_unseen(quiet_receiver: socket.socket) -> None:
    """What would overflow a stalled receiver's buffer is not sent and is counted; the kernel drops nothing."""
    port = quiet_receiver.getsockname()[1]
    sender = UdpSender("127.0.0.1", port)
    try:
        results = [sender.send(b"x" * FULL) for _ in range(60)]  # 142 KB charged into a 64 KiB buffer
        assert sender.pacer is not None
        refused = sender.pacer.refused
        assert refused == results.count(False) > 0
        assert sender.pauses > 0  # it waited for the receiver before giving up
        assert len(read_all(quiet_receiver)) == 60 - refused
        assert udp_socket_drops(port) == 0
        # once the receiver has read, sending resumes
        assert sender.send(b"y" * FULL)
        assert read_all(quiet_receiver) == [b"y" * FULL]
    finally:
        sender.close()


def test_a_stalled_receivers_overflow_reaches_the_client_self_metric(quiet_receiver: socket.socket) -> None:
    """Through the emitter: the refused datagrams are counted, and the count is sent once there is room."""
    port = quiet_receiver.getsockname()[1]
    emitter = Emitter(Settings(host="127.0.0.1", port=port, flush_interval=60))
    try:
        values = [i / 1e6 for i in range(20_000)]  # ~200 KB of distinct values: ~140 datagrams
        emitter.histogram_many("runner.duration", values, {"site": "par1", "protocol": "ssh", "status": "ok"})
        emitter.flush()
        sender = emitter._transport._sender  # type: ignore[attr-defined]
        stats = emitter.stats()
        assert stats["packets_failed"] == sender.pacer.refused > 0
        assert 0 < stats["samples_failed"] < len(values)
        arrived = split_lines(read_all(quiet_receiver))  # the exporter reads again
        got = sum(len(parse_dogstatsd(line).values) for line in arrived if "runner.duration" in line)
        assert got + stats["samples_failed"] == len(values)  # every sample arrived or is counted
        assert udp_socket_drops(port) == 0
        emitter.flush()
        lines = split_lines(read_all(quiet_receiver))
        assert any(line.startswith(f"netauto.client.send_failures:{stats['packets_failed']}|c") for line in lines)
    finally:
        emitter.close()


def test_no_pacing_when_the_rate_is_zero(quiet_receiver: socket.socket) -> None:
    sender = UdpSender("127.0.0.1", quiet_receiver.getsockname()[1], rate=0)
    try:
        assert all(sender.send(b"x" * FULL) for _ in range(60))  # the kernel drops what does not fit, unseen
        assert sender.pauses == 0
        assert len(read_all(quiet_receiver)) < 60
    finally:
        sender.close()


# ------------------------------------------------------------- the real exporter
def big_flush(emitter: Emitter) -> int:
    """~90,000 distinct histogram values (~1 MB on the wire, 5x the default receive buffer)."""
    sent = 0
    for site in range(6):
        values = [(site * 15_000 + i) / 1e6 for i in range(15_000)]
        emitter.histogram_many("runner.duration", values, {"site": f"s{site}", "protocol": "ssh", "status": "ok"})
        sent += len(values)
    return sent


@pytest.mark.exporter
@pytest.mark.parametrize("observe", [True, False], ids=["observed", "fixed-bucket"])
def test_a_flush_larger_than_the_receive_buffer_arrives_complete(tmp_path: Path, observe: bool) -> None:
    binary = require_binary("statsd_exporter", "PATH=.tools/bin:$PATH")
    exporter = Exporter(binary, tmp_path, read_buffer=None)  # the kernel's default: 208 KiB
    emitter = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, flush_interval=60))
    try:
        burst = None if observe else 32768
        emitter._transport._sender = sender = UdpSender(  # type: ignore[attr-defined]
            "127.0.0.1", exporter.udp_port, burst=burst, rate=2_000_000, observe=observe
        )
        sent = big_flush(emitter)
        emitter.flush()
        assert emitter.stats()["samples_failed"] == 0
        assert sender.pacer is not None and (sender.pacer.probe is not None) == observe
        if not observe:
            assert sender.pauses > 0  # ~1.5 MB charged, 32 KB burst: it must have waited
        exporter.wait_value("netauto_runner_duration_seconds_count", sent, timeout=30)
        assert exporter.kernel_drops() == 0
    finally:
        emitter.close()
        exporter.stop()


# ------------------------------------------------------------------ settings
def test_the_settings_reach_the_sender(sink: UdpSink) -> None:
    settings = from_env(
        {"NETAUTO_STATSD_PACE_RATE": "0", "NETAUTO_STATSD_PACE_BURST": "65536", "DD_DOGSTATSD_PORT": str(sink.port)}
    )
    assert (settings.pace_rate, settings.pace_burst) == (0, 65536)
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, pace_rate=2_500_000, pace_burst=65536))
    try:
        emitter.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
        emitter.flush()
        sender = emitter._transport._sender  # type: ignore[attr-defined]
        assert (sender.rate, sender.burst) == (2_500_000, 65536)  # not DEFAULT_RATE: a dropped setting would show
    finally:
        emitter.close()
    defaults = from_env({})
    assert (defaults.pace_rate, defaults.pace_burst) == (None, None)
    remote = UdpSender("192.0.2.1", 9125)._make_pacer(("192.0.2.1", 9125))  # not loopback: cannot be observed
    assert remote.probe is None and remote.burst == REMOTE_BURST and remote.rate == DEFAULT_RATE
    local = UdpSender("127.0.0.1", 9125)._make_pacer(("127.0.0.1", 9125))
    assert local.probe is not None and local.burst == rmem_default() // 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NETAUTO_STATSD_PACE_RATE", "fast"),
        ("NETAUTO_STATSD_PACE_RATE", "100"),
        ("NETAUTO_STATSD_PACE_RATE", "-5"),
        ("NETAUTO_STATSD_PACE_RATE", "3e6"),
        ("NETAUTO_STATSD_PACE_BURST", "1.5M"),
        ("NETAUTO_STATSD_PACE_BURST", "1024"),
        ("NETAUTO_STATSD_PACE_BURST", "0"),
    ],
)
def test_bad_pacing_settings_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key) as caught:
        from_env({key: value})
    assert caught.value.setting == key
