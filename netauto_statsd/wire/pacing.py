"""Pacing: send a flush as fast as the receiver can take it, and no faster.

A datagram the exporter has no room for is lost where nobody sees it: the kernel
drops it when the exporter's socket buffer is full (no counter of the exporter
moves), and statsd_exporter itself drops it when its own queue of read packets is
full (``statsd_exporter_udp_packet_drops_total``). :class:`Pacer` is asked before
each datagram and keeps two allowances:

* **receive-buffer bytes**, charged per datagram what the kernel charges
  (:func:`kernel_cost`: payload plus buffer overhead, 2,368 bytes for a full
  1,432-byte datagram). When the exporter is on this host (loopback) the pacer
  asks the kernel how much room its socket has
  (:class:`~netauto_statsd.wire.receiver.ReceiverProbe`, ~20 µs) whenever the
  allowance is spent and takes a quarter of that room, at most
  :data:`CHUNK_BYTES` or a :data:`CHUNK_SHARE`-th of the room if that is more
  (a large buffer), as the next allowance (the app's other processes may be
  filling the same room), so it pauses only while that buffer is full (short
  sleeps, 0.5 ms doubling to 8 ms). A receiver that takes nothing for
  :data:`STALL_SECONDS` is stalled: a datagram it has no room for is then not sent
  but counted as failed by the transport (the kernel would drop it unseen).
  Otherwise (a remote exporter, or no socket found on that port: a port mapping)
  it is a token bucket of ``burst`` bytes (default :data:`REMOTE_BURST`, or half of
  ``net.core.rmem_default`` on loopback) refilled at ``rate`` bytes per second
  (:data:`DEFAULT_RATE`), pausing until a quarter of the burst is back;
* **datagrams** the exporter may hold in its packet queue: :data:`QUEUE_DATAGRAMS`
  at once, then refilled at ``rate`` in full datagrams per second. Only a flush of
  thousands of datagrams (several MB) meets this limit.

While both allowances last nothing waits: an ordinary flush, even one of 10,000
contexts (~620 KB), goes out at full speed when the exporter keeps up.
``rate=0`` turns pacing off. Every pause is counted (:attr:`Pacer.pauses`,
:attr:`Pacer.slept`) for the benches and tests.
"""

from __future__ import annotations

import time
from pathlib import Path

from netauto_statsd.wire.receiver import ReceiverProbe

#: Bytes per second (as the kernel charges them) the receiver is assumed to drain when it
#: cannot be observed: ~1.8 MB/s of full datagrams' payload, about what the old fixed rule
#: (20 ms after every 64 KiB) achieved. On the 2-core development machine it delivered 100 %
#: of bench/bench_pacing.py's 800,000 samples in every round at load 3-4 (4 MB/s lost 5 % in
#: one round of three); at load 11-14 no fixed rate tried was loss-free (docs/reliability.md).
DEFAULT_RATE = 3_000_000
#: Linux's default ``net.core.rmem_default``: the receive buffer of an exporter started
#: without ``--statsd.read-buffer``.
LINUX_RMEM_DEFAULT = 212_992
#: Allowance for a receiver on another host: half its probable buffer (other senders share it).
REMOTE_BURST = LINUX_RMEM_DEFAULT // 2
#: A receiver whose buffer stays full this long is stalled (stopped, or not reading).
STALL_SECONDS = 0.25
#: Pauses while an observed receiver is full: start short, double up to the longest.
FIRST_WAIT, LONGEST_WAIT = 0.0005, 0.008
#: Resume once the receiver has room for this much (a few dozen datagrams), not for one datagram.
RESUME_BYTES = 64 * 1024
#: Most the pacer sends on one look at the receiver: the app's other processes may be filling
#: the same room at the same moment (3 processes flushing 10,000 contexts each at once into a
#: default 208 KiB buffer lost 3.6 % taking half the room, 0.3-0.8 % taking a quarter of it up
#: to 48 KiB, nothing with 32 KiB; bench_pacing.py --counters 10000 --senders 3).
CHUNK_BYTES = 32 * 1024
#: ... unless the room is large: then a sixteenth of it (an exporter with an 8 MiB buffer: 512 KiB
#: per look, 2 looks for a 10,000-context flush instead of ~20, each ~20 µs of CPU). Three processes
#: flushing at once take 3/16 of the room that way, a smaller share than 32 KiB of a default 208 KiB
#: buffer; below 512 KiB of room the 32 KiB bound applies unchanged.
CHUNK_SHARE = 16
#: Room left unused; of the rest the pacer takes a quarter (at most :data:`CHUNK_BYTES`) before
#: it asks again, for the same reason.
MARGIN, SHARE = 8 * 1024, 4
#: Datagrams sent faster than ``rate`` before the pacer slows down even when the socket has room:
#: statsd_exporter (v0.26.1 to v0.31.0) reads its socket into a queue of 10,000 packets
#: (``--statsd.udp-packet-queue-size``) and drops what does not fit (counted in its
#: ``statsd_exporter_udp_packet_drops_total``); half of it, for other senders.
QUEUE_DATAGRAMS = 5_000
#: Once that is spent: resume when this many datagrams are allowed again.
QUEUE_RESUME = 64


