"""Live-view health: connect latency, sessions, traffic, backpressure, closes and errors."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from netauto_statsd.tooling.dashboards.panels import (
    Q,
    Row,
    build,
    env_variable,
    graph,
    heat,
    quantiles,
    single,
    variable,
)
from netauto_statsd.tooling.dashboards.queries import Scope, label_values


def liveview_health() -> dm.Dashboard:
    """Websocket live views: connect latency, sessions, traffic, backpressure, closes and errors."""
    s = Scope(("env",), ("view",))
    by_view = ("view",)
    return build(
        "netauto-liveview-health",
        "NetAuto / Live-view health",
        "Websocket live views that stream run output to browsers.",
        [
            env_variable("liveview.messages"),
            variable("view", "View", label_values("liveview.messages", "view"), multi=True),
        ],
        [
            Row(
                "Connect",
                (
                    graph(
                        "Handshake latency p50 / p95 / p99",
                        "Time from the upgrade request to the 101 response.",
                        "s",
                        quantiles(s, "liveview.handshake"),
                    ),
                    graph(
                        "Mount latency p50 / p95 / p99",
                        "Time from connect to the first message sent: what a user waits for the first output. "
                        "Alert NetautoLiveviewMountSlow fires when p95 > 0.5 s for 10 minutes.",
                        "s",
                        quantiles(s, "liveview.mount"),
                    ),
                    graph(
                        "Mount latency p95 by view",
                        "95th percentile of mount time per live-view route template.",
                        "s",
                        [Q(s.quantile(0.95, "liveview.mount", by_view), "{{view}}")],
                    ),
                    heat(
                        "Mount latency distribution",
                        "Mounts per second in each latency bucket (1 ms to 5 s).",
                        "s",
                        Q(s.buckets("liveview.mount")),
                    ),
                ),
            ),
            Row(
                "Sessions and traffic",
                (
                    single(
                        "Connected sessions",
                        "Open live-view sessions now: each process reports its own count (tagged "
                        "process, expired 2 min after the process stops reporting), summed here.",
                        "short",
                        Q(s.current("liveview.sessions")),
                    ),
                    graph(
                        "Connected sessions by view",
                        "Open sessions per live-view route, summed over processes.",
                        "short",
                        [Q(s.current("liveview.sessions", by_view), "{{view}}")],
                        width=18,
                        height=4,
                    ),
                    graph(
                        "Messages per second",
                        "Websocket messages sent to and received from browsers.",
                        "cps",
                        [Q(s.rate("liveview.messages", ("direction",)), "{{direction}}")],
                    ),
                    graph(
                        "Messages per second by view",
                        "Websocket messages, both directions, per live-view route.",
                        "cps",
                        [Q(s.rate("liveview.messages", by_view), "{{view}}")],
                    ),
                ),
            ),
            Row(
                "Backpressure",
                (
                    graph(
                        "Send waits p50 / p95 / p99",
                        "How long sends that waited (>= 1 ms) took to drain: rising values mean slow browsers "
                        "or a saturated network. Sends that never wait are not observed; empty is healthy.",
                        "s",
                        quantiles(s, "liveview.send_latency"),
                    ),
                    graph(
                        "Transport backlog p50 / p95 / p99",
                        "Outbound bytes still buffered in the transport, sampled at most every 0.25 s per session.",
                        "bytes",
                        quantiles(s, "liveview.backlog"),
                    ),
                ),
            ),
            Row(
                "Closes and errors",
                (
                    graph(
                        "Closes by code class",
                        "Sessions closed per second, by websocket close code class: 'abnormal' and 'error' "
                        "are the ones to explain.",
                        "cps",
                        [Q(s.rate("liveview.close", ("code_class",)), "{{code_class}}")],
                    ),
                    graph(
                        "Streaming errors by kind",
                        "Errors while streaming to a live view, per second, by exception class (capped).",
                        "cps",
                        [Q(s.rate("liveview.error", ("kind",)), "{{kind}}")],
                    ),
                ),
            ),
        ],
    )
