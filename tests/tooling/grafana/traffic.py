"""Synthetic traffic: realistic samples of every catalog metric, sent through the real Emitter.

A traffic source is any callable ``(exporter, prometheus) -> TrafficReport``;
the end-to-end test runs with each (``traffic_source`` fixture in
tests/tooling/grafana/conftest.py): this synthetic one, and the demo app itself
(``netauto-statsd demo``), which must light every panel too.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from tests.support import ROOT, Exporter, require_binary
from tests.tooling.grafana.prometheus_support import Prometheus
from tests.udp_relay import DEMO_BACK, DEMO_DOWN, UdpRelay, run_demo_through_outage

SITES = ("par1", "lon1", "ams-2")
PROTOCOLS = ("ssh", "netconf", "telnet")
#: More distinct devices than run.device's cap (100): the rest are folded into 'other'
#: and counted in client.overflow, as in a large fleet.
DEVICES = tuple(f"edge-{i:03d}" for i in range(120))
VIEWS = ("/runs/{run_id}/live", "/devices/{device_id}/console")
ROUTES = (("GET", "/api/runs"), ("POST", "/api/runs"), ("GET", "/api/devices/{device_id}"))
QUEUES = ("default", "high")
FUNCS = ("netauto.jobs.execute_run", "netauto.jobs.collect_inventory")
TABLES = ("runs", "chunks", "devices")
ROUNDS = 6


@dataclass
class TrafficReport:
    """What a traffic source promises the end-to-end test.

    Attributes:
        env: value of the ``env`` label it used (the dashboards' ``$env``).
        pending_alerts: alert names its data must make pending (``for:`` not yet elapsed).

    Every source emits every catalog metric: every panel must return data.
    """

    env: str
    pending_alerts: frozenset[str] = field(default_factory=frozenset)


TrafficSource = Callable[[Exporter, Prometheus], TrafficReport]


def _round(em: Emitter, rng: random.Random) -> None:
    """One burst of application activity across every area of the catalog."""
    for site in SITES:
        for protocol in PROTOCOLS:
            run = {"site": site, "protocol": protocol}
            for _ in range(4):
                status = rng.choices(("ok", "error", "timeout", "cancelled"), (65, 20, 10, 5))[0]
                em.increment("run.created", tags=run)
                em.increment("runner.start", tags=run)
                em.increment("runner.stop", tags={**run, "status": status})
                em.histogram("runner.duration", rng.lognormvariate(1.5, 1.0), tags={**run, "status": status})
                out = rng.lognormvariate(9, 1.5)
                em.histogram("runner.bytes", out, tags={**run, "status": status})
                em.histogram("run.output_bytes", out, tags=run)
                chunks = rng.randint(1, 20)
                em.increment("chunk.appended", chunks, tags=run)
                em.increment("chunk.bytes", int(out), tags=run)
                if status == "error":
                    error = rng.choice(("TimeoutError", "AuthenticationFailed", "ConnectionResetError"))
                    em.increment("runner.error", tags={**run, "error": error})
            # one run stays active per site and protocol
            em.increment("runner.start", tags=run)
    for device in rng.sample(DEVICES, 60):
        em.increment("run.device", tags={"device": device})

    for view in VIEWS:
        v = {"view": view}
        for _ in range(5):
            em.histogram("liveview.handshake", rng.uniform(0.002, 0.05), tags=v)
            em.histogram("liveview.mount", rng.uniform(0.01, 0.4), tags=v)
            em.histogram("liveview.send_latency", rng.expovariate(200), tags=v)
            em.histogram("liveview.backlog", rng.choice((0.0, 512.0, 4096.0, 70000.0)), tags=v)
        em.gauge_add("liveview.sessions", 3, tags=v)
        em.gauge_add("liveview.sessions", -1, tags=v)
        em.increment("liveview.messages", rng.randint(20, 80), tags={**v, "direction": "sent"})
        em.increment("liveview.messages", rng.randint(1, 5), tags={**v, "direction": "received"})
        em.increment("liveview.close", tags={**v, "code_class": rng.choice(("normal", "going_away", "abnormal"))})
        em.increment("liveview.error", tags={**v, "kind": "ConnectionResetError"})

    for method, route in ROUTES:
        for status_class in ("2xx", "2xx", "2xx", "4xx", "5xx"):
            tags = {"method": method, "route": route, "status_class": status_class}
            em.increment("http.request", tags=tags)
            em.histogram("http.duration", rng.uniform(0.002, 0.3), tags=tags)
        em.increment("http.exception", tags={"method": method, "route": route, "exception": "ValueError"})

    for queue in QUEUES:
        for func in FUNCS:
            job = {"queue": queue, "func": func}
            em.increment("rq.job.enqueued", 3, tags=job)
            em.increment("rq.job.started", 2, tags=job)
            em.histogram("rq.job.wait", rng.uniform(0.05, 20), tags=job)
            for status in ("succeeded", "succeeded", "failed"):
                em.increment("rq.job.finished", tags={**job, "status": status})
                em.histogram("rq.job.duration", rng.uniform(0.1, 120), tags={**job, "status": status})
            em.increment("rq.job.failure", tags={**job, "exception": "NetmikoTimeoutException"})
        for state, jobs in (("queued", rng.randint(0, 30)), ("started", 2), ("failed", 1)):
            em.gauge("rq.queue.jobs", jobs, tags={"queue": queue, "state": state})
        em.gauge("rq.workers", 2, tags={"queue": queue, "state": "busy"})
        em.gauge("rq.workers", 1, tags={"queue": queue, "state": "idle"})

    pool = {"pool": "default"}
    for operation, table in (("select", "runs"), ("select", "devices"), ("insert", "chunks"), ("update", "runs")):
        query = {**pool, "operation": operation, "table": table}
        em.increment("db.query", 10, tags=query)
        for _ in range(3):
            em.histogram("db.query.duration", rng.uniform(0.0002, 0.02), tags=query)
    em.increment("db.error", tags={**pool, "operation": "insert", "exception": "IntegrityError"})
    for state, connections in (("checked_out", 3), ("overflow", 0), ("size", 5)):
        em.gauge("db.pool.connections", connections, tags={**pool, "state": state})
    em.histogram("db.pool.checkout_wait", rng.uniform(0.0001, 0.003), tags=pool)
    em.increment("db.pool.invalidated", tags=pool)


#: More observations of one context in one flush window than the client carries one by one
#: (32,768): the excess travels as a uniform sample with an exact 1/n rate (client.sampled).
BURST = 40_000


def _client_faults(exporter: Exporter, rng: random.Random) -> None:
    """Every way the client can fail to deliver a sample as sent, each counted in a client.* series.

    * a value outside a tag's allowed set (``protocol="SSH"``): sent as ``other``;
    * a histogram burst beyond what one flush carries one by one: sampled, counts exact;
    * a disabled metric group (``NETAUTO_STATSD_DISABLE=db``): dropped whole;
    * an exporter that is down, then comes back: the refused datagrams are counted,
      and the count arrives once it is reachable again.
    """
    settings = Settings(host="127.0.0.1", port=exporter.udp_port, strict=False, env="e2e")
    lax = Emitter(settings)
    muted = Emitter(dataclasses.replace(settings, disabled_groups=("db",)))
    relay = UdpRelay(exporter.udp_port)
    flaky = Emitter(dataclasses.replace(settings, port=relay.port))
    try:
        lax.increment("run.created", tags={"site": "par1", "protocol": "SSH"})
        for _ in range(BURST):
            lax.histogram("liveview.send_latency", rng.expovariate(200), tags={"view": VIEWS[0]})
        lax.flush()
        muted.increment("db.query", tags={"pool": "default", "operation": "select", "table": "runs"})
        muted.flush()
        deadline = time.monotonic() + 10
        while flaky.stats()["packets_failed"] == 0:  # the port is closed: ICMP refuses the datagrams
            assert time.monotonic() < deadline, f"no send failure counted: {flaky.stats()}"
            flaky.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
            flaky.flush()
        relay.open()  # the exporter is back
        flaky.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
        flaky.flush()
    finally:
        for emitter in (lax, muted, flaky):
            emitter.close()
        relay.close()


def synthetic_traffic(exporter: Exporter, prometheus: Prometheus) -> TrafficReport:
    """Send ``ROUNDS`` bursts through a strict Emitter, one per exporter scrape, so ``rate()`` has data.

    A second, non-strict emitter sends one undeclared metric, as a production
    app with a bug would: it is refused and counted in ``client.rejected``.
    """
    settings = Settings(host="127.0.0.1", port=exporter.udp_port, strict=True, env="e2e")
    strict = Emitter(settings)
    lax = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, strict=False, env="e2e"))
    rng = random.Random(7)
    try:
        _client_faults(exporter, rng)
        for _ in range(ROUNDS):
            _round(strict, rng)
            lax.increment("runner.restart")  # not in the catalog: refused, counted
            strict.flush()
            lax.flush()
            prometheus.wait_for_scrapes("statsd-exporter")
    finally:
        strict.close()
        lax.close()
    return TrafficReport(
        env="e2e",
        # 30 % of runs end in error/timeout at every site; 120 devices exceed the cap of 100;
        # the lax emitter's undeclared metric is rejected every round.
        pending_alerts=frozenset(
            {"NetautoRunnerErrorRatioHigh", "NetautoClientCardinalityOverflow", "NetautoClientRejected"}
        ),
    )


DEMO_SECONDS = 30


def demo_traffic(exporter: Exporter, prometheus: Prometheus) -> TrafficReport:
    """Run ``netauto-statsd demo --duration 30`` (app, RQ workers, load generator) against the exporter.

    Production mode, as deployed: the demo's stale plugin is refused and counted
    (tests/examples/demo checks that nothing else is), its other injected faults feed
    the client.* series; the exporter is down when the demo starts and comes back once
    the demo has said so, so the demo's refused datagrams are counted and the count arrives.
    """
    require_binary("redis-server", "apt-get install redis-server")
    env = {**os.environ, "NETAUTO_STATSD_ENV": "demo-e2e"}
    for name in ("REDIS_URL", "DATABASE_URL", "NETAUTO_STATSD_STRICT", "NETAUTO_STATSD_DISABLE"):
        env.pop(name, None)
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo", "--duration", str(DEMO_SECONDS), "--quiet"]
    done = run_demo_through_outage(command, env, exporter.udp_port, ROOT, timeout=DEMO_SECONDS + 90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert DEMO_DOWN in done.stderr and DEMO_BACK in done.stderr, done.stderr[-3000:]
    return TrafficReport(env="demo-e2e", pending_alerts=frozenset({"NetautoClientRejected"}))


#: Traffic sources by name, for NETAUTO_E2E_TRAFFIC.
SOURCES: dict[str, TrafficSource] = {"synthetic": synthetic_traffic, "demo": demo_traffic}
