"""Issue 18.1: every panel and every alert expression shows the RIGHT number, not just some number.

Known traffic (tests/tooling/grafana/known_traffic.py) goes through the real
Emitter -> statsd_exporter -> Prometheus, one round per scrape. Then every target
of every committed dashboard is interpolated the way Grafana does (env = the
traffic's, every other variable All, $__rate_interval = 4 x the 1 s scrape) and
evaluated as an instant query at the end of the traffic - the value the panel
shows now - and every alert rule's expression likewise. Each is compared with
the value stated below, from the traffic alone. A panel with no stated value
fails the test: state its meaning in its description and its value here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from netauto_statsd.tooling.dashboards import DEFAULT_DIR, flat_panels, load_dashboards
from tests.support import ROOT, Exporter
from tests.tooling.grafana import grafana_support as grafana
from tests.tooling.grafana import known_traffic as k
from tests.tooling.grafana.known_traffic import V2, A, Expect, exact, increase, per_second, positive
from tests.tooling.grafana.known_traffic import key as g
from tests.tooling.grafana.known_traffic import quantile as hq
from tests.tooling.grafana.prometheus_support import Prometheus

pytestmark = [pytest.mark.exporter, pytest.mark.prometheus, pytest.mark.slow]

DASHBOARDS = load_dashboards(ROOT / DEFAULT_DIR)
RULE_FILES = sorted((ROOT / "bridge" / "rules").glob("*.yml"))
#: at least this many rounds; more while the last scrapes are not one round apart each
MIN_ROUNDS, MAX_ROUNDS = 8, 30
#: $__rate_interval for a 1 s scrape and 1 s $__interval: max(1 + 1, 4 x 1)
RATE_INTERVAL_S = 4
Q = (0.5, 0.95, 0.99)


@dataclass
class KnownStack:
    exporter: Exporter
    prometheus: Prometheus
    started: float
    at: float  # evaluation time: the scrape after the last round
    samples_per_round: int
    rounds: int


@pytest.fixture(scope="module")
def known(
    exporter_binary: str, prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KnownStack]:
    """The known traffic, one round per scrape, in a fresh exporter + Prometheus."""
    tmp = tmp_path_factory.mktemp("known-values")
    exporter = Exporter(exporter_binary, tmp)
    try:
        prometheus = Prometheus(prometheus_binary, tmp, {"statsd-exporter": [exporter.url.removeprefix("http://")]})
        try:
            yield _drive(exporter, prometheus)
        finally:
            prometheus.stop()
    finally:
        exporter.stop()


def _drive(exporter: Exporter, prometheus: Prometheus) -> KnownStack:
    strict = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, strict=True, env=k.ENV, flush_interval=60))
    lax = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, strict=False, env=k.ENV, flush_interval=60))
    created_per_round = sum(k.CREATED.values())
    samples = done = 0
    try:
        prometheus.wait_for_scrapes("statsd-exporter")
        started = time.time()
        while done < MIN_ROUNDS or not _steady(prometheus, created_per_round):
            assert done < MAX_ROUNDS, "the machine never managed one round per scrape for the rate window"
            done += 1
            k.send_round(strict, lax, first=done == 1)
            samples = strict.flush() + lax.flush()
            # the whole round is in the exporter before the scrape that must see it
            exporter.wait_value("netauto_runs_created_total", created_per_round * done, env=k.ENV)
            exporter.wait_value("netauto_client_rejected_total", k.REJECTED * done, env=k.ENV)
            prometheus.wait_for_scrapes("statsd-exporter")
    finally:
        strict.close()
        lax.close()
    return KnownStack(exporter, prometheus, started, time.time(), samples, done)


def _steady(prometheus: Prometheus, per_round: int) -> bool:
    """True when the scrapes covering the rate window (and one more) are exactly one round apart each.

    Rounds are paced by scrapes; on a slow machine a round can miss its scrape, and
    then ``rate()`` over that window is not "one round per second". Rather than
    widen the tolerance, the traffic goes on until the window is clean.
    """
    window = f'netauto_runs_created_total{{env="{k.ENV}"}}[{RATE_INTERVAL_S + 2}s]'  # raw samples, one per scrape
    series = prometheus.api("query", {"query": window})["result"]
    if not series:
        return False
    points = [[float(v) for _, v in s["values"]] for s in series]
    totals = [sum(column) for column in zip(*points, strict=False)]
    steps = [b - a for a, b in itertools.pairwise(totals)]
    return len(steps) >= RATE_INTERVAL_S + 1 and all(step == per_round for step in steps[-(RATE_INTERVAL_S + 1) :])


def _labels(metric: dict[str, str]) -> k.Labels:
    """Result labels as a key; ``le`` as a number (Prometheus 3 writes ``1.0`` where 2.x kept ``1``)."""
    return frozenset((name, str(float(v)) if name == "le" else v) for name, v in metric.items() if name != "__name__")


def _le(**labels: str | float) -> k.Labels:
    return frozenset((n, str(float(v)) if n == "le" else str(v)) for n, v in labels.items())


def _heatmap(metric_name: str, observations: list[tuple[float, float]]) -> Expect:
    return per_second({_le(le=bound): n for bound, n in k.cumulative(metric_name, observations).items()})


def _quantiles(title_values: dict[str, list[tuple[float, float]]], metric: str) -> dict[str, Expect]:
    """p50/p95/p99 panels (refId A, B, C) over all the observations, no grouping."""
    observations = [o for values in title_values.values() for o in values]
    return {ref: exact({g(): hq(q, metric, observations)}) for ref, q in zip("ABC", Q, strict=True)}


def _runner_expectations(rounds: int, samples: int) -> dict[tuple[str, str], Expect]:
    stops = {ctx: sum(s.values()) for ctx, s in k.STOPS.items()}
    failed = {ctx: s.get("error", 0) + s.get("timeout", 0) for ctx, s in k.STOPS.items()}
    duration = {ctx: [(k.DURATION_BY_STATUS[status], n) for status, n in s.items()] for ctx, s in k.STOPS.items()}
    all_durations = [o for obs in duration.values() for o in obs]
    processed = {ctx: [(k.PROCESSED_BYTES[ctx], stops[ctx])] for ctx in k.STOPS}
    by_status: dict[str, float] = {}
    for s in k.STOPS.values():
        for status, n in s.items():
            by_status[status] = by_status.get(status, 0) + n
    errors: dict[str, float] = {}
    for e in k.RUN_ERRORS.values():
        for name, n in e.items():
            errors[name] = errors.get(name, 0) + n
    starts = sum(stops.values())
    out = {
        ("Active runs", "A"): exact({g(): sum(k.ACTIVE.values())}),
        ("Runs started in range", "A"): increase({g(): starts * rounds + sum(k.ACTIVE.values())}),
        ("Failed runs in range", "A"): exact({g(): sum(failed.values()) / starts}),
        ("p95 run duration in range", "A"): exact({g(): hq(0.95, "runner.duration", all_durations)}),
        ("Starts, stops and errors per second", "A"): per_second({g(): starts}),
        ("Starts, stops and errors per second", "B"): per_second({g(status=s): n for s, n in by_status.items()}),
        ("Starts, stops and errors per second", "C"): per_second({g(): sum(errors.values())}),
        ("Failed run ratio by site", "A"): exact({g(site=ctx[0]): failed[ctx] / stops[ctx] for ctx in k.STOPS}),
        ("Active runs by site", "A"): exact({g(site=ctx[0]): n for ctx, n in k.ACTIVE.items()}),
        ("Exceptions by class", "A"): per_second({g(error=e): n for e, n in errors.items()}),
        ("Run duration distribution", "A"): _heatmap("runner.duration", all_durations),
        ("p95 run duration by site and protocol", "A"): exact(
            {g(site=ctx[0], protocol=ctx[1]): hq(0.95, "runner.duration", obs) for ctx, obs in duration.items()}
        ),
        ("Mean run duration by status", "A"): exact({g(status=s): k.DURATION_BY_STATUS[s] for s in by_status}),
        ("Bytes processed per second by site", "A"): per_second(
            {g(site=ctx[0]): k.PROCESSED_BYTES[ctx] * stops[ctx] for ctx in k.STOPS}
        ),
        ("Exporters up", "A"): exact({g(): 1}),
        ("Client: samples sent altered", "A"): exact({g(): 0}),
        # the known traffic never sends an unexpected value, a burst to sample, a disabled
        # group or to a dead port: those queries have no series at all
        ("Client: samples sent altered", "B"): exact({}),
        ("Client: samples sent altered", "C"): exact({}),
        ("Client: samples lost", "A"): per_second({g(reason="unknown_metric"): k.REJECTED}),
        ("Client: samples lost", "B"): exact({}),
        ("Client: samples lost", "C"): exact({}),
        ("Exporter: samples received and events by action", "A"): per_second({g(): samples}),
        ("Exporter: samples received and events by action", "B"): per_second({g(action="map"): samples}),
        **{("Exporter: losses", ref): exact({g(): 0}) for ref in "ABCDE"},
    }
    for ref, q in zip("ABC", Q, strict=True):
        out["Run duration p50 / p95 / p99", ref] = exact({g(): hq(q, "runner.duration", all_durations)})
        out["Output per run p50 / p95 / p99", ref] = exact(
            {g(): hq(q, "runner.bytes", [o for obs in processed.values() for o in obs])}
        )
    return out


def _throughput_expectations(rounds: int) -> dict[tuple[str, str], Expect]:
    outputs = [(k.OUTPUT_BYTES[ctx], n) for ctx, n in k.CREATED.items()]
    out = {
        ("Runs created per second by site and protocol", "A"): per_second(
            {g(site=c[0], protocol=c[1]): n for c, n in k.CREATED.items()}
        ),
        ("Top 10 devices by runs in range", "A"): increase({g(device=d): n * rounds for d, n in k.DEVICES.items()}),
        ("Chunks appended per second by site", "A"): per_second({g(site=c[0]): n for c, n in k.CHUNKS.items()}),
        ("Output bandwidth by site", "A"): per_second({g(site=c[0]): n * k.CHUNK_SIZE[c] for c, n in k.CHUNKS.items()}),
        ("Mean chunk size by protocol", "A"): exact({g(protocol=c[1]): k.CHUNK_SIZE[c] for c in k.CHUNKS}),
        ("Mean output bytes per run by protocol", "A"): exact({g(protocol=c[1]): k.OUTPUT_BYTES[c] for c in k.CREATED}),
    }
    for ref, q in zip("ABC", Q, strict=True):
        out["Output bytes per run p50 / p95 / p99", ref] = exact({g(): hq(q, "run.output_bytes", outputs)})
    return out


def _jobs_expectations() -> dict[tuple[str, str], Expect]:
    waits = [(wait, started) for _f, _e, started, _fin, wait in k.JOBS.values() if started]
    finished: dict[str, float] = {}
    durations: dict[str, list[tuple[float, float]]] = {}
    for func, _e, _s, fin, _w in k.JOBS.values():
        for status, (n, seconds) in fin.items():
            finished[status] = finished.get(status, 0) + n
            durations.setdefault(func, []).append((seconds, n))
    query_obs = {op: [(k.QUERY_DURATION[op], n)] for (op, _t), n in k.QUERIES.items()}
    http_obs = {
        route: [(k.HTTP_DURATION[m, r], n) for (m, r, _c), n in k.REQUESTS.items() if r == route]
        for route in (k.RUNS, k.DEVICE)
    }
    all_http = [o for obs in http_obs.values() for o in obs]
    by_route = {route: sum(n for (_m, r, _c), n in k.REQUESTS.items() if r == route) for route in http_obs}
    by_class: dict[str, float] = {}
    for (_m, _r, c), n in k.REQUESTS.items():
        by_class[c] = by_class.get(c, 0) + n
    server_errors = {
        route: sum(n for (_m, r, c), n in k.REQUESTS.items() if r == route and c == "5xx") for route in http_obs
    }
    checkout = [(v, 1) for v in k.CHECKOUT_WAIT]
    out = {
        ("Queue depth", "A"): exact({g(queue=q, state=s): n for (q, s), n in k.QUEUE_JOBS.items()}),
        ("Workers by state", "A"): exact({g(queue=q, state=s): n for (q, s), n in k.WORKERS.items()}),
        ("Enqueued, started and finished per second", "A"): per_second({g(queue=q): j[1] for q, j in k.JOBS.items()}),
        ("Enqueued, started and finished per second", "B"): per_second(
            {g(queue=q): j[2] for q, j in k.JOBS.items() if j[2]}
        ),
        ("Enqueued, started and finished per second", "C"): per_second({g(status=s): n for s, n in finished.items()}),
        ("Job failures by exception", "A"): per_second({g(exception=e): n for (_q, e), n in k.JOB_FAILURES.items()}),
        ("Job duration p95 by function", "A"): exact(
            {g(func=f): hq(0.95, "rq.job.duration", obs) for f, obs in durations.items()}
        ),
        ("Queries per second by operation", "A"): per_second({g(operation=op): n for (op, _t), n in k.QUERIES.items()}),
        ("Query latency p95 by operation", "A"): exact(
            {g(operation=op): hq(0.95, "db.query.duration", obs) for op, obs in query_obs.items()}
        ),
        ("Query errors by exception", "A"): per_second({g(exception=e): n for (_o, e), n in k.DB_ERRORS.items()}),
        ("Pool connections", "A"): exact({g(pool=k.POOL, state=s): n for s, n in k.CONNECTIONS.items()}),
        ("Connections invalidated per second", "A"): per_second({g(pool=k.POOL): k.INVALIDATED}),
        ("Requests per second by route", "A"): per_second({g(route=r): n for r, n in by_route.items()}),
        ("Requests per second by status class", "A"): per_second({g(status_class=c): n for c, n in by_class.items()}),
        ("5xx ratio by route", "A"): exact({g(route=r): server_errors[r] / by_route[r] for r in by_route}),
        ("Latency p95 by route", "A"): exact(
            {g(route=r): hq(0.95, "http.duration", obs) for r, obs in http_obs.items()}
        ),
        ("Handler exceptions by class", "A"): per_second(
            {g(exception=e): n for (_m, _r, e), n in k.HTTP_EXCEPTIONS.items()}
        ),
    }
    for ref, q in zip("ABC", Q, strict=True):
        out["Queue wait p50 / p95 / p99", ref] = exact({g(): hq(q, "rq.job.wait", waits)})  # type: ignore[arg-type]
        out["Pool checkout wait p50 / p95 / p99", ref] = exact({g(): hq(q, "db.pool.checkout_wait", checkout)})
        out["Latency p50 / p95 / p99", ref] = exact({g(): hq(q, "http.duration", all_http)})
    return out


def _liveview_expectations() -> dict[tuple[str, str], Expect]:
    def obs(table: dict[str, list[float]]) -> dict[str, list[tuple[float, float]]]:
        return {view: [(v, 1) for v in values] for view, values in table.items()}

    mount = obs(k.MOUNT)
    by_direction: dict[str, float] = {}
    by_view: dict[str, float] = {}
    for (view, direction), n in k.MESSAGES.items():
        by_direction[direction] = by_direction.get(direction, 0) + n
        by_view[view] = by_view.get(view, 0) + n
    out: dict[tuple[str, str], Expect] = {
        ("Mount latency p95 by view", "A"): exact({g(view=v): hq(0.95, "liveview.mount", o) for v, o in mount.items()}),
        ("Mount latency distribution", "A"): _heatmap("liveview.mount", [o for x in mount.values() for o in x]),
        ("Connected sessions", "A"): exact({g(): sum(k.SESSIONS.values())}),
        ("Connected sessions by view", "A"): exact({g(view=v): n for v, n in k.SESSIONS.items()}),
        ("Messages per second", "A"): per_second({g(direction=d): n for d, n in by_direction.items()}),
        ("Messages per second by view", "A"): per_second({g(view=v): n for v, n in by_view.items()}),
        ("Closes by code class", "A"): per_second({g(code_class=c): n for (_v, c), n in k.CLOSES.items()}),
        ("Streaming errors by kind", "A"): per_second({g(kind=kind): n for (_v, kind), n in k.LIVEVIEW_ERRORS.items()}),
    }
    for title, table, metric in (
        ("Handshake latency p50 / p95 / p99", k.HANDSHAKE, "liveview.handshake"),
        ("Mount latency p50 / p95 / p99", k.MOUNT, "liveview.mount"),
        ("Send waits p50 / p95 / p99", k.SEND_WAIT, "liveview.send_latency"),
        ("Transport backlog p50 / p95 / p99", k.BACKLOG, "liveview.backlog"),
    ):
        for ref, expect in _quantiles(obs(table), metric).items():
            out[title, ref] = expect
    return out


def panel_expectations(rounds: int, samples: int) -> dict[tuple[str, str, str], Expect]:
    """(dashboard file, panel title, refId) -> the value the panel must show."""
    per_file = {
        "runner_overview.json": _runner_expectations(rounds, samples),
        "command_throughput.json": _throughput_expectations(rounds),
        "jobs_db_http.json": _jobs_expectations(),
        "liveview_health.json": _liveview_expectations(),
    }
    return {(f, title, ref): e for f, table in per_file.items() for (title, ref), e in table.items()}


def alert_expectations() -> dict[str, Expect]:
    """Alert name -> what its expression returns on the known traffic (empty: the alert stays quiet)."""
    env = k.ENV
    runs_a = k.STOPS[A]
    wait_high = [(k.JOBS["high"][4], k.JOBS["high"][2])]
    return {
        # par1: (3 error + 1 timeout) / 10 = 0.4 > 0.10; lon1: 1 / 20 = 0.05 stays quiet
        "NetautoRunnerErrorRatioHigh": exact(
            {g(env=env, site=A[0]): (runs_a["error"] + runs_a["timeout"]) / sum(runs_a.values())}
        ),
        "NetautoLiveviewMountSlow": exact(
            {g(env=env, view=V2): hq(0.95, "liveview.mount", [(v, 1) for v in k.MOUNT[V2]])}
        ),
        "NetautoRQBacklogHigh": exact({g(env=env, queue="high"): k.QUEUE_JOBS["high", "queued"]}),
        "NetautoRQJobWaitHigh": exact({g(env=env, queue="high"): hq(0.95, "rq.job.wait", wait_high)}),
        "NetautoRQJobsNotStarted": positive(g(env=env, queue="low")),
        "NetautoClientCardinalityOverflow": exact({}),
        "NetautoClientRejected": positive(g(env=env, reason="unknown_metric")),
        "StatsdExporterDown": exact({}),
        # the known traffic runs against one exporter that never restarts
        "StatsdExporterRestarted": exact({}),
        "StatsdExporterCrashLooping": exact({}),
        # nothing is refused or dropped in the known traffic
        "NetautoClientSendFailures": exact({}),
        "NetautoClientLosingSamples": exact({}),
        "StatsdExporterPacketDrops": exact({}),
        "StatsdExporterDroppingEvents": exact({}),
        "StatsdExporterSampleErrors": exact({}),
    }


def _variables(dashboard: dict[str, Any], range_s: float) -> dict[str, str]:
    values = grafana.builtins(range_s, 1)
    values["__rate_interval"] = f"{RATE_INTERVAL_S}s"
    for var in dashboard["templating"]["list"]:
        values[var["name"]] = k.ENV if var["name"] == "env" else var.get("allValue") or ".*"
    return values


def _query(known: KnownStack, expr: str) -> dict[k.Labels, float]:
    return {_labels(r["metric"]): float(r["value"][1]) for r in known.prometheus.query(expr, at=known.at)}


def test_the_traffic_reached_prometheus(known: KnownStack) -> None:
    """The premise: every round is in the exporter and Prometheus holds its final values."""
    known.prometheus.wait_until_ingested(known.exporter)
    assert known.exporter.value("netauto_runner_starts_total", env=k.ENV) == known.rounds * sum(
        sum(s.values()) for s in k.STOPS.values()
    ) + sum(k.ACTIVE.values())


def test_every_panel_shows_the_known_value(known: KnownStack) -> None:
    expected = panel_expectations(known.rounds, known.samples_per_round)
    problems: list[str] = []
    seen = set()
    for file_name, dashboard in DASHBOARDS.items():
        values = _variables(dashboard, known.at - known.started + 2)
        for panel in flat_panels(dashboard):
            for target in panel.get("targets", []):
                where = (file_name, panel["title"], target["refId"])
                seen.add(where)
                if where not in expected:
                    problems.append(f"{where}: no expected value stated for this panel query")
                    continue
                expr = grafana.interpolate(target["expr"], values)
                got = _query(known, expr)
                problems += [f"{where}: {p}\n    {expr}" for p in k.compare(expected[where], got, known.rounds)]
    stale = sorted(set(expected) - seen)
    assert not stale, f"expectations for panels that no longer exist: {stale}"
    assert not problems, f"{len(problems)} panel value(s) wrong:\n" + "\n".join(problems)


def test_every_alert_expression_returns_the_known_value(known: KnownStack) -> None:
    expected = alert_expectations()
    problems: list[str] = []
    seen = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                seen.add(name)
                if name not in expected:
                    problems.append(f"{name}: no expected value stated for this rule")
                    continue
                got = _query(known, rule["expr"])
                problems += [f"{name}: {p}" for p in k.compare(expected[name], got, known.rounds)]
    assert seen == set(expected), f"rules changed: {sorted(seen ^ set(expected))}"
    assert not problems, "\n".join(problems)


def _swap(a: str, b: str) -> Callable[[str], str]:
    return lambda expr: expr.replace(a, "\0").replace(b, a).replace("\0", b)


def _replace(old: str, new: str) -> Callable[[str], str]:
    return lambda expr: expr.replace(old, new)


PLANTED = {
    "active-runs-inverted": ("Active runs", _swap("runner_starts_total", "runner_stops_total")),
    "error-ratio-without-timeouts": ("Failed runs in range", _replace('status=~"error|timeout"', 'status=~"error"')),
    "mean-chunk-size-inverted": ("Mean chunk size by protocol", _swap("chunk_bytes_total", "chunks_appended_total")),
    "queue-depth-summed-over-states": ("Queue depth", _replace("max by (queue, state)", "max by (queue)")),
    "run-p95-ms-as-s": (
        "p95 run duration in range",
        _replace("histogram_quantile(0.95", "1000 * histogram_quantile(0.95"),
    ),
}


@pytest.mark.parametrize("planted", PLANTED)
def test_a_planted_formula_bug_is_caught(known: KnownStack, planted: str) -> None:
    """The comparison is not vacuous: a wrong formula in a panel gives a wrong number here."""
    title, mutate = PLANTED[planted]
    expected = panel_expectations(known.rounds, known.samples_per_round)
    file_name, dashboard, target = next(
        (f, d, t) for f, d in DASHBOARDS.items() for p in flat_panels(d) if p["title"] == title for t in p["targets"]
    )
    expr = mutate(target["expr"])
    assert expr != target["expr"], f"{planted}: the mutation does not apply to {target['expr']}"
    got = _query(known, grafana.interpolate(expr, _variables(dashboard, known.at - known.started + 2)))
    assert k.compare(expected[file_name, title, target["refId"]], got, known.rounds), f"planted bug not caught: {expr}"
