"""ReceiverProbe.drops(): the datagrams the kernel dropped at a full socket, as ``/proc/net/udp`` counts them.

Real sockets only: a receiver that reads nothing (a stopped exporter) is sent
more full datagrams than its buffer holds; what it did not queue was dropped.
"""

from __future__ import annotations

import socket

from netauto_statsd.wire.receiver import ReceiverProbe
from tests.support import udp_socket_drops

FULL = 1432


def quiet(family: int = socket.AF_INET) -> socket.socket:
    """A UDP socket that reads nothing, with a 64 KiB buffer (the kernel doubles the 32 KiB asked)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    else:
        sock.bind(("127.0.0.1", 0))
    return sock


def flood(port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(b"x" * FULL, ("127.0.0.1", port))


def queued(sock: socket.socket) -> int:
    sock.setblocking(False)
    got = 0
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return got
        got += 1


def test_the_datagrams_a_full_socket_could_not_queue_are_its_drops() -> None:
    with quiet() as receiver:
        port = receiver.getsockname()[1]
        probe = ReceiverProbe(port)
        try:
            assert probe.drops() == 0
            flood(port, 100)
            dropped = probe.drops()
            assert dropped == udp_socket_drops(port)
            assert dropped == 100 - queued(receiver) and dropped > 0
        finally:
            probe.close()


def test_a_dual_stack_sockets_drops_are_found() -> None:
    """An exporter on ``[::]`` is listed as AF_INET6 even for the IPv4 datagrams it takes."""
    with quiet(socket.AF_INET6) as receiver:
        port = receiver.getsockname()[1]
        probe = ReceiverProbe(port)
        try:
            flood(port, 100)
            assert probe.drops() == 100 - queued(receiver)
            assert probe.drops() != 0
        finally:
            probe.close()


def test_the_drops_of_every_socket_on_the_port_add_up() -> None:
    """Two sockets sharing a port (SO_REUSEPORT, as several exporter processes could): one total."""
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sock in (first, second):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        second.bind(("127.0.0.1", port))
        flood(port, 300)
        probe = ReceiverProbe(port)
        try:
            dropped = probe.drops()
            assert dropped == 300 - queued(first) - queued(second)
            assert dropped == udp_socket_drops(port) and dropped > 0
        finally:
            probe.close()
    finally:
        first.close()
        second.close()


def test_no_socket_or_no_netlink_is_unknown_not_zero() -> None:
    with quiet() as receiver:
        port = receiver.getsockname()[1]
    assert ReceiverProbe(port).drops() is None  # nobody bound now
    with quiet() as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        probe.unavailable = True  # as on a host without AF_NETLINK
        assert probe.drops() is None
