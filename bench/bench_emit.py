"""Per-call cost of emitting a metric: netauto_statsd beside datadog, prometheus_client, pystatsd and the floor.

Run (from the repo root):

    .venv/bin/python bench/bench_emit.py            # ~1 min; --quick for a smoke run

Every candidate runs its own tight loop of ``--calls`` calls and the time is
divided by the number of calls. Clients that aggregate or buffer (ours, datadog
buffered+aggregated) flush once at the end of each loop *inside* the timed
region, so what they defer (formatting, datagrams) is paid for in wall and CPU
time. The one thing taken out: the pacing sleeps of our UDP sender during that
flush (``UdpSender.slept``, wire/pacing.py) are subtracted from the loop's wall
time. In an app the background flush thread sleeps there, not the caller, and a
sleep costs no CPU; the flush's CPU stays counted. The report says how many
pauses the timed loops took. Rounds interleave every candidate in a
shuffled order (a noisy shared machine hits all of them alike) and the table
reports medians and the inter-quartile range over rounds.

Everything is sent to a real UDP socket on 127.0.0.1 that a separate drainer
process reads as fast as it can (like an exporter would): no closed port, so no
ICMP errors and reconnects distort the send path.

Candidates, all with the same three tags (``site``, ``protocol``, ``status``) and
the same constant tags (``env``, ``service``):

* ours: a bound counter ``inc()`` and histogram ``observe()`` (``STOPS.bind(...)``),
  an unbound metric-object call with three tags (``STOPS.inc(site=..., ...)``), the
  string layer (``Emitter.increment`` / ``histogram``), and the ``runner_lifecycle``
  decorator around a no-op (start, stop, duration, bytes per call); also with the
  plain StatsD transport (``NETAUTO_STATSD_TRANSPORT=statsd``);
* datadog ``DogStatsd`` in its default mode (one datagram per call) and in
  buffered+aggregated mode: ``increment``, ``histogram`` and ``@statsd.timed``;
* prometheus_client: prebound ``Counter(...).labels(...).inc()``, prebound
  ``Histogram(...).labels(...).observe()`` and ``@Histogram(...).labels(...).time()``
  (in-process only: nothing is sent);
* pystatsd: ``StatsClient.incr`` and ``@StatsClient.timer`` (one datagram per call);
* the floor: a pre-formatted line with ``socket.send``, pre-formatted lines sent 25
  per datagram, and an empty call (the baseline for "added CPU per call").

Besides wall time per call, each loop's process CPU time is measured; "added CPU"
is a candidate's CPU per call minus the empty call's, paired by round.

The flush thread is measured on its own: wake-ups per second and share of a core
while the process is idle (from ``/proc/self/task/<tid>/schedstat``), and the time
one ``flush()`` of 10,000 distinct contexts takes (wall, CPU, pacing pauses; one
flush per flush interval, as in an app), into
the drainer (8 MiB receive buffer) and into a second drainer with the kernel's
default receive buffer (208 KiB: what an exporter gets without
``--statsd.read-buffer``).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netauto_statsd.catalog import Tag, counter, runner  # noqa: E402
from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter, set_emitter  # noqa: E402
from netauto_statsd.instrument import runner_lifecycle  # noqa: E402

#: 10,000 distinct contexts for the flush measurement (an app metric declared by the bench).
FLUSH_CONTEXTS = 10_000
BENCH_CONTEXTS = counter(
    "bench.contexts",
    tags=(Tag("key", None, "context number", "k1"),),
    help="Bench only: many distinct contexts.",
    prometheus_name="netauto_bench_contexts_total",
    max_combinations=FLUSH_CONTEXTS,
)

TAGS = {"site": "par1", "protocol": "ssh", "status": "ok"}
DD_TAGS = [f"{k}:{v}" for k, v in TAGS.items()]
CONSTANT = ["env:dev", "service:netauto"]
LINE = b"netauto.runner.stop:1|c|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto"
BATCH = 25

DRAINER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] != "default":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(sys.argv[1]))
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
buf = bytearray(65536)
while True:
    s.recv_into(buf)
"""

