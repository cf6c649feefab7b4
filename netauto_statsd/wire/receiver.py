"""How much room the receiving socket on this host has left: one ``sock_diag`` query (Linux).

When the exporter listens on loopback it is a socket of this host's network
namespace, and the kernel tells any process how full it is: a netlink
``SOCK_DIAG_BY_FAMILY`` dump of UDP sockets with ``INET_DIAG_SKMEMINFO`` gives,
per socket, the bytes queued (``rmem_alloc``, the kernel's own charge per
datagram, payload plus ~900 bytes of buffer overhead) and the receive buffer
size (``rcvbuf``, e.g. 8 MiB with ``--statsd.read-buffer``). That is what ``ss -uam``
prints as ``skmem:(r...,rb...)``; no privilege is needed. One query costs about
20 µs here, and the pacer asks only when its allowance runs out.

Anything unexpected (no netlink, no socket on that port: the exporter is in
another namespace behind a port mapping) answers ``None`` and the pacer falls
back to its fixed rate.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
#: attribute carrying ``u32 meminfo[SK_MEMINFO_VARS]``: [0] rmem_alloc, [1] rcvbuf, ... [8] drops
INET_DIAG_SKMEMINFO = 7
_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_ATTR = struct.Struct("=HH")  # rtattr
#: inet_diag_msg: family, state, timer, retrans (4 bytes), inet_diag_sockid (48), expires..inode (20)
_SPORT_AT, _MSG_SIZE = 4, 72
#: index of ``drops`` in ``meminfo`` (``SK_MEMINFO_DROPS``)
_DROPS = 8


class ReceiverProbe:
    """Room left in the receive buffer of the UDP socket(s) bound to ``port`` on this host."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._families = [socket.AF_INET, socket.AF_INET6]  # a dual-stack [::] socket is listed as AF_INET6
        self._netlink: socket.socket | None = None
        self._pid = os.getpid()
        #: netlink refused us once (not Linux, or forbidden): never ask again
        self.unavailable = not hasattr(socket, "AF_NETLINK")

    def room(self) -> int | None:
        """Bytes (as the kernel charges them) the fullest matching socket can still take; ``None``: unknown."""
        if self.unavailable:
            return None
        try:
            for family in self._families:
                found = self._query(family)
                if found:
                    self._families = [family]  # the next queries ask that family only
                    break
            else:
                self._families = [socket.AF_INET, socket.AF_INET6]
                return None
        except (OSError, struct.error):
            self.close()
            self.unavailable = True
            return None
        return min(meminfo[1] - meminfo[0] for meminfo in found)

    def drops(self) -> int | None:
        """Datagrams the kernel dropped at the matching socket(s), their receive buffer full; ``None``: unknown.

        The exporter never sees these (no counter of its own moves): ``ss -uam`` shows them as ``d...``.
        """
        if self.unavailable:
            return None
        try:
            found = [meminfo for family in (socket.AF_INET, socket.AF_INET6) for meminfo in self._query(family)]
        except (OSError, struct.error):
            return None
        return sum(meminfo[_DROPS] for meminfo in found) if found else None

    def _query(self, family: int) -> list[tuple[int, ...]]:
        if self._netlink is not None and self._pid != os.getpid():  # a forked child: never share the parent's
            self._netlink = None
        if self._netlink is None:
            self._pid = os.getpid()
            self._netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
            self._netlink.settimeout(1.0)
        request = struct.pack("=BBBxI", family, socket.IPPROTO_UDP, 1 << (INET_DIAG_SKMEMINFO - 1), 0xFFFFFFFF)
        request += bytes(48)  # inet_diag_sockid: zero, a dump of every UDP socket of that family
        header = _HEADER.pack(_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        self._netlink.send(header + request)
        found: list[tuple[int, ...]] = []
        while True:
            data = self._netlink.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind = _HEADER.unpack_from(data, offset)[:2]
                if kind in (NLMSG_DONE, NLMSG_ERROR) or length < _HEADER.size:
                    return found
                body = offset + _HEADER.size
                if struct.unpack_from("!H", data, body + _SPORT_AT)[0] == self.port:
                    meminfo = _meminfo(data, body + _MSG_SIZE, offset + length)
                    if meminfo is not None:
                        found.append(meminfo)
                offset += (length + 3) & ~3

    def close(self) -> None:
        """Release the netlink socket (the next query opens one)."""
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None


def _meminfo(data: bytes, start: int, end: int) -> tuple[int, ...] | None:
    while start + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < _ATTR.size:
            return None
        if kind == INET_DIAG_SKMEMINFO and length >= _ATTR.size + 36:
            return struct.unpack_from("=9I", data, start + _ATTR.size)
        start += (length + 3) & ~3
    return None
