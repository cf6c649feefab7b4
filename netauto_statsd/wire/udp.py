"""One connected UDP socket that knows, datagram by datagram, what the kernel took and what it refused.

Both transports send through :class:`UdpSender`. A connected UDP socket learns of a
closed port from the ICMP "port unreachable" the kernel gets back, and reports it
as ``ECONNREFUSED`` on the *next* call: without care, a flush of 22 datagrams to a
dead port counts 11 failures (every other send raises), and the first datagram
after the exporter comes back is lost to the error left over from before. So:

* after every send, the pending error is read (and cleared) with ``SO_ERROR``: on
  loopback and most LANs the ICMP error is already there, and that datagram is
  counted as refused;
* a send that raises ``ECONNREFUSED`` did not hand its datagram to the kernel (the
  error belongs to an earlier one, which is counted as refused now): it is retried
  once, so a recovered exporter gets it;
* a full socket buffer (``EAGAIN``/``ENOBUFS``) or an oversized datagram drops that
  datagram; any other error drops it and reopens the socket on the next send.

Flushes are paced by :class:`~netauto_statsd.wire.pacing.Pacer` so that a burst
cannot overflow the receiver's socket buffer (kernel drops there are invisible to
the exporter's own counters): nothing waits while the receiver has room, which on
loopback the kernel reports exactly; an ordinary flush never pauses.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time

from netauto_statsd._log import log
from netauto_statsd.wire.pacing import DEFAULT_RATE, REMOTE_BURST, Pacer, rmem_default
from netauto_statsd.wire.receiver import ReceiverProbe

#: After a failed resolve/connect, sends fail fast (and are counted) for this long
#: instead of asking DNS again for every datagram of the flush.
RECONNECT_SECONDS = 1.0


#: errno values that mean "this datagram was dropped, the socket is fine".
_DROP_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EMSGSIZE})


class UdpSender:
    """A lazily connected, non-blocking UDP socket with exact per-datagram accounting.

    Not thread-safe: the transport that owns it sends under its own lock.
    """

    def __init__(
        self, host: str, port: int, burst: int | None = None, rate: float | None = None, observe: bool = True
    ) -> None:
        """Send to ``host:port``.

        Args:
            burst: receive-buffer bytes the receiver can take at once when it cannot be
                observed (default: half of ``net.core.rmem_default`` on loopback, else
                :data:`~netauto_statsd.wire.pacing.REMOTE_BURST`).
            rate: bytes per second it drains then (default
                :data:`~netauto_statsd.wire.pacing.DEFAULT_RATE`); ``0`` turns pacing off.
            observe: on loopback, ask the kernel how full the receiver's buffer is
                (``False``: the fixed burst and rate only, for the benches).
        """
        self.host = host
        self.port = port
        self.burst = burst
        self.rate = DEFAULT_RATE if rate is None else rate
        self.observe = observe
        self.pacer: Pacer | None = None
        self._sock: socket.socket | None = None
        self._retry_at = 0.0
        #: datagrams whose refusal surfaced only on a later send (remote ICMP, or
        #: between flushes); the transport adds them to its failures
        self.refused_late = 0
        #: samples those late-refused datagrams carried (as far as known: the previous datagram's)
        self.refused_late_samples = 0
        self._last_samples = 0

    @property
    def pauses(self) -> int:
        """Pauses the pacing took so far (for the benches and tests)."""
        return self.pacer.pauses if self.pacer is not None else 0

    @property
    def slept(self) -> float:
        """Seconds the pacing slept so far (for the benches: the flush thread's sleep, not CPU)."""
        return self.pacer.slept if self.pacer is not None else 0.0

    def _make_pacer(self, addr: tuple[object, ...]) -> Pacer:
        try:
            local = ipaddress.ip_address(str(addr[0])).is_loopback
        except ValueError:
            local = False
        probe = ReceiverProbe(int(str(addr[1]))) if local and self.observe and self.rate else None
        burst = self.burst if self.burst is not None else (rmem_default() // 2 if local else REMOTE_BURST)
        return Pacer(burst, self.rate, probe)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            if time.monotonic() < self._retry_at:
                raise OSError("not reconnecting yet after a failed connect")
            self._retry_at = time.monotonic() + RECONNECT_SECONDS
            infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)
            infos.sort(key=lambda info: info[0] != socket.AF_INET)  # prefer IPv4, like datadog
            family, kind, proto, _, addr = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.connect(addr)
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._retry_at = 0.0
            if self.pacer is None:
                self.pacer = self._make_pacer(addr)
        return self._sock

    def send(self, payload: bytes, samples: int = 1) -> bool:
        """Hand ``payload`` (carrying ``samples``) to the kernel as one datagram; ``True`` unless lost."""
        try:
            sock = self._connect()
        except OSError as exc:  # unresolvable host, no route
            log.debug("netauto_statsd: cannot open a UDP socket to %s:%s: %s", self.host, self.port, exc)
            return False
        if self.pacer is not None and not self.pacer.admit(len(payload)):
            log.debug("netauto_statsd: datagram not sent: the receiver's buffer stays full")
            return False
        for attempt in (1, 2):
            try:
                sock.send(payload)
            except ConnectionRefusedError:
                # An earlier datagram was refused; this one was not sent. Retry once.
                self.refused_late += 1
                self.refused_late_samples += self._last_samples
                self._last_samples = 0
                if attempt == 2:
                    return False
                continue
            except OSError as exc:
                if exc.errno not in _DROP_ERRNOS:
                    self.close()
                log.debug("netauto_statsd: datagram dropped: %s", exc)
                return False
            break
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED:
            self._last_samples = 0
            return False  # refused at once: the port is closed (loopback and LAN report it in time)
        self._last_samples = samples
        return True

    def take_late_refusals(self) -> tuple[int, int]:
        """Return and reset ``(datagrams, samples)`` refused after they were counted as sent."""
        late = (self.refused_late, self.refused_late_samples)
        self.refused_late = self.refused_late_samples = 0
        return late

    def close(self) -> None:
        """Close the socket; the next send opens a new one."""
        if self.pacer is not None and self.pacer.probe is not None:
            self.pacer.probe.close()
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