#: A loop runs ``n`` calls (and pays for any deferred flush); it returns the seconds our
#: UDP sender slept pacing that flush (``None``: it has no pacing), taken out of its wall time.
Loop = Callable[[int], float | None]


def noop() -> None:
    """What every decorator wraps."""


def ours(port: int, transport: str) -> dict[str, Loop]:
    emitter = Emitter(Settings(host="127.0.0.1", port=port, transport=transport))
    increment, histogram = emitter.increment, emitter.histogram

    def flush() -> float:
        """Flush as the flush thread would; return the seconds the pacing slept in it."""
        before = _slept(emitter)
        emitter.flush()
        return _slept(emitter) - before

    decorated = runner_lifecycle({"site": "par1", "protocol": "ssh"})(noop)
    stops, durations = runner.STOPS, runner.DURATION
    site, protocol, status = TAGS["site"], TAGS["protocol"], TAGS["status"]

    def bound_inc(n: int) -> float:
        set_emitter(emitter)
        inc = stops.bind(**TAGS).inc
        for _ in range(n):
            inc()
        return flush()

    def bound_observe(n: int) -> float:
        set_emitter(emitter)
        observe = durations.bind(**TAGS).observe
        for _ in range(n):
            observe(0.25)
        return flush()

    def unbound(n: int) -> float:
        set_emitter(emitter)
        inc = stops.inc
        for _ in range(n):
            inc(site=site, protocol=protocol, status=status)
        return flush()

    def counter(n: int) -> float:
        for _ in range(n):
            increment("runner.stop", tags=TAGS)
        return flush()

    def observe(n: int) -> float:
        for _ in range(n):
            histogram("runner.duration", 0.25, tags=TAGS)
        return flush()

    def runner_loop(n: int) -> float:
        set_emitter(emitter)
        for _ in range(n):
            decorated()
        return flush()

    return {
        "bound inc()": bound_inc,
        "bound observe()": bound_observe,
        "unbound inc(3 tags)": unbound,
        "counter": counter,
        "histogram": observe,
        "runner": runner_loop,
    }


def _slept(emitter: Emitter) -> float:
    """Seconds our UDP sender (made at the first send; both transports) has slept pacing so far."""
    transport = emitter._transport
    sender = getattr(transport, "_sender", None) or getattr(getattr(transport, "_client", None), "sender", None)
    return float(sender.slept) if sender is not None else 0.0


def _pauses(emitter: Emitter) -> int:
    transport = emitter._transport
    sender = getattr(transport, "_sender", None) or getattr(getattr(transport, "_client", None), "sender", None)
    return int(sender.pauses) if sender is not None else 0


def datadog(port: int, buffered: bool) -> dict[str, Loop]:
    from datadog.dogstatsd.base import DogStatsd

    options = {"disable_buffering": False, "disable_aggregation": False} if buffered else {}
    client = DogStatsd(host="127.0.0.1", port=port, namespace="netauto", constant_tags=CONSTANT, **options)
    increment, histogram = client.increment, client.histogram
    decorated = client.timed("runner.duration", tags=DD_TAGS)(noop)

    def flush() -> None:
        if buffered:
            client.flush_aggregated_metrics()
            client.flush_buffered_metrics()

    def counter(n: int) -> None:
        for _ in range(n):
            increment("runner.stop", tags=DD_TAGS)
        flush()

    def observe(n: int) -> None:
        for _ in range(n):
            histogram("runner.duration", 0.25, tags=DD_TAGS)
        flush()

    def timed(n: int) -> None:
        for _ in range(n):
            decorated()
        flush()

    return {"increment": counter, "histogram": observe, "timed": timed}


def prometheus() -> dict[str, Loop]:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    inc = Counter("runner_stops", "", list(TAGS), registry=registry).labels(*TAGS.values()).inc
    child = Histogram("runner_duration_seconds", "", list(TAGS), registry=registry).labels(*TAGS.values())
    decorated = child.time()(noop)
    observe = child.observe

    def counter(n: int) -> None:
        for _ in range(n):
            inc()

    def histogram(n: int) -> None:
        for _ in range(n):
            observe(0.25)

    def timed(n: int) -> None:
        for _ in range(n):
            decorated()

    return {"inc (prebound)": counter, "observe (prebound)": histogram, "@Histogram.time()": timed}


