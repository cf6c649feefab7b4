"""How ``UdpSender`` sets up its pacing from its own settings, and what the pacing then does to real sends.

Written for mutants of ``netauto_statsd.wire.udp`` that survived the suite
(docs/testing.md, "Mutation testing"). Real loopback sockets; pauses are counted,
never timed.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from netauto_statsd.wire.pacing import kernel_cost, rmem_default
from netauto_statsd.wire.udp import UdpSender
from tests.runtime.core.wire import closed_udp_port

FULL = 1432  # a full datagram of the default max_packet


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_an_explicit_burst_is_what_an_unobserved_receiver_takes_at_once(
    receiver: socket.socket, senders: list[UdpSender]
) -> None:
    """``burst=`` wins over the loopback default (half of ``rmem_default``, ~100 KiB): the sixth full datagram waits."""
    burst = 5 * kernel_cost(FULL)  # five full datagrams, far below the default
    assert burst < rmem_default() // 2
    sender = UdpSender("127.0.0.1", receiver.getsockname()[1], burst=burst, rate=20_000, observe=False)
    senders.append(sender)
    payload = b"x" * FULL
    for _ in range(5):
        assert sender.send(payload)
    assert sender.pauses == 0  # the burst goes out at once
    assert sender.send(payload)
    assert sender.pauses == 1  # then it waits for the bucket to refill (a quarter of the burst: ~0.15 s)
    assert sender.pacer is not None and (sender.pacer.burst, sender.pacer.probe) == (burst, None)
    assert [receiver.recv(65535) for _ in range(6)] == [payload] * 6


def test_a_datagram_a_stalled_receiver_has_no_room_for_is_not_sent_and_the_log_says_why(
    senders: list[UdpSender], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as full:
        full.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # the kernel doubles it
        full.bind(("127.0.0.1", 0))
        port = full.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as filler:
            for _ in range(200):  # far more than 64 KiB: the kernel drops the rest
                filler.sendto(b"f" * FULL, ("127.0.0.1", port))
        sender = UdpSender("127.0.0.1", port)
        senders.append(sender)
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            assert sender.send(b"x" * FULL) is False  # waited a quarter of a second for room, then gave up
        # only this thread's records: another test's emitter may flush (and log) meanwhile
        assert [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()] == [
            "netauto_statsd: datagram not sent: the receiver's buffer stays full"
        ]
        assert sender.pacer is not None and sender.pacer.refused == 1
        full.setblocking(False)
        queued = []
        while True:
            try:
                queued.append(full.recv(65535))
            except BlockingIOError:
                break
        assert queued and set(queued) == {b"f" * FULL}  # nothing of the sender's reached the socket


def _refuse_once(sender: UdpSender) -> None:
    """A datagram refused behind the sender's back: its refusal is pending on the socket (as a remote ICMP would be)."""
    sender._connect().send(b"refused")  # nobody listens on the port: the kernel leaves ECONNREFUSED pending


def test_a_datagram_sent_without_a_sample_count_carries_one_sample(senders: list[UdpSender]) -> None:
    """``send(payload)`` is one sample: that is what a later refusal of it costs."""
    port = closed_udp_port()
    sender = UdpSender("127.0.0.1", port)
    senders.append(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        assert sender.send(b"first")
    _refuse_once(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        assert sender.send(b"second", samples=4)
    assert sender.take_late_refusals() == (1, 1)


def test_late_refusals_add_up_until_they_are_taken(senders: list[UdpSender]) -> None:
    """Two refusals that surface on later sends, before the transport takes them: both datagrams, all their samples."""
    port = closed_udp_port()
    sender = UdpSender("127.0.0.1", port)
    senders.append(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(5)
        assert sender.send(b"one", samples=7)
        assert listener.recv(100) == b"one"
    _refuse_once(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(5)
        assert sender.send(b"two", samples=2)  # the refusal surfaces here; the retry delivers "two"
        assert listener.recv(100) == b"two"
    _refuse_once(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(5)
        assert sender.send(b"three", samples=3)
        assert listener.recv(100) == b"three"
    assert sender.take_late_refusals() == (2, 7 + 2)
    assert sender.take_late_refusals() == (0, 0)


def test_a_refusal_surfacing_after_a_datagram_refused_at_once_costs_none_of_its_samples_again(
    senders: list[UdpSender],
) -> None:
    """The datagram refused at once was counted by the caller: a refusal surfacing next charges it nothing more."""
    port = closed_udp_port()
    sender = UdpSender("127.0.0.1", port)
    senders.append(sender)
    assert sender.send(b"refused", samples=5) is False  # counted now, by the caller
    _refuse_once(sender)  # another refusal, that only the next send sees
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(5)
        assert sender.send(b"next", samples=3)
        assert listener.recv(100) == b"next"
    assert sender.take_late_refusals() == (1, 0)


def test_a_name_of_both_families_is_reached_over_ipv4_first(senders: list[UdpSender]) -> None:
    """Like datadog's client, IPv4 first: an exporter listening on IPv4 only is reached under a dual-stack name.

    No name on this host resolves to both families (``localhost`` is IPv4 only here); the
    resolver's answer for no name at all is the loopback of both, IPv6 first.
    """
    families = [info[0] for info in socket.getaddrinfo(None, 9, 0, socket.SOCK_DGRAM)]
    assert socket.AF_INET in families and socket.AF_INET6 in families
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        sender = UdpSender(None, port)  # type: ignore[arg-type]  # the loopback of both families
        senders.append(sender)
        assert sender.send(b"over ipv4", samples=1)
        assert listener.recv(100) == b"over ipv4"
        assert sender._connect().family == socket.AF_INET
