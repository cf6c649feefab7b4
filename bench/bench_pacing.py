"""One huge flush into a real statsd_exporter: what arrives, what the kernel drops, what pacing costs.

Run:  PATH=.tools/bin:$PATH .venv/bin/python bench/bench_pacing.py [--samples 800000] [--rounds 3]
      PATH=.tools/bin:$PATH .venv/bin/python bench/bench_pacing.py --counters 10000 --rounds 5

Each round queues ``--samples`` histogram observations (8 contexts, so the
100,000-per-context pending cap is not hit), flushes ONCE, then polls the
exporter until its ``_count`` stops moving. Reported per candidate (medians over
rounds, candidates interleaved so machine noise hits all alike):

* arrived: samples the exporter counted, out of those sent;
* kernel drops: datagrams dropped on the exporter's socket (``/proc/net/udp``),
  which ``statsd_exporter_udp_packet_drops_total`` never sees;
* not sent: datagrams the pacer refused because the receiver's buffer stayed full
  (counted by the client as failed: ``samples_failed``);
With ``--senders N``, N processes flush the workload at the same moment (an app's
workers sharing one exporter; flush time: the slowest, pauses: the sum).
With ``--counters N`` a round flushes N distinct counter contexts instead (one
line each; the exporter's mapping drops them, and its
``statsd_exporter_events_actions_total{action="drop"}`` counts what arrived).

* flush time: wall time of the one ``flush()`` (in the flush thread, not the app),
  and the pauses the pacer took.

Candidates (``wire/pacing.py``): pacing ``off``; ``fixed``, the token bucket alone
(the burst and the rate a receiver that cannot be observed gets; ``--rate`` and
``--burst`` try others); ``observed``, the default on loopback (the kernel reports
the room left in the exporter's socket buffer). Each with the exporter's read
buffer at the kernel default or ``--statsd.read-buffer=8388608`` (capped by
``net.core.rmem_max``; printed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netauto_statsd.catalog import Tag, counter  # noqa: E402
from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter  # noqa: E402
from netauto_statsd.wire import pacing, udp  # noqa: E402
from tests.support import Exporter, find_binary  # noqa: E402

SITES = [f"site{i}" for i in range(8)]
#: Distinct contexts for ``--counters`` (not in the mapping: the exporter counts and drops them).
CONTEXTS = counter(
    "bench.pacing_contexts",
    tags=(Tag("key", None, "context number", "k1"),),
    help="Bench only: many distinct contexts.",
    prometheus_name="netauto_bench_pacing_contexts_total",
    max_combinations=1_000_000,
)


def sender(port: int, mode: str, burst: int | None, rate: float | None) -> udp.UdpSender:
    """The UDP sender a candidate flushes through."""
    if mode == "off":
        return udp.UdpSender("127.0.0.1", port, rate=0)
    return udp.UdpSender("127.0.0.1", port, burst, rate, observe=mode == "observed")


Result = tuple[float, int, int, float, int]
DROPPED = "statsd_exporter_events_actions_total"


Flushed = tuple[int, int, int, float, int]  # sent, samples failed, refused, seconds, pauses


def flush_once(args: argparse.Namespace, port: int, mode: str, key: str = "k", barrier: Any = None) -> Flushed:
    """Queue the workload in a fresh emitter and flush it once (after ``barrier``, if given)."""
    settings = Settings(host="127.0.0.1", port=port, flush_interval=60, exporter_compat=args.compat)
    emitter = Emitter(settings)
    emitter._transport._sender = paced = sender(port, mode, args.burst, args.rate)  # type: ignore[attr-defined]
    if args.counters:
        sent = args.counters
        for i in range(args.counters):
            emitter.increment("bench.pacing_contexts", tags={"key": f"{key}{i}"})
    else:
        per_site = args.samples // len(SITES)
        sent = per_site * len(SITES)
        for site in SITES:
            tags = {"site": site, "protocol": "ssh", "status": "ok"}
            emitter.histogram_many("runner.duration", [(i % 1000) / 1000.0 for i in range(per_site)], tags)
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    emitter.flush()
    elapsed = time.perf_counter() - start
    failed = emitter.stats()["samples_failed"]
    refused = paced.pacer.refused if paced.pacer is not None else 0
    pauses = paced.pauses
    emitter.close()
    return sent, failed, refused, elapsed, pauses


def _child(args: argparse.Namespace, port: int, mode: str, index: int, barrier: Any, results: Any) -> None:
    results.put(flush_once(args, port, mode, f"p{index}k", barrier))


def one_round(args: argparse.Namespace, binary: str, tmp: Path, mode: str, read_buffer: int | None) -> Result:
    exporter = Exporter(binary, tmp, read_buffer=read_buffer)
    try:
        if args.senders == 1:
            flushed = [flush_once(args, exporter.udp_port, mode)]
        else:  # several processes flush at the same moment, as an app's workers may
            context = multiprocessing.get_context("fork")
            barrier, results = context.Barrier(args.senders), context.Queue()
            children = [
                context.Process(target=_child, args=(args, exporter.udp_port, mode, i, barrier, results))
                for i in range(args.senders)
            ]
            for child in children:
                child.start()
            flushed = [results.get(timeout=300) for _ in children]
            for child in children:
                child.join(60)
        sent = sum(f[0] for f in flushed)
        failed, refused = sum(f[1] for f in flushed), sum(f[2] for f in flushed)
        series = DROPPED if args.counters else "netauto_runner_duration_seconds_count"
        last, still = -1.0, 0
        while still < 10:  # settled: 10 polls (~1 s) without change
            got = exporter.value(series, action="drop") if args.counters else exporter.value(series)
            still = still + 1 if got == last else 0
            last = got
            time.sleep(0.1)
        assert failed == 0 or refused, f"{failed} samples failed to send"
        return last / sent, exporter.kernel_drops(), refused, max(f[3] for f in flushed), sum(f[4] for f in flushed)
    finally:
        exporter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=800_000)
    parser.add_argument("--counters", type=int, default=0, help="flush this many counter contexts instead")
    parser.add_argument("--senders", type=int, default=1, help="processes flushing the workload at the same moment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=None, help="bytes/s of the fixed token bucket")
    parser.add_argument("--burst", type=int, default=None, help="burst bytes of the fixed token bucket")
    parser.add_argument("--exporter", default=None, help="statsd_exporter binary (default: on PATH)")
    parser.add_argument("--compat", default="", help="NETAUTO_STATSD_EXPORTER_COMPAT, e.g. 0.26 for v0.26.1")
    parser.add_argument("--modes", default="off,fixed,observed", help="comma-separated: off, fixed, observed")
    args = parser.parse_args()
    binary = args.exporter or find_binary("statsd_exporter")
    if binary is None:
        sys.exit("statsd_exporter not found (PATH=.tools/bin:$PATH)")
    rmem_max = Path("/proc/sys/net/core/rmem_max").read_text().strip()
    burst = args.burst or pacing.rmem_default() // 2
    rate = args.rate or pacing.DEFAULT_RATE
    what = f"{args.counters} counter contexts" if args.counters else f"{args.samples} histogram samples"
    what += f" in each of {args.senders} processes" if args.senders > 1 else ""
    print(f"{what} in one flush, {args.rounds} rounds; net.core.rmem_max={rmem_max}; {binary}")
    print(f"fixed: token bucket of {burst} bytes refilled at {rate / 1e6:g} MB/s (kernel-charged bytes)")
    modes = args.modes.split(",")
    candidates = [(m, rb) for rb in (None, 8388608) for m in modes]
    results: dict[tuple[str, int | None], list[Result]] = {c: [] for c in candidates}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for mode, read_buffer in candidates:
                results[(mode, read_buffer)].append(one_round(args, binary, Path(tmp), mode, read_buffer))
    print(
        f"{'pacing':9} {'read buffer':>14} {'arrived':>9} {'kernel drops':>13} {'not sent':>9} "
        f"{'flush ms':>9} {'pauses':>7}"
    )
    for (mode, read_buffer), rows in results.items():
        arrived = statistics.median(r[0] for r in rows)
        drops = statistics.median(r[1] for r in rows)
        refused = statistics.median(r[2] for r in rows)
        seconds = statistics.median(r[3] for r in rows)
        pauses = statistics.median(r[4] for r in rows)
        buffer = str(read_buffer) if read_buffer else "kernel default"
        print(
            f"{mode:9} {buffer:>14} {arrived:>8.1%} {drops:>13.0f} {refused:>9.0f} "
            f"{seconds * 1000:>9.1f} {pauses:>7.0f}"
            f"   (arrived per round: {', '.join(f'{r[0]:.1%}' for r in rows)})"
        )


if __name__ == "__main__":
    main()