def pystatsd(port: int) -> dict[str, Loop]:
    from statsd import StatsClient

    client = StatsClient("127.0.0.1", port, prefix="netauto")
    incr = client.incr
    name = "runner.stop.par1.ssh.ok.dev.netauto"
    decorated = client.timer("runner.duration.par1.ssh.ok.dev.netauto")(noop)

    def counter(n: int) -> None:
        for _ in range(n):
            incr(name)

    def timer(n: int) -> None:
        for _ in range(n):
            decorated()

    return {"incr": counter, "@timer": timer}


def floor(port: int) -> dict[str, Loop]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    send = sock.send
    payload = b"\n".join([LINE] * BATCH)

    def single(n: int) -> None:
        for _ in range(n):
            send(LINE)

    def batched(n: int) -> None:
        for _ in range(n // BATCH):
            send(payload)

    def empty(n: int) -> None:
        for _ in range(n):
            noop()

    return {"socket.send, 1 line": single, f"socket.send, {BATCH} lines/datagram": batched, "empty call": empty}


def candidates(port: int) -> dict[str, Loop]:
    table: dict[str, Loop] = {}
    for label, loops in (
        ("ours", ours(port, "dogstatsd")),
        ("ours plain", ours(port, "statsd")),
        ("datadog default", datadog(port, buffered=False)),
        ("datadog buffered+aggregated", datadog(port, buffered=True)),
        ("prometheus_client", prometheus()),
        ("pystatsd", pystatsd(port)),
        ("floor", floor(port)),
    ):
        for name, loop in loops.items():
            table[f"{label}: {name}"] = loop
    return table


EMPTY = "floor: empty call"


def measure(table: dict[str, Loop], calls: int, rounds: int, seed: int) -> tuple[Results, Results, Results]:
    """Wall and process-CPU nanoseconds per call, one value per round, candidates interleaved and shuffled.

    Also the pacing sleep taken out of each loop's wall time (ns per call).
    """
    wall: Results = {name: [] for name in table}
    slept: Results = {name: [] for name in table}
    cpu: Results = {name: [] for name in table}
    order = list(table)
    rng = random.Random(seed)
    for loop in table.values():  # warm up: imports, sockets, caches, flush threads
        loop(BATCH * 10)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            gc.collect()
            cpu_start = time.process_time_ns()
            start = time.perf_counter_ns()
            paced = table[name](calls) or 0.0
            elapsed = time.perf_counter_ns() - start
            cpu[name].append((time.process_time_ns() - cpu_start) / calls)
            wall[name].append((elapsed - paced * 1e9) / calls)
            slept[name].append(paced * 1e9 / calls)
    return wall, cpu, slept


Results = dict[str, list[float]]

#: (label, numerator, denominator, target ratio or None): issue 16's targets first.
RATIOS = [
    (
        "our bound inc() / prometheus_client prebound inc()",
        "ours: bound inc()",
        "prometheus_client: inc (prebound)",
        1.0,
    ),
    (
        "our bound observe() / prometheus_client prebound observe()",
        "ours: bound observe()",
        "prometheus_client: observe (prebound)",
        1.0,
    ),
    (
        "our unbound inc(3 tags) / datadog buffered+aggregated increment",
        "ours: unbound inc(3 tags)",
        "datadog buffered+aggregated: increment",
        0.8,
    ),
    (
        "our runner decorator (4 metrics) / prometheus_client @Histogram.time()",
        "ours: runner",
        "prometheus_client: @Histogram.time()",
        1.5,
    ),
    ("our runner decorator (4 metrics) / datadog default @timed", "ours: runner", "datadog default: timed", 0.5),
    ("our string counter / datadog default increment", "ours: counter", "datadog default: increment", None),
    (
        "our string counter / datadog buffered+aggregated increment",
        "ours: counter",
        "datadog buffered+aggregated: increment",
        None,
    ),
    ("our string histogram / datadog default histogram", "ours: histogram", "datadog default: histogram", None),
    (
        "our runner decorator / datadog buffered+aggregated @timed",
        "ours: runner",
        "datadog buffered+aggregated: timed",
        None,
    ),
    (
        "our counter / floor (25 lines per datagram)",
        "ours: counter",
        f"floor: socket.send, {BATCH} lines/datagram",
        None,
    ),
    ("our plain counter / pystatsd incr", "ours plain: counter", "pystatsd: incr", None),
    ("our plain runner decorator / pystatsd @timer", "ours plain: runner", "pystatsd: @timer", None),
]


def _quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def report(wall: Results, cpu: Results, slept: Results, calls: int, rounds: int) -> str:
    median = {name: statistics.median(values) for name, values in wall.items()}
    added = {
        name: statistics.median(c - e for c, e in zip(values, cpu[EMPTY], strict=True)) for name, values in cpu.items()
    }
    lines = [
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{calls} calls per loop, {rounds} interleaved rounds, medians",
        "",
        "| candidate | ns/call (median) | p25..p75 | CPU ns/call | added CPU ns/call |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in wall.items():
        low, high = _quartiles(values)
        lines.append(
            f"| {name} | {median[name]:,.0f} | {low:,.0f}..{high:,.0f} | "
            f"{statistics.median(cpu[name]):,.0f} | {added[name]:,.0f} |"
        )
    paced = {name: values for name, values in slept.items() if any(values)}
    lines += [
        "",
        "Pacing sleeps of our UDP sender in the loops' flushes, taken out of the wall column (ns per call, "
        "median; max): "
        + ("; ".join(f"{n} {statistics.median(v):,.0f}; {max(v):,.0f}" for n, v in paced.items()) or "none"),
    ]
    lines += [
        "",
        "Ratios: median over rounds of the per-round ratio (both loops ran in the same round), then",
        "the ratio of the wall medians and the ratio of added CPU per call as cross-checks.",
        "",
        "| ratio | per-round median | of medians | added CPU | target | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, top, bottom, target in RATIOS:
        ratio = statistics.median(a / b for a, b in zip(wall[top], wall[bottom], strict=True))
        verdict = "" if target is None else ("met" if ratio <= target else f"MISSED by {ratio / target - 1:.0%}")
        goal = "" if target is None else f"<= {target}x"
        cpu_ratio = added[top] / added[bottom] if added[bottom] > 0 else float("nan")
        lines.append(
            f"| {label} | {ratio:.2f}x | {median[top] / median[bottom]:.2f}x | {cpu_ratio:.2f}x | {goal} | {verdict} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ flush thread
def _schedstat(native_id: int) -> tuple[int, int]:
    """(CPU nanoseconds, times scheduled) of one thread of this process."""
    fields = Path(f"/proc/self/task/{native_id}/schedstat").read_text().split()
    return int(fields[0]), int(fields[2])


def flush_thread(port: int, receivers: dict[str, int], idle_seconds: float, rounds: int) -> str:
    """Idle wake-ups and CPU of the flush thread; the time of one flush of 10,000 contexts."""
    import threading

    emitter = Emitter(Settings(host="127.0.0.1", port=port))
    before = set(threading.enumerate())
    emitter.increment("runner.stop", tags=TAGS)  # starts the flush thread
    emitter.flush()
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "netauto-statsd-flush"]
    assert thread.native_id is not None
    cpu0, wakes0 = _schedstat(thread.native_id)
    start = time.monotonic()
    time.sleep(idle_seconds)  # the process is idle on purpose: this is what is measured
    elapsed = time.monotonic() - start
    cpu1, wakes1 = _schedstat(thread.native_id)
    wakes = (wakes1 - wakes0) / elapsed
    share = (cpu1 - cpu0) / (elapsed * 1e9)
    emitter.close()
    rows = [
        "| flush thread | measured | target | |",
        "|---|---:|---:|---|",
        f"| idle wake-ups per second ({idle_seconds:g} s idle; one more at the window edge is rounding) "
        f"| {wakes:.2f} | <= 2 | {'met' if wakes * elapsed <= 2 * elapsed + 1 else 'MISSED'} |",
        f"| idle CPU, share of one core | {share:.4%} | < 0.1% | {'met' if share < 0.001 else 'MISSED'} |",
    ]
    for label, receiver in receivers.items():
        rows += flush_rows(label, receiver, rounds)
    return "\n".join(rows)


def flush_rows(label: str, port: int, rounds: int) -> list[str]:
    """Wall, CPU and pacing pauses of one flush of 10,000 contexts to ``port``; the transport's share."""
    emitter = Emitter(Settings(host="127.0.0.1", port=port, flush_interval=60))  # only the flushes we time
    durations, cpus, pauses, slept, sends = [], [], [], [], []
    for _ in range(rounds):
        # one flush per flush interval, as the flush thread does (back-to-back flushes would spend the
        # pacer's allowance of datagrams for the exporter's packet queue, wire/pacing.py)
        time.sleep(Settings().flush_interval)
        for i in range(FLUSH_CONTEXTS):
            emitter.increment("bench.contexts", tags={"key": f"k{i}"})
        paused, asleep = _pauses(emitter), _slept(emitter)
        begin, cpu = time.perf_counter(), time.process_time()
        sent = emitter.flush()
        durations.append((time.perf_counter() - begin) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        pauses.append(_pauses(emitter) - paused)
        slept.append((_slept(emitter) - asleep) * 1000)
        assert sent == FLUSH_CONTEXTS, sent
        # the transport's share: the same batch handed to it again
        window = emitter._agg.drain()
        for i in range(FLUSH_CONTEXTS):
            window.counters[i] = 1
        batch = emitter._agg.build(window, emitter._resolver.contexts, emitter._resolver.client_context)
        begin = time.perf_counter()
        emitter._transport.send(batch)
        sends.append((time.perf_counter() - begin) * 1000)
    failed = emitter.stats()["packets_failed"]
    emitter.close()
    low, high = _quartiles(durations)
    wall = statistics.median(durations)
    return [
        f"| one flush of {FLUSH_CONTEXTS:,} counter contexts into {label}, wall ms (median of {rounds}; p25..p75 "
        f"{low:.1f}..{high:.1f}) | {wall:.1f} | < 20 | {'met' if wall < 20 else 'MISSED'} |",
        f"| ... CPU time of that flush (process_time), ms | {statistics.median(cpus):.1f} | < 20 | "
        f"{'met' if statistics.median(cpus) < 20 else 'MISSED'} |",
        f"| ... pacing pauses per flush (median; max) and ms slept (median) (wire/pacing.py) | "
        f"{statistics.median(pauses):g}; {max(pauses)}, {statistics.median(slept):.1f} ms | | |",
        f"| ... of which the transport's send() (wire/dogstatsd.py), wall ms | {statistics.median(sends):.1f} | | |",
        f"| ... datagrams not sent (receiver stalled; counted) | {failed} | 0 | {'met' if failed == 0 else 'MISSED'} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed loop (default 20000)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle flush thread to observe")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 calls, 2 rounds, 1 s idle")
    args = parser.parse_args()
    calls, rounds, idle = (500, 2, 1.0) if args.quick else (args.calls, args.rounds, args.idle)

    drainers = {
        "the drainer (8 MiB buffer)": subprocess.Popen(
            [sys.executable, "-c", DRAINER, str(8 * 1024 * 1024)], stdout=subprocess.PIPE, text=True
        ),
        "a drainer with the default buffer (208 KiB)": subprocess.Popen(
            [sys.executable, "-c", DRAINER, "default"], stdout=subprocess.PIPE, text=True
        ),
    }
    try:
        ports = {}
        for label, drainer in drainers.items():
            assert drainer.stdout is not None
            ports[label] = int(drainer.stdout.readline())
        port = next(iter(ports.values()))
        wall, cpu, slept = measure(candidates(port), calls, rounds, args.seed)
        thread = flush_thread(port, ports, idle, 3 if args.quick else rounds)
    finally:
        for drainer in drainers.values():
            drainer.terminate()
            drainer.wait(10)
    print(report(wall, cpu, slept, calls, rounds))
    print()
    print(thread)
    return 0


if __name__ == "__main__":
    sys.exit(main())
