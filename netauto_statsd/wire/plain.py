"""Plain StatsD wire format through the ``statsd`` package (pystatsd), tags as name segments.

For shops whose relay or aggregator drops DogStatsD tags. Each catalog tag
becomes one dotted segment, in catalog order, followed by the per-process tag
(per-process gauges only) and the constant tags::

    netauto.runner.stop.<site>.<protocol>.<status>.<env>.<service>

Tag values are normalised before they get here and can never contain ``.``,
``:``, ``|`` or whitespace, so a value can never add or remove a segment.
pystatsd has no histogram type: observations are sent as ``|ms`` timers with
the value multiplied by 1000, which the exporter divides by 1000 - so seconds
stay seconds and bytes stay bytes (proved against the real exporter in tests).
Datagrams go through :class:`~netauto_statsd.wire.udp.UdpSender` (pystatsd's
formatting and pipeline, our socket): every refused datagram is counted with
the lines it carried, retried once after a late refusal, and large flushes are
paced - the same as the DogStatsD transport.
Enable with ``NETAUTO_STATSD_TRANSPORT=statsd`` (``plain`` extra).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch, SendResult, format_number, plain_name
from netauto_statsd.wire.udp import UdpSender


class PlainStatsdTransport:
    """Sends batches in plain StatsD format through pystatsd's pipeline."""

    def __init__(self, settings: Settings) -> None:
        # imported here, not in the flush thread (fork + import lock)
        import statsd.client.base
        import statsd.client.udp  # noqa: F401

        self._lock = threading.Lock()
        self._constant = (normalise_value(settings.env), normalise_value(settings.service))
        # Only objects: the socket is opened (and the host resolved) at the first send, where
        # a failure is counted like any other.
        self._client = _counting_client(settings)

    def send(self, batch: Batch) -> SendResult:
        """Send ``batch``; return the number of packets (and samples) that failed."""
        with self._lock:
            client = self._client
            client.begin()
            weights = client.weights  # samples of the batch each line stands for, in line order
            try:
                with client.pipeline() as pipe:
                    for (metric, pairs), value in batch.counters.items():
                        pipe.incr(plain_name(metric, pairs, self._constant), format_number(value))
                        weights.append(1)
                    for (metric, pairs), value in batch.gauges.items():
                        name = plain_name(metric, pairs, self._constant)
                        number = int(value) if float(value).is_integer() else value
                        if number < 0:  # a leading '-' is relative: set 0, then move down (one sample)
                            pipe.gauge(name, 0)
                            weights.append(0)
                            pipe.gauge(name, number, delta=True)
                        else:
                            pipe.gauge(name, number)
                        weights.append(1)
                    for (metric, pairs), values in batch.histograms.items():
                        name = plain_name(metric, pairs, self._constant)
                        for value in values:
                            # |ms is divided by 1000 at the exporter: send value * 1000.
                            pipe.timing(name, value * 1000.0)
                            weights.append(1)
                    for (metric, pairs), groups in batch.sampled.items():
                        name = plain_name(metric, pairs, self._constant)
                        for rate, values in groups:  # pystatsd samples randomly: repeat instead
                            repeat = int(1 / rate)
                            for value in values:  # one sample of the batch, repeated on the wire
                                for copy in range(repeat):
                                    pipe.timing(name, value * 1000.0)
                                    weights.append(0 if copy else 1)
            except Exception as exc:
                log.debug("netauto_statsd: plain send failed: %s", exc)
                client.failures += 1  # the lines never handed over, besides any datagram already lost
                client.lost += len(batch) - client.handed  # never negative: only samples of the batch are handed over
            late, late_samples = client.sender.take_late_refusals()
            return SendResult(client.failures + late, client.lost + late_samples, client.datagrams)

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            self._client.close()


def _counting_client(settings: Settings) -> Any:
    """A pystatsd client whose datagrams go through our :class:`UdpSender` (counted, retried, paced)."""
    from statsd.client.base import StatsClientBase

    class CountingStatsClient(StatsClientBase):  # type: ignore[misc]
        """pystatsd's formatting and pipeline; our socket and accounting."""

        def __init__(self, sender: UdpSender, prefix: str | None, maxudpsize: int) -> None:
            self.sender = sender
            self._prefix = prefix
            self._maxudpsize = maxudpsize
            #: per line queued in the pipeline, the samples of the batch it stands for (a negative
            #: gauge's leading ``0`` and the repeats of a sampled value stand for none)
            self.weights: deque[int] = deque()
            self.begin()

        def begin(self) -> None:
            """Start a send: nothing failed, lost, sent or handed over yet, no line queued."""
            self.failures = self.lost = self.datagrams = self.handed = 0
            self.weights.clear()

        def _send(self, data: str) -> None:
            lines = data.count("\n") + 1
            weights = self.weights
            samples = sum(weights.popleft() for _ in range(lines))
            self.datagrams += 1
            self.handed += samples
            try:
                payload = data.encode("ascii")
            except UnicodeEncodeError as exc:  # never with normalised names; counted if it happens
                log.debug("netauto_statsd: plain packet dropped: %s", exc)
                payload = b""
            if not payload or not self.sender.send(payload, samples):
                self.failures += 1
                self.lost += samples

        def pipeline(self) -> Any:
            from statsd.client.udp import Pipeline

            return Pipeline(self)

        def close(self) -> None:
            self.sender.close()

    host, port = settings.address
    sender = UdpSender(host, port, settings.pace_burst, settings.pace_rate)
    return CountingStatsClient(sender, settings.namespace or None, settings.max_packet)
