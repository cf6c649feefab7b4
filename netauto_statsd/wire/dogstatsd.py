"""Wire transports: turn one flushed batch of aggregated samples into datagrams.

The emitter aggregates in process (counters summed, gauges last-value, histogram
samples collected) and hands a :class:`Batch` to a transport at every flush.

:class:`DogStatsdTransport` is built on datadog's ``DogStatsd`` client, set up
for a Prometheus statsd_exporter rather than a Datadog agent:

* origin detection off (no ``|c:`` container id), client telemetry off (its
  ``datadog.dogstatsd.client.*`` series would be exported), no ``cardinality``
  and no ``|e:`` external data (both make the exporter drop the sample);
* constant tags are exactly ours (``env``, ``service``): ``DATADOG_TAGS``,
  ``DD_VERSION`` and ``DD_ENTITY_ID`` would add labels the catalog does not know;
* histogram samples of one context are packed into one DogStatsD 1.1
  multi-value line (``name:v1:v2:v3|h``), values in seconds/bytes, never ``|ms``
  (one value per line with ``NETAUTO_STATSD_EXPORTER_COMPAT=0.26``: exporters
  older than v0.27.1 reject multi-value lines);
* a batch is sent through ``open_buffer``/``flush``/``close_buffer`` so lines are
  packed into datagrams of at most ``max_packet`` bytes;
* over UDP every datagram goes through our :class:`~netauto_statsd.wire.udp.UdpSender`
  (installed as the client's socket): it counts each datagram the kernel did not
  take or the destination refused, retries once after a late ``ECONNREFUSED`` and
  paces large flushes. A unix socket (``DD_DOGSTATSD_URL=unix://``) keeps
  datadog's own socket and its error sorting.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch, SendResult, format_number, pack_values, tag_list
from netauto_statsd.wire.udp import UdpSender


class DogStatsdTransport:
    """DogStatsD over UDP (or a unix socket) through datadog's ``DogStatsd``."""

    def __init__(self, settings: Settings) -> None:
        # Import datadog now, in the thread that first emits, not later in the flush
        # thread: a fork() racing with an import in another thread can leave the
        # child stuck on the import lock (seen with RQ's forking worker).
        import datadog.dogstatsd.base  # noqa: F401

        self.settings = settings
        self._client: Any = None
        self._udp: _SenderSocket | None = None
        self._failed_setup = False
        self._lock = threading.Lock()
        self._constant_tags = [f"env:{normalise_value(settings.env)}", f"service:{normalise_value(settings.service)}"]
        self._constant_length = len(",".join(self._constant_tags))

    def _build_client(self) -> Any:
        from datadog.dogstatsd.base import DogStatsd

        s = self.settings
        if s.socket_path:  # a unix socket: datadog's own socket and error sorting
            where: dict[str, Any] = {"socket_path": s.socket_path}
        else:  # UDP: resolved in config (never datadog's silent fallback); our socket counts every datagram
            host, port = s.address
            where = {"host": host, "port": port}
        client = DogStatsd(
            **where,
            namespace=s.namespace or None,
            disable_buffering=True,  # we batch explicitly with open_buffer/flush/close_buffer
            disable_aggregation=True,  # we aggregate ourselves, before the client
            disable_telemetry=True,
            origin_detection_enabled=False,
            cardinality=None,
            use_ms=False,
            max_buffer_len=s.max_packet,
            socket_timeout=0,  # never block the flush thread
        )
        # Env-derived tags (DATADOG_TAGS, DD_VERSION, DD_ENTITY_ID) would add
        # labels the catalog does not declare; keep exactly ours.
        client.constant_tags = list(self._constant_tags)
        # DD_EXTERNAL_ENV adds an "|e:" field that makes the exporter drop the sample.
        if getattr(client, "_external_data", None):
            client._external_data = None
        if not s.socket_path:
            self._udp = _SenderSocket(UdpSender(*s.address))
        return client

    def _get_client(self) -> Any:
        if self._client is None and not self._failed_setup:
            try:
                self._client = self._build_client()
            except Exception as exc:  # a unix socket path datadog cannot use...
                self._failed_setup = True
                log.warning("netauto_statsd: cannot set up the DogStatsD client, sending nothing: %s", exc)
        return self._client

    def _ship(self, client: Any) -> bool:
        """Send the buffered lines as one datagram; ``True`` if the kernel took it."""
        udp = self._udp
        if udp is None:
            return bool(client.flush())
        if client.socket is not udp:  # datadog dropped it in close_socket(): hand it back
            client.socket = udp
        udp.ok = False
        client.flush()
        return udp.ok

    def send(self, batch: Batch) -> SendResult:
        """Send ``batch`` as buffered DogStatsD lines; return the packets (and samples) that failed."""
        with self._lock:
            client = self._get_client()
            if client is None:
                return SendResult(1 if len(batch) else 0, len(batch))
            # The client's own size-triggered flush would hide its result, so we
            # size the datagrams here (same arithmetic as its serializer) and
            # flush each one explicitly: every failed packet is counted.
            const = self._constant_length
            prefix = len(self.settings.namespace) + 1 if self.settings.namespace else 0
            limit = self.settings.max_packet
            failed = lost = datagrams = handed = 0
            size = samples = 0
            client.open_buffer()
            try:
                for method, metric, value, tags, rate in self._lines(batch):
                    length = prefix + len(metric) + len(value) + sum(len(t) + 1 for t in tags) + const + 8
                    if rate != 1:
                        length += len(str(rate)) + 2
                    if size and size + length > limit:
                        self._set_samples(samples)
                        datagrams += 1
                        if not self._ship(client):
                            failed, lost = failed + 1, lost + samples
                        handed += samples
                        size = samples = 0
                    if rate == 1:
                        getattr(client, method)(metric, value, tags=tags)
                    else:  # already sampled by the emitter: the client must not sample again
                        client._report(metric, "h", value, tags, rate, sampling=False)
                    size += length
                    samples += value.count(":") + 1 if method == "histogram" else 1
                if size:
                    self._set_samples(samples)
                    datagrams += 1
                    if not self._ship(client):
                        failed, lost = failed + 1, lost + samples
                    handed += samples
                    size = samples = 0
            except Exception as exc:
                failed += 1
                lost += max(0, len(batch) - handed)
                log.debug("netauto_statsd: send failed: %s", exc)
            finally:
                client.close_buffer()
            if self._udp is not None:
                late, late_samples = self._udp.sender.take_late_refusals()
                failed, lost = failed + late, lost + late_samples
            if failed:
                log.debug("netauto_statsd: %d of %d datagram(s) not delivered (%d samples)", failed, datagrams, lost)
            return SendResult(failed, lost, datagrams)

    def _set_samples(self, samples: int) -> None:
        if self._udp is not None:
            self._udp.samples = samples

    def _lines(self, batch: Batch) -> Iterator[tuple[str, str, str, list[str], float]]:
        """Yield ``(client method, metric, value text, tags, sample rate)`` for every line of ``batch``."""
        for (metric, pairs), value in batch.counters.items():
            yield "count", metric.name, format_number(value), tag_list(pairs), 1
        for (metric, pairs), value in batch.gauges.items():
            tags = tag_list(pairs)
            if value < 0:  # a leading '-' is a relative change: set 0 first, then move down
                yield "gauge", metric.name, "0", tags, 1
            yield "gauge", metric.name, format_number(value), tags, 1
        # Everything on a histogram line but its values, as sized in send() (so a
        # full chunk fits one datagram): namespace, constant tags and separators.
        prefix = len(self.settings.namespace) + 1 if self.settings.namespace else 0
        overhead = prefix + self._constant_length + 8
        multi_value = self.settings.multi_value
        for (metric, pairs), values in batch.histograms.items():
            tags = tag_list(pairs)
            room = self.settings.max_packet - overhead - len(metric.name) - sum(len(t) + 1 for t in tags)
            # Exporters older than v0.27.1 reject multi-value lines: one value per line.
            chunks = pack_values(values, max(32, room)) if multi_value else map(format_number, values)
            for chunk in chunks:
                yield "histogram", metric.name, chunk, tags, 1
        for (metric, pairs), groups in batch.sampled.items():
            tags = tag_list(pairs)
            for rate, values in groups:
                room = self.settings.max_packet - overhead - len(metric.name) - sum(len(t) + 1 for t in tags)
                sized = pack_values(values, max(32, room - len(str(rate)) - 2))
                for chunk in sized if multi_value else map(format_number, values):
                    yield "histogram", metric.name, chunk, tags, rate

    def close(self) -> None:
        """Close the client's socket."""
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close_socket()
                except Exception as exc:
                    log.debug("netauto_statsd: close failed: %s", exc)


class _SenderSocket:
    """What datadog's client sees as its socket: every ``send`` goes through a :class:`UdpSender`.

    The client's own UDP send cannot tell a datagram the kernel took from one
    refused (it closes the socket on ``ECONNREFUSED``, so to a dead port every
    other datagram looks sent). It never raises here; :meth:`DogStatsdTransport._ship`
    reads ``ok`` after each flush.
    """

    family = socket.AF_INET

    def __init__(self, sender: UdpSender) -> None:
        self.sender = sender
        self.samples = 0
        self.ok = False

    def send(self, data: bytes) -> int:
        self.ok = self.sender.send(data, self.samples)
        return len(data)

    def getsockopt(self, level: int, option: int) -> int:
        return socket.SOCK_DGRAM  # the client asks for SO_TYPE only

    def settimeout(self, timeout: float | None) -> None:
        """Always non-blocking."""

    def close(self) -> None:
        self.sender.close()
