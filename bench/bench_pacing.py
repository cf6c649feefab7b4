"""One huge flush into a real statsd_exporter: what arrives, what the kernel drops, what pacing costs.

Run:  PATH=.tools/bin:$PATH .venv/bin/python bench/bench_pacing.py [--samples 800000] [--rounds 3]

Each round queues ``--samples`` histogram observations (8 contexts, so the
100,000-per-context pending cap is not hit), flushes ONCE, then polls the
exporter until its ``_count`` stops moving. Reported per candidate (medians over
rounds, candidates interleaved so machine noise hits all alike):

* arrived: samples the exporter counted, out of those sent;
* kernel drops: datagrams dropped on the exporter's socket (``/proc/net/udp``),
  which ``statsd_exporter_udp_packet_drops_total`` never sees;
* flush time: wall time of the one ``flush()`` (in the flush thread, not the app).

Candidates: pacing on (the default) or off, with the exporter's read buffer at
the kernel default or ``--statsd.read-buffer=8388608`` (capped by
``net.core.rmem_max``; printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter  # noqa: E402
from netauto_statsd.wire import udp  # noqa: E402
from tests.support import Exporter, find_binary  # noqa: E402

SITES = [f"site{i}" for i in range(8)]


def one_round(binary: str, tmp: Path, samples: int, pacing: bool, read_buffer: int | None) -> tuple[float, int, float]:
    exporter = Exporter(binary, tmp, read_buffer=read_buffer)
    saved = udp.PACE_BYTES
    udp.PACE_BYTES = saved if pacing else 1 << 62
    try:
        emitter = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, flush_interval=60))
        per_site = samples // len(SITES)
        for site in SITES:
            tags = {"site": site, "protocol": "ssh", "status": "ok"}
            emitter.histogram_many("runner.duration", [(i % 1000) / 1000.0 for i in range(per_site)], tags)
        start = time.perf_counter()
        emitter.flush()
        elapsed = time.perf_counter() - start
        failed = emitter.stats()["samples_failed"]
        emitter.close()
        last, still = -1.0, 0
        while still < 10:  # settled: 10 polls (~1 s) without change
            got = exporter.value("netauto_runner_duration_seconds_count")
            still = still + 1 if got == last else 0
            last = got
            time.sleep(0.1)
        assert failed == 0, f"{failed} samples failed to send"
        return last / (per_site * len(SITES)), exporter.kernel_drops(), elapsed
    finally:
        udp.PACE_BYTES = saved
        exporter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=800_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pace-bytes", type=int, default=udp.PACE_BYTES, help="try another pacing budget")
    parser.add_argument("--pace-ms", type=float, default=udp.PACE_SECONDS * 1000, help="try another pause")
    args = parser.parse_args()
    udp.PACE_BYTES, udp.PACE_SECONDS = args.pace_bytes, args.pace_ms / 1000
    binary = find_binary("statsd_exporter")
    if binary is None:
        sys.exit("statsd_exporter not found (PATH=.tools/bin:$PATH)")
    rmem_max = Path("/proc/sys/net/core/rmem_max").read_text().strip()
    print(f"{args.samples} samples in one flush, {args.rounds} rounds; net.core.rmem_max={rmem_max}")
    print(f"pacing: {udp.PACE_BYTES} bytes then {udp.PACE_SECONDS * 1000:.1f} ms pause")
    candidates = [(p, rb) for rb in (None, 8388608) for p in (False, True)]
    results: dict[tuple[bool, int | None], list[tuple[float, int, float]]] = {c: [] for c in candidates}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for pacing, read_buffer in candidates:
                results[(pacing, read_buffer)].append(one_round(binary, Path(tmp), args.samples, pacing, read_buffer))
    print(f"{'pacing':8} {'read buffer':>14} {'arrived':>9} {'kernel drops':>13} {'flush s':>8}")
    for (pacing, read_buffer), rows in results.items():
        arrived = statistics.median(r[0] for r in rows)
        drops = statistics.median(r[1] for r in rows)
        seconds = statistics.median(r[2] for r in rows)
        buffer = str(read_buffer) if read_buffer else "kernel default"
        print(f"{'on' if pacing else 'off':8} {buffer:>14} {arrived:>8.1%} {drops:>13.0f} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
