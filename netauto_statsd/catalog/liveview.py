"""Websocket live views (the seed's PromEx LiveView plugin and its custom mount event)."""

from __future__ import annotations

from netauto_statsd.catalog.model import Tag
from netauto_statsd.catalog.registry import counter, gauge, histogram
from netauto_statsd.catalog.shared import BACKLOG_BYTES, VIEW, WEB_SECONDS

AREA = "liveview"

HANDSHAKE = histogram(
    "liveview.handshake",
    tags=(VIEW,),
    unit="seconds",
    help="Websocket handshake time (request to 101 sent).",
    prometheus_name="netauto_liveview_handshake_seconds",
    buckets=WEB_SECONDS,
    area=AREA,
)
MOUNT = histogram(
    "liveview.mount",
    tags=(VIEW,),
    unit="seconds",
    help="Mount time: connect to first message sent.",
    prometheus_name="netauto_liveview_mount_seconds",
    buckets=WEB_SECONDS,
    area=AREA,
)
SESSIONS = gauge(
    "liveview.sessions",
    tags=(VIEW,),
    help="Connected live-view sessions (per process, summed).",
    prometheus_name="netauto_liveview_sessions",
    ttl="2m",
    area=AREA,
)
MESSAGES = counter(
    "liveview.messages",
    tags=(VIEW, Tag("direction", ("sent", "received"), "message direction")),
    help="Websocket messages sent and received.",
    prometheus_name="netauto_liveview_messages_total",
    area=AREA,
)
SEND_LATENCY = histogram(
    "liveview.send_latency",
    tags=(VIEW,),
    unit="seconds",
    help="Sends that waited >= 1 ms (backpressure), by wait; every send is counted in messages.",
    prometheus_name="netauto_liveview_send_latency_seconds",
    buckets=WEB_SECONDS,
    area=AREA,
)
BACKLOG = histogram(
    "liveview.backlog",
    tags=(VIEW,),
    unit="bytes",
    help="Outbound bytes buffered in the transport, sampled at most every 0.25 s per sending session.",
    prometheus_name="netauto_liveview_backlog_bytes",
    buckets=BACKLOG_BYTES,
    area=AREA,
)
CLOSES = counter(
    "liveview.close",
    tags=(VIEW, Tag("code_class", ("normal", "going_away", "abnormal", "error"), "websocket close code class")),
    help="Live-view sessions closed, by close code class.",
    prometheus_name="netauto_liveview_closes_total",
    area=AREA,
)
ERRORS = counter(
    "liveview.error",
    tags=(VIEW, Tag("kind", None, "error kind (exception class, capped)", "ConnectionResetError")),
    help="Live-view streaming errors.",
    prometheus_name="netauto_liveview_errors_total",
    max_combinations=200,
    area=AREA,
)
