"""The client's own metrics: every sample that is not delivered as sent is counted here.

Operators see loss where they look (a dashboard panel and alerts on these
series), not only in :meth:`Emitter.stats`:

================================  ===============================================================
``client.rejected{reason}``       refused: ``unknown_metric``, ``unknown_tag``, ``bad_value``
                                  (NaN, text, a negative counter...), ``counter_overflow``
                                  (the running sum would leave float64)
``client.unexpected_value``       a tag value outside its allowed set, or a missing tag: sent
                                  as ``other``
``client.overflow{metric}``       cardinality cap reached: tags folded into ``other``
``client.sampled{metric}``        histogram samples carried by a sample rate instead of one by
                                  one (a context got more than a flush carries); counts stay exact
``client.dropped{reason}``        dropped whole: ``disabled_group`` (``NETAUTO_STATSD_DISABLE``),
                                  ``pending_overflow`` (more than sampling can represent)
``client.send_failures``          datagrams the socket refused (exporter down, buffer full)
================================  ===============================================================
"""

from __future__ import annotations

from netauto_statsd.catalog.model import Tag
from netauto_statsd.catalog.registry import counter

AREA = "client"
METRIC = Tag("metric", None, "catalog metric name (dots as _)", "runner_error")

REJECT_REASONS = ("unknown_metric", "unknown_tag", "bad_value", "counter_overflow")
DROP_REASONS = ("disabled_group", "pending_overflow")

OVERFLOW = counter(
    "client.overflow",
    tags=(METRIC,),
    help="Samples whose tags were folded into 'other' by the cardinality cap.",
    prometheus_name="netauto_client_cardinality_overflow_total",
    area=AREA,
)
REJECTED = counter(
    "client.rejected",
    tags=(Tag("reason", REJECT_REASONS, "why"),),
    help="Emissions refused by the catalog check (production mode).",
    prometheus_name="netauto_client_rejected_total",
    area=AREA,
)
UNEXPECTED_VALUE = counter(
    "client.unexpected_value",
    tags=(METRIC,),
    help="Samples sent with a tag as 'other': a value outside the allowed set, or a missing tag.",
    prometheus_name="netauto_client_unexpected_values_total",
    area=AREA,
)
SAMPLED = counter(
    "client.sampled",
    tags=(METRIC,),
    help="Histogram samples carried by a DogStatsD sample rate instead of one by one (counts stay exact).",
    prometheus_name="netauto_client_sampled_total",
    area=AREA,
)
DROPPED = counter(
    "client.dropped",
    tags=(Tag("reason", DROP_REASONS, "why"),),
    help="Samples dropped whole: metric group disabled by configuration, or more than sampling can carry.",
    prometheus_name="netauto_client_dropped_total",
    area=AREA,
)
SEND_FAILURES = counter(
    "client.send_failures",
    unit="1",
    help="Datagrams that could not be sent (exporter down, socket buffer full); their samples are lost.",
    prometheus_name="netauto_client_send_failures_total",
    area=AREA,
)
