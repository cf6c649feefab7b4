"""Traffic whose every panel value is known in advance, and a model of what Prometheus must answer.

One *round* is the same burst of application activity, sent once per scrape
interval (1 s), so a ``rate()`` over a window inside the traffic is "per round,
per second". Ratios, means, gauges and quantiles do not depend on timing at all
and are compared exactly; quantiles are computed here from the known
observations and the catalog's buckets, the way ``histogram_quantile`` does.

Numbers are chosen so that a wrong formula gives a different answer: error
ratios differ per site and per status (a ratio that ignores timeouts changes),
active runs are non-zero (stopped - started would clamp to 0), every duration
lands in a bucket far from where the same number in milliseconds would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netauto_statsd import catalog
from netauto_statsd.emitter import Emitter
from netauto_statsd.tags import normalise_value

ENV = "known"
A, B = ("par1", "ssh"), ("lon1", "netconf")  # (site, protocol) of the two run contexts
V1, V2 = "/runs/{run_id}/live", "/devices/{device_id}/console"

STOPS = {A: {"ok": 5, "error": 3, "timeout": 1, "cancelled": 1}, B: {"ok": 18, "error": 1, "cancelled": 1}}
#: runs started in round 1 that never stop: the "active runs" panels
ACTIVE = {A: 3, B: 2}
RUN_ERRORS = {A: {"AuthenticationFailed": 3}, B: {"ConnectionResetError": 1}}
DURATION_BY_STATUS = {"ok": 2.0, "error": 0.4, "timeout": 45.0, "cancelled": 7.0}  # seconds
PROCESSED_BYTES = {A: 4096.0, B: 300_000.0}  # per finished run
CREATED = {A: 4, B: 2}
OUTPUT_BYTES = {A: 2048.0, B: 65536.0}  # per created run
CHUNKS = {A: 20, B: 5}
CHUNK_SIZE = {A: 512, B: 4096}
DEVICES = {"edge-001": 3, "edge-002": 2, "edge-003": 1}

HANDSHAKE = {V1: [0.004, 0.004], V2: [0.02]}
MOUNT = {V1: [0.05], V2: [0.8]}
SEND_WAIT = {V1: [0.002]}
BACKLOG = {V1: [1024.0], V2: [70_000.0]}
#: sessions open: V1 gets +5 then -1, V2 +1
SESSIONS = {V1: 4, V2: 1}
MESSAGES = {(V1, "sent"): 30, (V1, "received"): 3, (V2, "sent"): 10, (V2, "received"): 1}
CLOSES = {(V1, "normal"): 2, (V2, "abnormal"): 1}
LIVEVIEW_ERRORS = {(V1, "ConnectionResetError"): 1}

RUNS, DEVICE = "/api/runs", "/api/devices/{device_id}"
REQUESTS = {
    ("GET", RUNS, "2xx"): 8,
    ("GET", RUNS, "4xx"): 1,
    ("GET", RUNS, "5xx"): 1,
    ("POST", RUNS, "2xx"): 4,
    ("POST", RUNS, "5xx"): 1,
    ("GET", DEVICE, "2xx"): 3,
}
HTTP_DURATION = {("GET", RUNS): 0.03, ("POST", RUNS): 0.2, ("GET", DEVICE): 0.004}
HTTP_EXCEPTIONS = {("POST", RUNS, "ValueError"): 1}

#: queue -> func, enqueued, started, {status: (count, duration)}, wait
JOBS = {
    "default": ("execute_run", 3, 3, {"succeeded": (2, 12.0), "failed": (1, 100.0)}, 1.5),
    "high": ("collect_inventory", 2, 2, {"succeeded": (2, 3.0)}, 90.0),
    "low": ("purge", 1, 0, {}, None),  # enqueued, never started: NetautoRQJobsNotStarted
}
JOB_FAILURES = {("default", "NetmikoTimeoutException"): 1}
QUEUE_JOBS = {("default", "queued"): 7, ("default", "started"): 3, ("high", "queued"): 150, ("high", "started"): 2}
WORKERS = {("default", "busy"): 3, ("default", "idle"): 1, ("high", "busy"): 2}

POOL = "default"
QUERIES = {("select", "runs"): 10, ("insert", "chunks"): 5}
QUERY_DURATION = {"select": 0.002, "insert": 0.02}
DB_ERRORS = {("insert", "IntegrityError"): 1}
CONNECTIONS = {"checked_out": 3, "overflow": 0, "size": 5}
CHECKOUT_WAIT = [0.0004, 0.0004]
INVALIDATED = 1
#: undeclared metrics sent by a non-strict emitter per round: client.rejected{reason="unknown_metric"}
REJECTED = 1


def send_round(strict: Emitter, lax: Emitter, first: bool) -> None:
    """One round of the known traffic (``first``: the round that opens runs and sessions)."""
    for ctx in (A, B):
        run = {"site": ctx[0], "protocol": ctx[1]}
        for _ in range(sum(STOPS[ctx].values()) + (ACTIVE[ctx] if first else 0)):
            strict.increment("runner.start", tags=run)
        for status, count in STOPS[ctx].items():
            for _ in range(count):
                strict.increment("runner.stop", tags={**run, "status": status})
                strict.histogram("runner.duration", DURATION_BY_STATUS[status], tags={**run, "status": status})
                strict.histogram("runner.bytes", PROCESSED_BYTES[ctx], tags={**run, "status": status})
        for error, count in RUN_ERRORS[ctx].items():
            strict.increment("runner.error", count, tags={**run, "error": error})
        for _ in range(CREATED[ctx]):
            strict.increment("run.created", tags=run)
            strict.histogram("run.output_bytes", OUTPUT_BYTES[ctx], tags=run)
        strict.increment("chunk.appended", CHUNKS[ctx], tags=run)
        strict.increment("chunk.bytes", CHUNKS[ctx] * CHUNK_SIZE[ctx], tags=run)
    for device, count in DEVICES.items():
        strict.increment("run.device", count, tags={"device": device})

    for metric, table in (
        ("liveview.handshake", HANDSHAKE),
        ("liveview.mount", MOUNT),
        ("liveview.send_latency", SEND_WAIT),
        ("liveview.backlog", BACKLOG),
    ):
        for view, values in table.items():
            for value in values:
                strict.histogram(metric, value, tags={"view": view})
    if first:
        strict.gauge_add("liveview.sessions", SESSIONS[V1] + 1, tags={"view": V1})
        strict.gauge_add("liveview.sessions", -1, tags={"view": V1})
        strict.gauge_add("liveview.sessions", SESSIONS[V2], tags={"view": V2})
    for (view, direction), count in MESSAGES.items():
        strict.increment("liveview.messages", count, tags={"view": view, "direction": direction})
    for (view, code_class), count in CLOSES.items():
        strict.increment("liveview.close", count, tags={"view": view, "code_class": code_class})
    for (view, kind), count in LIVEVIEW_ERRORS.items():
        strict.increment("liveview.error", count, tags={"view": view, "kind": kind})

    for (method, route, status_class), count in REQUESTS.items():
        tags = {"method": method, "route": route, "status_class": status_class}
        for _ in range(count):
            strict.increment("http.request", tags=tags)
            strict.histogram("http.duration", HTTP_DURATION[method, route], tags=tags)
    for (method, route, exception), count in HTTP_EXCEPTIONS.items():
        strict.increment("http.exception", count, tags={"method": method, "route": route, "exception": exception})

    for queue, (func, enqueued, started, finished, wait) in JOBS.items():
        job = {"queue": queue, "func": func}
        strict.increment("rq.job.enqueued", enqueued, tags=job)
        if started:
            strict.increment("rq.job.started", started, tags=job)
            for _ in range(started):
                strict.histogram("rq.job.wait", wait, tags=job)  # type: ignore[arg-type]
        for status, (count, duration) in finished.items():
            strict.increment("rq.job.finished", count, tags={**job, "status": status})
            for _ in range(count):
                strict.histogram("rq.job.duration", duration, tags={**job, "status": status})
    for (queue, exception), count in JOB_FAILURES.items():
        func = JOBS[queue][0]
        strict.increment("rq.job.failure", count, tags={"queue": queue, "func": func, "exception": exception})
    for (queue, state), jobs in QUEUE_JOBS.items():
        strict.gauge("rq.queue.jobs", jobs, tags={"queue": queue, "state": state})
    for (queue, state), workers in WORKERS.items():
        strict.gauge("rq.workers", workers, tags={"queue": queue, "state": state})

    for (operation, table), count in QUERIES.items():
        query = {"pool": POOL, "operation": operation, "table": table}
        strict.increment("db.query", count, tags=query)
        for _ in range(count):
            strict.histogram("db.query.duration", QUERY_DURATION[operation], tags=query)
    for (operation, exception), count in DB_ERRORS.items():
        strict.increment("db.error", count, tags={"pool": POOL, "operation": operation, "exception": exception})
    for state, connections in CONNECTIONS.items():
        strict.gauge("db.pool.connections", connections, tags={"pool": POOL, "state": state})
    for value in CHECKOUT_WAIT:
        strict.histogram("db.pool.checkout_wait", value, tags={"pool": POOL})
    strict.increment("db.pool.invalidated", INVALIDATED, tags={"pool": POOL})

    for _ in range(REJECTED):
        lax.increment("runner.restart")  # not in the catalog: refused and counted by the client


# ---------------------------------------------------------------------- the model
Labels = frozenset[tuple[str, str]]


def key(**labels: str) -> Labels:
    """A result's label set, values as the client normalises them (``{run_id}`` -> ``_run_id_``)."""
    return frozenset((name, normalise_value(value)) for name, value in labels.items())


