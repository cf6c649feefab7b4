"""The wire: encoding (:mod:`.base`) and the two transports, DogStatsD and plain StatsD (leaves)."""

from __future__ import annotations

from netauto_statsd._log import log
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, Context, NullTransport, Transport

__all__ = ["Batch", "Context", "NullTransport", "Transport", "build_transport"]


def build_transport(settings: Settings) -> Transport:
    """Return the transport ``settings`` ask for (a NullTransport, logged, if its library is missing)."""
    if settings.disabled:
        return NullTransport()
    try:
        if settings.transport == "statsd":
            from netauto_statsd.wire.plain import PlainStatsdTransport

            return PlainStatsdTransport(settings)
        from netauto_statsd.wire.dogstatsd import DogStatsdTransport

        return DogStatsdTransport(settings)
    except ImportError as exc:
        extra = "plain" if settings.transport == "statsd" else "base"
        log.error(
            "netauto_statsd: %s transport unavailable (install the %s requirements): %s", settings.transport, extra, exc
        )
        return NullTransport()
