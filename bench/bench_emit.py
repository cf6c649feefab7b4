"""Per-call cost of emitting a metric: netauto_statsd beside datadog, prometheus_client, pystatsd and the floor.

Run (from the repo root):

    .venv/bin/python bench/bench_emit.py            # ~1 min; --quick for a smoke run

Every candidate runs its own tight loop of ``--calls`` calls and the time is
divided by the number of calls. Clients that aggregate or buffer (ours, datadog
buffered+aggregated) flush once at the end of each loop *inside* the timed
region, so what they defer is paid for. Rounds interleave every candidate in a
shuffled order (a noisy shared machine hits all of them alike) and the table
reports medians and the inter-quartile range over rounds.

Everything is sent to a real UDP socket on 127.0.0.1 that a separate drainer
process reads as fast as it can (like an exporter would): no closed port, so no
ICMP errors and reconnects distort the send path.

Candidates, all with the same three tags (``site``, ``protocol``, ``status``) and
the same constant tags (``env``, ``service``):

* ours: counter, histogram, and the ``runner_lifecycle`` decorator around a no-op
  (it emits four metrics per call: start, stop, duration, bytes); also with the
  plain StatsD transport (``NETAUTO_STATSD_TRANSPORT=statsd``);
* datadog ``DogStatsd`` in its default mode (one datagram per call) and in
  buffered+aggregated mode: ``increment``, ``histogram`` and ``@statsd.timed``;
* prometheus_client: prebound ``Counter(...).labels(...).inc()`` and
  ``@Histogram(...).labels(...).time()`` (in-process only: nothing is sent);
* pystatsd: ``StatsClient.incr`` and ``@StatsClient.timer`` (one datagram per call);
* the floor: a pre-formatted line with ``socket.send``, and pre-formatted lines
  sent 25 per datagram.
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

from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter, set_emitter  # noqa: E402
from netauto_statsd.instrument import runner_lifecycle  # noqa: E402

TAGS = {"site": "par1", "protocol": "ssh", "status": "ok"}
DD_TAGS = [f"{k}:{v}" for k, v in TAGS.items()]
CONSTANT = ["env:dev", "service:netauto"]
LINE = b"netauto.runner.stop:1|c|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto"
BATCH = 25

DRAINER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
buf = bytearray(65536)
while True:
    s.recv_into(buf)
"""

#: A loop runs ``n`` calls (and pays for any deferred flush); it returns nothing.
Loop = Callable[[int], None]


def noop() -> None:
    """What every decorator wraps."""


def ours(port: int, transport: str) -> dict[str, Loop]:
    emitter = Emitter(Settings(host="127.0.0.1", port=port, transport=transport))
    increment, histogram, flush = emitter.increment, emitter.histogram, emitter.flush
    decorated = runner_lifecycle({"site": "par1", "protocol": "ssh"})(noop)

    def counter(n: int) -> None:
        for _ in range(n):
            increment("runner.stop", tags=TAGS)
        flush()

    def observe(n: int) -> None:
        for _ in range(n):
            histogram("runner.duration", 0.25, tags=TAGS)
        flush()

    def runner(n: int) -> None:
        previous = set_emitter(emitter)
        for _ in range(n):
            decorated()
        flush()
        set_emitter(previous)

    return {"counter": counter, "histogram": observe, "runner": runner}


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

    def counter(n: int) -> None:
        for _ in range(n):
            inc()

    def timed(n: int) -> None:
        for _ in range(n):
            decorated()

    return {"inc (prebound)": counter, "@Histogram.time()": timed}


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

    return {"socket.send, 1 line": single, f"socket.send, {BATCH} lines/datagram": batched}


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


def measure(table: dict[str, Loop], calls: int, rounds: int, seed: int) -> dict[str, list[float]]:
    """Nanoseconds per call, one value per round, candidates interleaved in a shuffled order."""
    results: dict[str, list[float]] = {name: [] for name in table}
    order = list(table)
    rng = random.Random(seed)
    for loop in table.values():  # warm up: imports, sockets, caches, flush threads
        loop(BATCH * 10)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            gc.collect()
            start = time.perf_counter_ns()
            table[name](calls)
            results[name].append((time.perf_counter_ns() - start) / calls)
    return results


#: (label, numerator, denominator, target ratio or None)
RATIOS = [
    ("our counter / datadog default increment", "ours: counter", "datadog default: increment", 0.5),
    (
        "our counter / datadog buffered+aggregated increment",
        "ours: counter",
        "datadog buffered+aggregated: increment",
        1.2,
    ),
    ("our runner decorator (4 metrics) / datadog @timed", "ours: runner", "datadog default: timed", 0.75),
    (
        "our runner decorator / datadog buffered+aggregated @timed",
        "ours: runner",
        "datadog buffered+aggregated: timed",
        None,
    ),
    ("our histogram / datadog default histogram", "ours: histogram", "datadog default: histogram", None),
    (
        "our histogram / datadog buffered+aggregated histogram",
        "ours: histogram",
        "datadog buffered+aggregated: histogram",
        None,
    ),
    ("our counter / prometheus_client inc", "ours: counter", "prometheus_client: inc (prebound)", None),
    (
        "our runner decorator / prometheus_client @Histogram.time()",
        "ours: runner",
        "prometheus_client: @Histogram.time()",
        None,
    ),
    ("our counter / floor (1 line per datagram)", "ours: counter", "floor: socket.send, 1 line", None),
    (
        "our counter / floor (25 lines per datagram)",
        "ours: counter",
        f"floor: socket.send, {BATCH} lines/datagram",
        None,
    ),
    ("our plain counter / pystatsd incr", "ours plain: counter", "pystatsd: incr", None),
    ("our plain histogram / pystatsd incr", "ours plain: histogram", "pystatsd: incr", None),
    ("our plain runner decorator / pystatsd @timer", "ours plain: runner", "pystatsd: @timer", None),
]


def report(results: dict[str, list[float]], calls: int, rounds: int) -> str:
    median = {name: statistics.median(values) for name, values in results.items()}
    lines = [
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{calls} calls per loop, {rounds} interleaved rounds, medians",
        "",
        "| candidate | ns/call (median) | p25..p75 |",
        "|---|---:|---:|",
    ]
    for name, values in results.items():
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        lines.append(f"| {name} | {median[name]:,.0f} | {quartiles[0]:,.0f}..{quartiles[2]:,.0f} |")
    lines += [
        "",
        "Ratios: median over rounds of the per-round ratio (both loops ran in the same round),",
        "then the ratio of the medians above as a cross-check.",
        "",
        "| ratio | per-round median | of medians | target | |",
        "|---|---:|---:|---:|---|",
    ]
    for label, top, bottom, target in RATIOS:
        ratio = statistics.median(a / b for a, b in zip(results[top], results[bottom], strict=True))
        verdict = "" if target is None else ("met" if ratio <= target else f"MISSED by {ratio / target - 1:.0%}")
        goal = "" if target is None else f"<= {target}x"
        lines.append(f"| {label} | {ratio:.2f}x | {median[top] / median[bottom]:.2f}x | {goal} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed loop (default 20000)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 calls, 2 rounds")
    args = parser.parse_args()
    calls, rounds = (500, 2) if args.quick else (args.calls, args.rounds)

    drainer = subprocess.Popen([sys.executable, "-c", DRAINER], stdout=subprocess.PIPE, text=True)
    try:
        assert drainer.stdout is not None
        port = int(drainer.stdout.readline())
        results = measure(candidates(port), calls, rounds, args.seed)
    finally:
        drainer.terminate()
        drainer.wait(10)
    print(report(results, calls, rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