def buckets(metric_name: str) -> tuple[float, ...]:
    """The catalog's bucket bounds of a histogram (what the repo mapping gives the exporter)."""
    metric = next(m for m in catalog.METRICS if m.name == metric_name)
    return (*metric.buckets, math.inf)


def cumulative(metric_name: str, observations: Iterable[tuple[float, float]]) -> dict[float, float]:
    """Bucket bound -> number of observations <= bound, from ``(value, count)`` pairs."""
    pairs = list(observations)
    return {bound: sum(n for v, n in pairs if v <= bound) for bound in buckets(metric_name)}


def quantile(q: float, metric_name: str, observations: Iterable[tuple[float, float]]) -> float:
    """What ``histogram_quantile(q, ...)`` returns for these observations in this metric's buckets."""
    counts = sorted(cumulative(metric_name, observations).items())
    rank = q * counts[-1][1]
    lower, below = 0.0, 0.0
    for index, (bound, count) in enumerate(counts):
        if count >= rank:
            if math.isinf(bound):
                return counts[index - 1][0]
            if index == 0 and bound <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    raise AssertionError("unreachable: the +Inf bucket holds every observation")


@dataclass(frozen=True)
class Expect:
    """What one query must return.

    ``kind``: ``exact`` (gauges, ratios, means, quantiles: relative 1e-6),
    ``per_second`` (``rate()``: per-round counts over the 1 s round, within
    ``RATE_TOLERANCE``), ``increase`` (over the whole traffic: between all rounds
    but the first - Prometheus' ``increase`` cannot see a new series' first value -
    and all rounds, plus extrapolation), ``positive`` (only the label sets, values > 0).
    """

    kind: str
    values: Mapping[Labels, float]