def kernel_cost(size: int) -> int:
    """Bytes a ``size``-byte UDP datagram is charged against the receiver's buffer on Linux.

    The kernel charges a queued datagram its buffer's true size: the payload with
    headers and shared info rounded up to a power of two, plus the ``sk_buff``.
    Measured on Linux 6.18: 1,432 bytes -> 2,304, 512 -> ~1,290, 64 -> ~832; this
    estimate is never below those.

    >>> kernel_cost(1432), kernel_cost(64)
    (2368, 832)
    """
    return (1 << (size + 411).bit_length()) + 320


#: The charge of a full datagram of the default size (1,432 bytes): the queue's refill is ``rate`` in those.
FULL_COST = kernel_cost(1432)


def rmem_default() -> int:
    """This host's default UDP receive buffer (``net.core.rmem_default``); Linux's default if unreadable."""
    try:
        return int(Path("/proc/sys/net/core/rmem_default").read_text())
    except (OSError, ValueError):
        return LINUX_RMEM_DEFAULT


class _Bucket:
    """A token bucket: ``level`` refills at ``rate`` per second up to ``size``."""

    def __init__(self, size: float, rate: float) -> None:
        self.size, self.rate, self.level = size, rate, size
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.size, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def seconds_until(self, level: float) -> float:
        """How long until the bucket holds ``level`` (at most its size)."""
        return max(0.0, min(level, self.size) - self.level) / self.rate


class Pacer:
    """Decides, before each datagram, whether to send now, wait, or (receiver stalled) not send."""

    def __init__(
        self, burst: int, rate: float, probe: ReceiverProbe | None = None, queue: int = QUEUE_DATAGRAMS
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.probe = probe
        #: room in the receiver's socket buffer as last observed, minus what was sent since
        self._room = 0.0
        self._stalled = False
        #: receive-buffer bytes of a receiver that cannot be observed
        self._bytes = _Bucket(burst, rate or 1.0)
        #: datagrams the exporter may hold in its own packet queue (it reads the socket faster than it parses)
        self._queue = _Bucket(queue, (rate or 1.0) / FULL_COST)
        #: pauses taken and seconds slept in them (for the benches and tests)
        self.pauses = 0
        self.slept = 0.0
        #: receiver queries made, and datagrams not sent because the observed receiver was stalled
        self.probes = 0
        self.refused = 0

    def admit(self, size: int) -> bool:
        """Wait until a ``size``-byte datagram fits; ``False``: do not send it (the receiver is stalled)."""
        if not self.rate:
            return True
        cost = kernel_cost(size)
        queue = self._queue
        queue.refill()
        if queue.level < 1:
            self._sleep(queue.seconds_until(QUEUE_RESUME))
            queue.refill()
        if self._room < cost:
            verdict = self._observe(cost) if self.probe is not None else None
            if verdict is None:  # not observable: the fixed burst and rate
                self._take_bytes(cost)
            elif not verdict:
                self.refused += 1
                return False
            else:
                self._room -= cost
        else:
            self._room -= cost
        queue.level -= 1
        return True

    def _take_bytes(self, cost: int) -> None:
        """The token bucket of a receiver that cannot be observed: sleep until a quarter of the burst is back."""
        bucket = self._bytes
        bucket.refill()
        if bucket.level < cost:
            self._sleep(bucket.seconds_until(max(cost, bucket.size / 4)))
            bucket.refill()
        bucket.level -= cost

    def _observe(self, cost: int) -> bool | None:
        """Room for ``cost`` (pausing while the receiver is full): ``True``; stalled: ``False``; unknown: ``None``."""
        assert self.probe is not None
        wait, waited = FIRST_WAIT, 0.0
        last = None
        while True:
            self.probes += 1
            room = self.probe.room()
            if room is None:
                return None
            room, chunk = (room - MARGIN) // SHARE, max(CHUNK_BYTES, room // CHUNK_SHARE)
            # ^ other processes may be filling the same room right now
            if room >= min(RESUME_BYTES, cost * 4) or (room >= cost and self._stalled):
                self._room, self._stalled = float(min(room, chunk)), False
                return True
            if self._stalled:
                return False
            if last is not None and room > last:
                waited = 0.0  # it is draining: not stalled
            if waited >= STALL_SECONDS:
                self._stalled = True
                return False
            last = room
            self._sleep(wait)
            waited += wait
            wait = min(wait * 2, LONGEST_WAIT)

    def _sleep(self, seconds: float) -> None:
        self.pauses += 1
        start = time.perf_counter()
        time.sleep(seconds)
        self.slept += time.perf_counter() - start
