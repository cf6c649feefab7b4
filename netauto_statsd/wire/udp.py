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

Large flushes are paced: after every :data:`PACE_BYTES` bytes the sender sleeps
:data:`PACE_SECONDS`, so a burst cannot overflow the receiver's socket buffer
faster than the exporter reads it (kernel drops there are invisible to the
exporter's own counters). An ordinary flush (a few dozen datagrams) never pauses.
"""

from __future__ import annotations

import errno
import socket
import time

from netauto_statsd._log import log

#: After a failed resolve/connect, sends fail fast (and are counted) for this long
#: instead of asking DNS again for every datagram of the flush.
RECONNECT_SECONDS = 1.0


#: Bytes handed to the kernel between two pauses (about 45 full datagrams; well under the
#: 208 KiB default receive buffer, so a burst fits it even if the exporter reads nothing).
PACE_BYTES = 64 * 1024
#: Length of one pause: 64 KiB per 20 ms caps a long burst near 3.2 MB/s, ~350,000 samples/s,
#: half of what one statsd_exporter v0.30.0 parsed on a busy 2-core machine
#: (bench/bench_pacing.py, docs/reliability.md).
PACE_SECONDS = 0.020
#: errno values that mean "this datagram was dropped, the socket is fine".
_DROP_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EMSGSIZE})


class UdpSender:
    """A lazily connected, non-blocking UDP socket with exact per-datagram accounting.

    Not thread-safe: the transport that owns it sends under its own lock.
    """

    def __init__(self, host: str, port: int, pace_bytes: int | None = None, pace_seconds: float | None = None) -> None:
        self.host = host
        self.port = port
        self.pace_bytes = PACE_BYTES if pace_bytes is None else pace_bytes
        self.pace_seconds = PACE_SECONDS if pace_seconds is None else pace_seconds
        self._sock: socket.socket | None = None
        self._retry_at = 0.0
        self._unpaced = 0
        #: datagrams whose refusal surfaced only on a later send (remote ICMP, or
        #: between flushes); the transport adds them to its failures
        self.refused_late = 0
        #: samples those late-refused datagrams carried (as far as known: the previous datagram's)
        self.refused_late_samples = 0
        self._last_samples = 0
        #: pauses taken by the pacing (for the benches)
        self.pauses = 0

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
        return self._sock

    def send(self, payload: bytes, samples: int = 1) -> bool:
        """Hand ``payload`` (carrying ``samples``) to the kernel as one datagram; ``True`` unless lost."""
        try:
            sock = self._connect()
        except OSError as exc:  # unresolvable host, no route
            log.debug("netauto_statsd: cannot open a UDP socket to %s:%s: %s", self.host, self.port, exc)
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
        self._pace(len(payload))
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED:
            self._last_samples = 0
            return False  # refused at once: the port is closed (loopback and LAN report it in time)
        self._last_samples = samples
        return True

    def _pace(self, size: int) -> None:
        self._unpaced += size
        if self._unpaced >= self.pace_bytes:
            self._unpaced = 0
            self.pauses += 1
            time.sleep(self.pace_seconds)

    def take_late_refusals(self) -> tuple[int, int]:
        """Return and reset ``(datagrams, samples)`` refused after they were counted as sent."""
        late = (self.refused_late, self.refused_late_samples)
        self.refused_late = self.refused_late_samples = 0
        return late

    def close(self) -> None:
        """Close the socket; the next send opens a new one."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
