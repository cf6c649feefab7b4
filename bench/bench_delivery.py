"""Delivery throughput into a real statsd_exporter: samples/s from one process, and loss.

Run:  PATH=.tools/bin:$PATH .venv/bin/python bench/bench_delivery.py [--samples 200000] [--rounds 3]

For each candidate, one process sends N samples as fast as it can (counters, then
histograms) to a real statsd_exporter started with the repo's mapping, then we
poll the exporter until its totals stop moving and compare them with N. The
rate is N / (time to send, flush included). Candidates run interleaved, round
after round, so machine noise hits all of them alike; medians are reported.

Candidates: our emitter (in-process aggregation, multi-value histogram lines,
buffered datagrams) and raw datadog DogStatsd in its default mode (one
datagram per sample), both with the same metric names and tags.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter  # noqa: E402
from tests.support import Exporter  # noqa: E402

_runs = itertools.count()
TAGS = {"site": "par1", "protocol": "ssh", "status": "ok"}


def ours(kind: str, port: int, n: int, env: str) -> float:
    emitter = Emitter(Settings(host="127.0.0.1", port=port, env=env))
    start = time.perf_counter()
    if kind == "counter":
        for _ in range(n):
            emitter.increment("runner.stop", tags=TAGS)
    else:
        for i in range(n):
            emitter.histogram("runner.duration", (i % 1000) / 1000.0, tags=TAGS)
    emitter.close()
    return time.perf_counter() - start


def datadog_default(kind: str, port: int, n: int, env: str) -> float:
    from datadog.dogstatsd.base import DogStatsd

    client = DogStatsd(
        host="127.0.0.1",
        port=port,
        namespace="netauto",
        constant_tags=[f"env:{env}", "service:netauto"],
        disable_telemetry=True,
        origin_detection_enabled=False,
    )
    tags = [f"{k}:{v}" for k, v in TAGS.items()]
    start = time.perf_counter()
    if kind == "counter":
        for _ in range(n):
            client.increment("runner.stop", tags=tags)
    else:
        for i in range(n):
            client.histogram("runner.duration", (i % 1000) / 1000.0, tags=tags)
    client.flush()
    elapsed = time.perf_counter() - start
    client.close_socket()
    return elapsed


def received(exporter: Exporter, kind: str, env: str) -> float:
    name = "netauto_runner_stops_total" if kind == "counter" else "netauto_runner_duration_seconds_count"
    last, stable_since = -1.0, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = exporter.value(name, env=env)
        if got != last:
            last, stable_since = got, time.monotonic()
        elif time.monotonic() - stable_since > 1.0:
            break
        time.sleep(0.05)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = shutil.which("statsd_exporter") or str(ROOT / ".tools" / "bin" / "statsd_exporter")
    candidates: dict[str, Callable[[str, int, int, str], float]] = {"ours": ours, "datadog default": datadog_default}
    rates: dict[tuple[str, str], list[float]] = {}
    losses: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for kind in ("counter", "histogram"):
                for label, run in candidates.items():
                    # a fresh exporter per run: one candidate's backlog never hurts the next
                    exporter = Exporter(binary, Path(tmp))
                    try:
                        env = f"bench{next(_runs)}"
                        elapsed = run(kind, exporter.udp_port, args.samples, env)
                        got = received(exporter, kind, env)
                    finally:
                        exporter.stop()
                    rates.setdefault((label, kind), []).append(args.samples / elapsed)
                    losses.setdefault((label, kind), []).append(args.samples - got)
    print(f"samples per run: {args.samples:,}; rounds: {args.rounds}; one fresh exporter per run")
    print(f"{'candidate':<18}{'kind':<11}{'median samples/s':>18}{'lost (per run)':>18}")
    for (label, kind), values in sorted(rates.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lost = losses[(label, kind)]
        print(f"{label:<18}{kind:<11}{statistics.median(values):>18,.0f}{[int(x) for x in lost]!s:>18}")
    for kind in ("counter", "histogram"):
        ratio = statistics.median(rates[("ours", kind)]) / statistics.median(rates[("datadog default", kind)])
        print(f"ratio ours / datadog default ({kind}): {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
