"""What the ``sock_diag`` probe reports about a receiving socket, checked against the kernel's own numbers.

Real sockets on loopback, real netlink queries: the room the probe reports for a
socket is compared with ``SO_RCVBUF`` and with the queue ``/proc/net/udp`` shows
for it, for IPv4 and IPv6 sockets, several sockets sharing a port, a receiver that
moves, a forked child and a netlink socket that fails. The attribute parser is
also fed hand-built attribute lists, laid out as the kernel lays them out
(``struct rtattr``: length, type, payload padded to 4 bytes).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from netauto_statsd.wire.receiver import INET_DIAG_SKMEMINFO, ReceiverProbe, _meminfo

FULL = 1432


def _rx_queue(port: int) -> int:
    """Bytes queued on the IPv4 UDP socket bound to ``port``, as ``/proc/net/udp`` shows them (rx_queue)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no socket on port {port}")


def _bound(family: int = socket.AF_INET, port: int = 0, rcvbuf: int = 0, reuse: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", port))
    return sock


@pytest.fixture
def probe_of() -> Iterator[list[ReceiverProbe]]:
    made: list[ReceiverProbe] = []
    yield made
    for probe in made:
        probe.close()


def test_an_empty_socket_has_its_whole_receive_buffer_as_room(probe_of: list[ReceiverProbe]) -> None:
    with _bound(rcvbuf=100_000) as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        probe_of.append(probe)
        assert probe.room() == receiver.getsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF
        )  # 200,000: the kernel doubles it


def test_the_room_is_the_buffer_minus_what_the_kernel_queued(probe_of: list[ReceiverProbe]) -> None:
    with _bound(rcvbuf=100_000) as receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        port = receiver.getsockname()[1]
        probe = ReceiverProbe(port)
        probe_of.append(probe)
        rcvbuf = receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        for _ in range(3):
            for _ in range(5):  # loopback delivers inside sendto: queued before it returns
                sender.sendto(b"x" * FULL, ("127.0.0.1", port))
            queued = _rx_queue(port)
            assert queued > 0
            assert probe.room() == rcvbuf - queued


def test_of_several_sockets_on_one_port_the_fullest_counts(probe_of: list[ReceiverProbe]) -> None:
    """SO_REUSEPORT: the kernel spreads datagrams over the sockets; the probe answers for the one with least room."""
    with _bound(rcvbuf=200_000, reuse=True) as big:
        port = big.getsockname()[1]
        with _bound(port=port, rcvbuf=50_000, reuse=True) as small:
            probe = ReceiverProbe(port)
            probe_of.append(probe)
            assert probe.room() == small.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 100_000


def test_an_ipv6_receiver_is_found_and_asked_again(probe_of: list[ReceiverProbe]) -> None:
    with (
        _bound(socket.AF_INET6, rcvbuf=60_000) as receiver,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender,
    ):
        port = receiver.getsockname()[1]
        probe = ReceiverProbe(port)
        probe_of.append(probe)
        rcvbuf = receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert probe.room() == rcvbuf
        sender.sendto(b"x" * FULL, ("::1", port))
        second = probe.room()
        assert second is not None and 0 < second < rcvbuf


def test_a_receiver_that_moves_to_the_other_family_is_found_again(probe_of: list[ReceiverProbe]) -> None:
    """An exporter restarted on ``[::1]`` instead of 127.0.0.1 (same port): unknown at most once, then found."""
    with _bound(rcvbuf=60_000) as first:
        port = first.getsockname()[1]
        probe = ReceiverProbe(port)
        probe_of.append(probe)
        assert probe.room() == first.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    with _bound(socket.AF_INET6, port=port, rcvbuf=70_000) as moved:
        answers = [probe.room(), probe.room()]
        assert answers[-1] == moved.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    with _bound(port=port, rcvbuf=80_000) as back:
        answers = [probe.room(), probe.room()]
        assert answers[-1] == back.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert probe.room() is None  # nobody on the port any more: unknown, and asked again next time
    assert probe.unavailable is False


def _child_room(probe: ReceiverProbe, out: socket.socket) -> None:
    inherited = probe._netlink
    room = probe.room()
    out.send(f"{room} {probe._netlink is not None and probe._netlink is not inherited}".encode())


def test_a_forked_child_opens_its_own_netlink_socket() -> None:
    """The child must not read answers from (or steal answers of) the parent's netlink socket."""
    with _bound(rcvbuf=60_000) as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        try:
            expected = probe.room()
            assert probe._netlink is not None
            here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            with here, there:
                child = multiprocessing.get_context("fork").Process(target=_child_room, args=(probe, there))
                child.start()
                child.join(30)
                assert child.exitcode == 0
                here.settimeout(5)
                assert here.recv(100).decode() == f"{expected} True"
            assert probe.room() == expected  # the parent's socket still answers
        finally:
            probe.close()


def test_a_failing_netlink_socket_makes_the_probe_give_up_for_good() -> None:
    with _bound() as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        assert probe.room() is not None
        assert probe._netlink is not None
        os.close(probe._netlink.detach())  # the descriptor is gone: the next send fails with EBADF
        assert probe.room() is None
        assert probe.unavailable and probe._netlink is None
        assert probe.room() is None  # never asked again


def test_close_releases_the_netlink_socket_and_the_next_query_opens_one() -> None:
    with _bound() as receiver:
        probe = ReceiverProbe(receiver.getsockname()[1])
        first = probe.room()
        netlink = probe._netlink
        assert netlink is not None
        probe.close()
        assert probe._netlink is None and netlink.fileno() == -1
        assert probe.room() == first
        probe.close()


# ------------------------------------------------------------ the attribute parser
def _attr(kind: int, payload: bytes) -> bytes:
    """One ``rtattr``: its length counts the header and payload, not the padding to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + bytes(-len(raw) % 4)


#: u32 fields: [0] rmem_alloc, [1] rcvbuf ... [8] drops (a u32 counter: past 2**31 on a busy host)
MEMINFO = struct.pack("=9I", 1152, 212992, 0, 0, 0, 0, 0, 0, 3_000_000_000)


def test_the_meminfo_attribute_is_found_among_others() -> None:
    data = _attr(1, b"abc") + _attr(2, b"") + _attr(3, bytes(40)) + _attr(INET_DIAG_SKMEMINFO, MEMINFO) + _attr(9, b"z")
    assert _meminfo(data, 0, len(data)) == (1152, 212992, 0, 0, 0, 0, 0, 0, 3_000_000_000)


def test_a_short_meminfo_attribute_or_a_broken_length_is_not_read() -> None:
    short = _attr(INET_DIAG_SKMEMINFO, MEMINFO[:32])  # 8 values, not 9
    assert _meminfo(short, 0, len(short)) is None
    broken = struct.pack("=HH", 3, 1) + _attr(INET_DIAG_SKMEMINFO, MEMINFO)  # a length below the header: stop
    assert _meminfo(broken, 0, len(broken)) is None


def test_the_parser_stays_within_its_message() -> None:
    """Attributes after ``end`` belong to the next message: never read as this socket's."""
    data = _attr(1, b"abcd") + _attr(INET_DIAG_SKMEMINFO, MEMINFO)
    assert _meminfo(data, 0, 8) is None
    assert _meminfo(data, 8, len(data)) == struct.unpack("=9I", MEMINFO)
