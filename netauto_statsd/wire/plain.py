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
Enable with ``NETAUTO_STATSD_TRANSPORT=statsd`` (``plain`` extra).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch, format_number, plain_name

_DEFAULT_PORT = 8125


def _destination(settings: Settings) -> tuple[str, int]:
    """Host and port, honouring the same DD_* variables as the DogStatsD transport."""
    if settings.host:
        return settings.host, settings.port or _DEFAULT_PORT
    url = os.environ.get("DD_DOGSTATSD_URL", "")
    if url.startswith("udp://"):
        host, _, port = url[len("udp://") :].rpartition(":")
        return host.strip("[]") or "localhost", int(port or _DEFAULT_PORT)
    host = os.environ.get("DD_AGENT_HOST") or "localhost"
    return host, int(os.environ.get("DD_DOGSTATSD_PORT") or _DEFAULT_PORT)


class PlainStatsdTransport:
    """Sends batches in plain StatsD format through pystatsd's pipeline."""

    def __init__(self, settings: Settings) -> None:
        import statsd  # noqa: F401 - imported here, not in the flush thread (fork + import lock)

        self.settings = settings
        self._client: Any = None
        self._failed_setup = False
        self._lock = threading.Lock()
        self._constant = (normalise_value(settings.env), normalise_value(settings.service))

    def _get_client(self) -> Any:
        if self._client is None and not self._failed_setup:
            try:
                self._client = _counting_client(self.settings)
            except Exception as exc:  # unresolvable host, missing package...
                self._failed_setup = True
                log.warning("netauto_statsd: cannot set up the StatsD client, sending nothing: %s", exc)
        return self._client

    def send(self, batch: Batch) -> int:
        """Send ``batch``; return the number of packets that failed."""
        with self._lock:
            client = self._get_client()
            if client is None:
                return 1 if len(batch) else 0
            before = client.failures
            try:
                with client.pipeline() as pipe:
                    for (metric, pairs), value in batch.counters.items():
                        pipe.incr(plain_name(metric, pairs, self._constant), format_number(value))
                    for (metric, pairs), value in batch.gauges.items():
                        name = plain_name(metric, pairs, self._constant)
                        number = int(value) if float(value).is_integer() else value
                        if number < 0:  # a leading '-' is relative: set 0, then move down
                            pipe.gauge(name, 0)
                            pipe.gauge(name, number, delta=True)
                        else:
                            pipe.gauge(name, number)
                    for (metric, pairs), values in batch.histograms.items():
                        name = plain_name(metric, pairs, self._constant)
                        for value in values:
                            # |ms is divided by 1000 at the exporter: send value * 1000.
                            pipe.timing(name, value * 1000.0)
            except Exception as exc:
                log.debug("netauto_statsd: plain send failed: %s", exc)
                return int(client.failures - before) + 1
            return int(client.failures - before)

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            if self._client is not None:
                self._client.close()


def _counting_client(settings: Settings) -> Any:
    """A pystatsd UDP client that counts failed sends instead of hiding them."""
    from statsd import StatsClient

    class CountingStatsClient(StatsClient):  # type: ignore[misc]
        """Connected (so a dead exporter surfaces as ECONNREFUSED), non-blocking, counting."""

        failures = 0
        connected = False

        def _send(self, data: str) -> None:
            try:
                if not self.connected:
                    self._sock.setblocking(False)
                    self._sock.connect(self._addr)
                    self.connected = True
                self._sock.send(data.encode("ascii"))
            except (OSError, RuntimeError, UnicodeEncodeError) as exc:
                self.failures += 1
                log.debug("netauto_statsd: plain packet dropped: %s", exc)

    host, port = _destination(settings)
    prefix = settings.namespace or None
    return CountingStatsClient(host, port, prefix=prefix, maxudpsize=settings.max_packet)
