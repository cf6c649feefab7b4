"""``UdpSender`` datagram by datagram: which failures keep the socket, which reopen it, and when it reconnects.

Real loopback sockets throughout. The receiver reads with ``recvfrom`` so a test
can tell whether two datagrams left through the same socket (same source port)
or whether the sender reopened it in between. A connect that fails for real is a
connect to the broadcast address (``EACCES`` without ``SO_BROADCAST``); an error
the sender does not expect is a descriptor closed behind its back (``EBADF``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator

import pytest

from netauto_statsd.wire.pacing import DEFAULT_RATE
from netauto_statsd.wire.udp import RECONNECT_SECONDS, UdpSender
from tests.runtime.core.wire import closed_udp_port


class Receiver:
    """A loopback UDP socket that reports each datagram with its source port."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port: int = self.sock.getsockname()[1]

    def next(self) -> tuple[bytes, int]:
        data, (_, port) = self.sock.recvfrom(65535)
        return data, port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.sock.close()


def test_a_new_sender_has_paced_nothing_and_lost_nothing(senders: list[UdpSender]) -> None:
    sender = UdpSender("127.0.0.1", closed_udp_port())
    senders.append(sender)
    assert (sender.pauses, sender.slept, sender.pacer) == (0, 0.0, None)
    assert sender.take_late_refusals() == (0, 0)
    assert (sender.rate, sender.burst, sender.observe) == (DEFAULT_RATE, None, True)


def test_the_socket_never_blocks_and_is_connected_to_the_receiver(receiver: Receiver, senders: list[UdpSender]) -> None:
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert sender.send(b"one")
    sock = sender._connect()
    assert sock.getblocking() is False  # the flush thread never waits on a full socket buffer
    assert sock.getpeername() == ("127.0.0.1", receiver.port)
    assert receiver.next()[0] == b"one"


def test_an_oversized_datagram_is_dropped_and_the_socket_kept(receiver: Receiver, senders: list[UdpSender]) -> None:
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert sender.send(b"before")
    data, source = receiver.next()
    assert data == b"before"
    assert sender.send(b"x" * 70_000) is False  # EMSGSIZE: more than a UDP datagram holds
    assert sender.send(b"after")
    assert receiver.next() == (b"after", source)  # same socket: not reopened for a dropped datagram
    assert sender.take_late_refusals() == (0, 0)


def test_an_unexpected_socket_error_reopens_the_socket_on_the_next_send(
    receiver: Receiver, senders: list[UdpSender], caplog: pytest.LogCaptureFixture
) -> None:
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert sender.send(b"before")
    _, source = receiver.next()
    pacer = sender.pacer
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        os.close(sender._connect().detach())  # the descriptor is gone from under the socket object: EBADF
        assert sender.send(b"lost") is False
    assert any(r.getMessage().startswith("netauto_statsd: datagram dropped: [Errno 9]") for r in caplog.records)
    assert sender.send(b"after")
    data, new_source = receiver.next()
    assert data == b"after" and new_source != source  # a new socket
    assert sender.pacer is pacer  # the pacing carries on


def test_a_failed_connect_fails_fast_then_is_retried_after_the_pause(
    senders: list[UdpSender], caplog: pytest.LogCaptureFixture
) -> None:
    sender = UdpSender("255.255.255.255", 9)  # connect() is refused: EACCES without SO_BROADCAST
    senders.append(sender)
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        started = time.monotonic()
        assert sender.send(b"x") is False
        assert sender.send(b"x") is False
        messages = [r.getMessage() for r in caplog.records]
        assert (
            messages[0] == "netauto_statsd: cannot open a UDP socket to 255.255.255.255:9: [Errno 13] Permission denied"
        )
        assert messages[1] == (
            "netauto_statsd: cannot open a UDP socket to 255.255.255.255:9: not reconnecting yet after a failed connect"
        )
        assert sender._sock is None and sender.pacer is None
        # after RECONNECT_SECONDS it tries again (and fails again, for real)
        deadline = started + RECONNECT_SECONDS + 10
        while "Permission denied" not in caplog.records[-1].getMessage():
            assert time.monotonic() < deadline, "never retried the connect"
            time.sleep(0.05)
            assert sender.send(b"x") is False
    assert time.monotonic() - started >= RECONNECT_SECONDS


def test_a_sender_reconnects_at_once_after_a_good_connect_was_closed(
    receiver: Receiver, senders: list[UdpSender]
) -> None:
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert sender.send(b"one")
    _, source = receiver.next()
    sender.close()
    assert sender._sock is None
    assert sender.send(b"two")  # no pause after a connect that worked
    data, new_source = receiver.next()
    assert data == b"two" and new_source != source


def test_close_releases_the_receivers_probe_too(receiver: Receiver, senders: list[UdpSender]) -> None:
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert sender.send(b"one")
    assert sender.pacer is not None and sender.pacer.probe is not None
    probe = sender.pacer.probe
    assert probe._netlink is not None  # it was asked how much room the receiver has
    netlink = probe._netlink
    sender.close()
    assert probe._netlink is None and netlink.fileno() == -1


@pytest.mark.parametrize(("rate", "observe"), [(0, True), (DEFAULT_RATE, False)], ids=["no-pacing", "not-observed"])
def test_no_probe_when_pacing_is_off_or_not_observed(
    receiver: Receiver, senders: list[UdpSender], rate: int, observe: bool
) -> None:
    sender = UdpSender("127.0.0.1", receiver.port, rate=rate, observe=observe)
    senders.append(sender)
    assert sender.send(b"one")
    assert sender.pacer is not None and sender.pacer.probe is None
    assert sender.pacer.rate == rate


def test_the_datagram_after_a_late_refusal_is_delivered_once(senders: list[UdpSender]) -> None:
    """A refusal surfacing on the next send costs the earlier datagram's samples; the retry carries this one."""
    port = closed_udp_port()
    sender = UdpSender("127.0.0.1", port)
    senders.append(sender)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        assert sender.send(b"first", samples=7)
    sender._connect().send(b"refused")  # sent without reading SO_ERROR: the refusal stays pending
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(5)
        assert sender.send(b"third", samples=2)
        assert listener.recv(100) == b"third"
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.recv(100)  # exactly once
    assert sender.take_late_refusals() == (1, 7)
    assert sender.take_late_refusals() == (0, 0)


def test_a_refusal_reported_at_once_is_this_datagrams_and_costs_nothing_later(senders: list[UdpSender]) -> None:
    sender = UdpSender("127.0.0.1", closed_udp_port())
    senders.append(sender)
    assert sender.send(b"x", samples=5) is False  # the port is closed: refused, counted by the caller
    assert sender.send(b"y", samples=3) is False
    assert sender.take_late_refusals() == (0, 0)  # nothing counted twice
