"""Wire transports: turn one flushed batch of aggregated samples into datagrams.

The emitter aggregates in process (counters summed, gauges last-value, histogram
samples collected) and hands a :class:`Batch` to a transport at every flush.

:class:`DogStatsdTransport` writes the DogStatsD lines datadog's ``DogStatsd``
client would write, set up for a Prometheus statsd_exporter rather than a Datadog agent:

* no ``|c:`` container id, no client telemetry, no ``cardinality`` and no ``|e:``
  external data (the exporter would export or drop them);
* constant tags are exactly ours (``env``, ``service``), after the metric's own
  (``DATADOG_TAGS``, ``DD_VERSION`` and ``DD_ENTITY_ID`` would add labels the
  catalog does not know);
* histogram samples of one context are packed into one DogStatsD 1.1
  multi-value line (``name:v1:v2:v3|h``), values in seconds/bytes, never ``|ms``
  (one value per line with ``NETAUTO_STATSD_EXPORTER_COMPAT=0.26``: exporters
  older than v0.27.1 reject multi-value lines);
* lines are packed into datagrams of at most ``max_packet`` bytes.

Over UDP (the usual case) the lines are serialised here
(:class:`~netauto_statsd.wire.base.DogStatsdLines`; handing 10,000 lines to the
client one by one cost ~90 ms a flush) and every datagram goes through our
:class:`~netauto_statsd.wire.udp.UdpSender`: it counts each datagram the kernel did
not take or the destination refused, retries once after a late ``ECONNREFUSED``
and paces large flushes. A unix socket (``DD_DOGSTATSD_URL=unix://``) goes through
datadog's client (``open_buffer``/``flush``/``close_buffer``), its own socket and
its error sorting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch, DogStatsdLines, SendResult, format_number, pack_values, tag_list
from netauto_statsd.wire.udp import UdpSender


class DogStatsdTransport:
    """DogStatsD over UDP (our serialiser and sender) or a unix socket (datadog's ``DogStatsd``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        #: why datadog's client could not be built (then nothing is sent, every sample counted)
        self._setup_error: Exception | None = None
        self._lock = threading.Lock()
        self._constant_tags = [f"env:{normalise_value(settings.env)}", f"service:{normalise_value(settings.service)}"]
        self._constant_length = len(",".join(self._constant_tags))
        self._serialiser = DogStatsdLines(
            settings.namespace, self._constant_tags, settings.max_packet, settings.multi_value
        )
        self._sender: UdpSender | None = None
        if settings.socket_path:
            # Import datadog now, in the thread that first emits, not later in the flush
            # thread: a fork() racing with an import in another thread can leave the
            # child stuck on the import lock (seen with RQ's forking worker).
            import datadog.dogstatsd.base  # noqa: F401

    def _build_client(self) -> Any:
        from datadog.dogstatsd.base import DogStatsd

        s = self.settings
        # (its datagram size is ours, set at every send: see _own_limit)
        client = DogStatsd(
            socket_path=s.socket_path,
            namespace=s.namespace or None,
            disable_buffering=True,  # we batch explicitly with open_buffer/flush/close_buffer
            disable_aggregation=True,  # we aggregate ourselves, before the client
            disable_telemetry=True,
            origin_detection_enabled=False,
            cardinality=None,
            use_ms=False,
            socket_timeout=0,  # never block the flush thread
        )
        # Env-derived tags (DATADOG_TAGS, DD_VERSION, DD_ENTITY_ID) would add
        # labels the catalog does not declare; keep exactly ours.
        client.constant_tags = list(self._constant_tags)
        # DD_EXTERNAL_ENV adds an "|e:" field that makes the exporter drop the sample.
        if getattr(client, "_external_data", None):
            client._external_data = None
        return client

    def _get_client(self) -> Any:
        if self._client is None and self._setup_error is None:
            try:
                self._client = self._build_client()
            except Exception as exc:  # e.g. DD_TELEMETRY_PORT that is not a number
                self._setup_error = exc
                log.warning("netauto_statsd: cannot set up the DogStatsD client, sending nothing: %s", exc)
        return self._client

    def send(self, batch: Batch) -> SendResult:
        """Send ``batch`` as DogStatsD datagrams; return the packets (and samples) that failed."""
        with self._lock:
            if self.settings.socket_path:
                return self._send_client(batch)
            return self._send_udp(batch)

    def _send_udp(self, batch: Batch) -> SendResult:
        """UDP: serialise the lines here and hand each datagram of at most ``max_packet`` bytes to the sender."""
        if self._sender is None:
            self._sender = UdpSender(*self.settings.address, self.settings.pace_burst, self.settings.pace_rate)
        sender = self._sender
        failed = lost = datagrams = handed = 0
        try:
            for payload, samples in self._datagrams(batch):
                datagrams += 1
                if not sender.send(payload, samples):
                    failed, lost = failed + 1, lost + samples
                handed += samples
        except Exception as exc:
            failed += 1
            lost += len(batch) - handed  # never negative: only samples of the batch are handed over
            log.debug("netauto_statsd: send failed: %s", exc)
        late, late_samples = sender.take_late_refusals()
        return self._result(failed + late, lost + late_samples, datagrams)

    def _datagrams(self, batch: Batch) -> Iterator[tuple[bytes, int]]:
        """Yield ``(datagram, samples it carries)``: the batch's lines packed into at most ``max_packet`` bytes."""
        limit = self.settings.max_packet
        lines: list[bytes] = []
        size = samples = 0
        # Counter lines in bulk (one text, cut at newlines into full datagrams); the last,
        # partial datagram goes on with the other lines, exactly as if packed line by line.
        text = self._serialiser.counter_text(batch).encode()
        start, end = 0, len(text)
        while end - start > limit:
            cut = text.rfind(b"\n", start, start + limit)  # the chunk [start, cut] fits
            if cut < start:  # a line longer than a datagram travels alone
                cut = text.find(b"\n", start)
            chunk = text[start : cut + 1]
            yield chunk, chunk.count(b"\n")
            start = cut + 1
        if start < end:
            lines.append(text[start : end - 1])  # joined with a newline to what follows
            size, samples = end - start, text.count(b"\n", start)
        for line_text, count in self._serialiser.lines(batch, counters=False):
            line = line_text.encode()
            length = len(line) + 1  # with its newline, as the client sizes its buffer
            if size and size + length > limit:  # full: send it (a line longer than a datagram travels alone)
                yield b"\n".join(lines) + b"\n", samples
                lines, size, samples = [], 0, 0
            lines.append(line)
            size += length
            samples += count
        if lines:
            yield b"\n".join(lines) + b"\n", samples

    def _send_client(self, batch: Batch) -> SendResult:
        """A unix socket: the lines go through datadog's client (its socket, its error sorting)."""
        client = self._get_client()
        if client is None:
            return SendResult(1 if len(batch) else 0, len(batch))
        # The client's own size-triggered flush would hide its result, so we
        # size the datagrams here (exactly what its serializer writes, with the
        # newline: the UDP path's datagrams) and flush each one explicitly: every
        # failed packet is counted.
        const = self._constant_length
        prefix = len(self.settings.namespace) + 1 if self.settings.namespace else 0
        limit = self.settings.max_packet
        failed = lost = datagrams = handed = 0
        size = samples = 0
        client.open_buffer()
        try:
            _own_limit(client, limit)
            for method, metric, value, tags, rate, count in self._lines(batch):
                # ":", "|h", "|#" and the "\n" joining it to the next line: 6 bytes; each tag adds a ","
                length = prefix + len(metric) + len(value) + sum(len(t) + 1 for t in tags) + const + 6
                if rate != 1:
                    length += len(str(rate)) + 2
                if size and size + length > limit:
                    datagrams += 1
                    if not client.flush():
                        failed, lost = failed + 1, lost + samples
                    _own_limit(client, limit)
                    handed += samples
                    size = samples = 0
                if rate == 1:
                    getattr(client, method)(metric, value, tags=tags)
                else:  # already sampled by the emitter: the client must not sample again
                    client._report(metric, "h", value, tags, rate, sampling=False)
                size += length
                samples += count
            if size:  # the last datagram: nothing after it can fail, so ``handed`` stays as it is
                datagrams += 1
                if not client.flush():
                    failed, lost = failed + 1, lost + samples
        except Exception as exc:
            failed += 1
            lost += len(batch) - handed  # never negative: only samples of the batch are handed over
            log.debug("netauto_statsd: send failed: %s", exc)
        finally:
            client.close_buffer()
        return self._result(failed, lost, datagrams)

    @staticmethod
    def _result(failed: int, lost: int, datagrams: int) -> SendResult:
        if failed:
            log.debug("netauto_statsd: %d of %d datagram(s) not delivered (%d samples)", failed, datagrams, lost)
        return SendResult(failed, lost, datagrams)

    def _lines(self, batch: Batch) -> Iterator[tuple[str, str, str, list[str], float, int]]:
        """Yield ``(client method, metric, value text, tags, sample rate, samples)`` for every line of ``batch``."""
        for (metric, pairs), value in batch.counters.items():
            yield "count", metric.name, format_number(value), tag_list(pairs), 1, 1
        for (metric, pairs), value in batch.gauges.items():
            tags = tag_list(pairs)
            if value < 0:  # a leading '-' is a relative change: set 0 first, then move down
                yield "gauge", metric.name, "0", tags, 1, 0
            yield "gauge", metric.name, format_number(value), tags, 1, 1
        # Everything on a histogram line but its values, as sized in _send_client() (so a
        # full chunk fits one datagram): namespace, constant tags and separators.
        overhead = self._serialiser.overhead
        multi_value = self.settings.multi_value
        for (metric, pairs), values in batch.histograms.items():
            tags = tag_list(pairs)
            room = self.settings.max_packet - overhead - len(metric.name) - sum(len(t) + 1 for t in tags)
            # Exporters older than v0.27.1 reject multi-value lines: one value per line.
            chunks = pack_values(values, max(32, room)) if multi_value else map(format_number, values)
            for chunk in chunks:
                yield "histogram", metric.name, chunk, tags, 1, chunk.count(":") + 1
        for (metric, pairs), groups in batch.sampled.items():
            tags = tag_list(pairs)
            for rate, values in groups:
                room = self.settings.max_packet - overhead - len(metric.name) - sum(len(t) + 1 for t in tags)
                sized = pack_values(values, max(32, room - len(str(rate)) - 2))
                for chunk in sized if multi_value else map(format_number, values):
                    yield "histogram", metric.name, chunk, tags, rate, chunk.count(":") + 1

    def close(self) -> None:
        """Close the socket (safe to call twice)."""
        with self._lock:
            if self._sender is not None:
                self._sender.close()
            if self._client is not None:
                try:
                    self._client.close_socket()
                except Exception as exc:
                    log.debug("netauto_statsd: close failed: %s", exc)


def _own_limit(client: Any, limit: int) -> None:
    """Hold datadog's client to our datagram size, so that it never flushes on its own (a flush whose
    result it would keep to itself).

    Its own limit (``max_buffer_len``, else 8,192 bytes) holds only while its socket is connected:
    before the first connection and after a failed send closed it, it falls back to 1,432 bytes (its
    UDP size), which cut our first datagram in two when ``max_packet`` was larger. The socket changes
    only inside a flush, so the limit is set at the start of a send and after every flush.
    """
    client._max_payload_size = limit
