"""A UDP port that is down until :meth:`UdpRelay.open`, then forwards every datagram to a real exporter.

It stands for an exporter that is unreachable for a while and then comes back
(a restart, a redeploy): while it is down, the port is closed and the kernel
answers with ICMP "port unreachable", exactly as for a dead exporter; once open,
datagrams reach the real statsd_exporter unchanged.
"""

from __future__ import annotations

import socket
import threading

from netauto_statsd.tooling.exporter import free_port


class UdpRelay:
    """Closed UDP port on 127.0.0.1 that becomes a forwarder to ``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self._target = ("127.0.0.1", target_port)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.forwarded = 0

    def open(self) -> None:
        """Bind the port and forward from now on."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._forward, name="udp-relay", daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        sock = self._sock
        assert sock is not None
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while self._sock is not None:
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return
                out.sendto(data, self._target)
                self.forwarded += 1
        finally:
            out.close()

    def close(self) -> None:
        """Stop forwarding and release the port."""
        sock, self._sock = self._sock, None
        if self._thread is not None:
            self._thread.join(2)
        if sock is not None:
            sock.close()
