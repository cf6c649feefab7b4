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
  multi-value line (``name:v1:v2:v3|h``), values in seconds/bytes, never ``|ms``;
* a batch is sent through ``open_buffer``/``flush``/``close_buffer`` so lines are
  packed into datagrams of at most ``max_packet`` bytes. Socket errors are
  sorted by datadog's sender (full buffer: drop; other errors: reconnect next
  time); we count the packets it reports as failed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch, format_number, pack_values, tag_list


class DogStatsdTransport:
    """DogStatsD over UDP (or a unix socket) through datadog's ``DogStatsd``."""

    def __init__(self, settings: Settings) -> None:
        # Import datadog now, in the thread that first emits, not later in the flush
        # thread: a fork() racing with an import in another thread can leave the
        # child stuck on the import lock (seen with RQ's forking worker).
        import datadog.dogstatsd.base  # noqa: F401

        self.settings = settings
        self._client: Any = None
        self._failed_setup = False
        self._lock = threading.Lock()
        self._constant_tags = [f"env:{normalise_value(settings.env)}", f"service:{normalise_value(settings.service)}"]
        self._constant_length = len(",".join(self._constant_tags))

    def _build_client(self) -> Any:
        from datadog.dogstatsd.base import DogStatsd

        s = self.settings
        client = DogStatsd(
            host=s.host,
            port=s.port,
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
        return client

    def _get_client(self) -> Any:
        if self._client is None and not self._failed_setup:
            try:
                self._client = self._build_client()
            except Exception as exc:  # bad DD_DOGSTATSD_URL, bad port...
                self._failed_setup = True
                log.warning("netauto_statsd: cannot set up the DogStatsD client, sending nothing: %s", exc)
        return self._client

    def send(self, batch: Batch) -> int:
        """Send ``batch`` as buffered DogStatsD lines; return the packets that failed."""
        with self._lock:
            client = self._get_client()
            if client is None:
                return 1 if len(batch) else 0
            # The client's own size-triggered flush would hide its result, so we
            # size the datagrams here (same arithmetic as its serializer) and
            # flush each one explicitly: every failed packet is counted.
            const = self._constant_length
            prefix = len(self.settings.namespace) + 1 if self.settings.namespace else 0
            limit = self.settings.max_packet
            failed = 0
            size = 0
            client.open_buffer()
            try:
                for method, metric, value, tags in self._lines(batch):
                    length = prefix + len(metric) + len(value) + sum(len(t) + 1 for t in tags) + const + 8
                    if size and size + length > limit:
                        failed += not client.flush()
                        size = 0
                    getattr(client, method)(metric, value, tags=tags)
                    size += length
                if size:
                    failed += not client.flush()
            except Exception as exc:
                failed += 1
                log.debug("netauto_statsd: send failed: %s", exc)
            finally:
                client.close_buffer()
            return failed

    def _lines(self, batch: Batch) -> Iterator[tuple[str, str, str, list[str]]]:
        """Yield ``(client method, metric, value text, tags)`` for every line of ``batch``."""
        for (metric, pairs), value in batch.counters.items():
            yield "count", metric.name, format_number(value), tag_list(pairs)
        for (metric, pairs), value in batch.gauges.items():
            tags = tag_list(pairs)
            if value < 0:  # a leading '-' is a relative change: set 0 first, then move down
                yield "gauge", metric.name, "0", tags
            yield "gauge", metric.name, format_number(value), tags
        # Everything on a histogram line but its values, as sized in send() (so a
        # full chunk fits one datagram): namespace, constant tags and separators.
        prefix = len(self.settings.namespace) + 1 if self.settings.namespace else 0
        overhead = prefix + self._constant_length + 8
        for (metric, pairs), values in batch.histograms.items():
            tags = tag_list(pairs)
            room = self.settings.max_packet - overhead - len(metric.name) - sum(len(t) + 1 for t in tags)
            for chunk in pack_values(values, max(32, room)):
                yield "histogram", metric.name, chunk, tags

    def close(self) -> None:
        """Close the client's socket."""
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close_socket()
                except Exception as exc:
                    log.debug("netauto_statsd: close failed: %s", exc)