#: rate() over a window inside steady traffic is per-round / 1 s, give or take scrape jitter
RATE_TOLERANCE = 0.15


def exact(values: Mapping[Labels, float]) -> Expect:
    return Expect("exact", values)


def per_second(values: Mapping[Labels, float]) -> Expect:
    return Expect("per_second", values)


def increase(values: Mapping[Labels, float]) -> Expect:
    return Expect("increase", values)


def positive(*keys: Labels) -> Expect:
    return Expect("positive", dict.fromkeys(keys, 1.0))


def compare(expect: Expect, got: Mapping[Labels, float], rounds: int) -> list[str]:
    """Differences between ``got`` and ``expect`` (empty: the panel shows the right number)."""
    if set(got) != set(expect.values):
        return [f"label sets {sorted(map(sorted, got))} != expected {sorted(map(sorted, expect.values))}"]
    problems = []
    for labels, want in expect.values.items():
        value = got[labels]
        where = dict(sorted(labels))
        if expect.kind == "exact":
            ok = math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-12)
        elif expect.kind == "per_second":
            ok = math.isclose(value, want, rel_tol=RATE_TOLERANCE)
        elif expect.kind == "increase":
            ok = want * (rounds - 1) / rounds * (1 - RATE_TOLERANCE) <= value <= want * (1 + RATE_TOLERANCE)
        else:
            ok = value > 0
        if not ok:
            problems.append(f"{where}: got {value:g}, expected {expect.kind} {want:g}")
    return problems
