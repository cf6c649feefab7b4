"""Soak: an app process emitting at a high rate for N minutes while the exporter is restarted three times.

Run (not in CI):  PATH=.tools/bin:$PATH .venv/bin/python bench/soak.py --minutes 10 [--rate 40000]

The app is a separate process using the library as an app would (``netauto_statsd``
configured from ``DD_DOGSTATSD_URL``, background flush thread every 0.5 s):
``--threads`` threads emit ``runner.duration`` and ``runner.bytes`` observations
over 150 contexts at about ``--rate`` observations/s in total. Only histograms:
each observation is one ``_count`` at the exporter and one sample in the
client's loss counters, so the books balance sample for sample (a lost counter
line would count as one sample but carry many increments).
The harness restarts the real statsd_exporter three times (SIGTERM, SIGKILL,
SIGTERM, evenly spaced; same UDP port), reading each instance's totals just
before stopping it. At the end it prints:

* the app's RSS after warm-up and at the end (must stay within 10 %);
* observations sent by the app, lost as counted by the client itself
  (``samples_failed``: refused while the exporter was down; ``dropped_pending``),
  received by the exporters, and the remainder: observations in flight when an
  exporter stopped (accepted by the kernel into the socket of an exporter that
  then exited without reading them). UDP has no acknowledgement: no client can
  count those; the figure shows their size.

To read each instance's exact total before stopping it, the harness freezes the
app (SIGSTOP) until the exporter's count stops moving, reads it, resumes the app
(SIGCONT) and stops the exporter right away, mid-traffic; the port then stays
closed for ``--down`` seconds, as during a container restart.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Exporter, find_binary, free_port  # noqa: E402

COUNTS = ("netauto_runner_duration_seconds_count", "netauto_runner_processed_bytes_count")

APP = r"""
import json, os, signal, sys, threading, time
import netauto_statsd
from netauto_statsd.emitter import get_emitter

threads, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
emitter = get_emitter()
sent = [0] * threads
PROTOCOLS = ("ssh", "netconf", "telnet")
stop = threading.Event()

def app(index):
    batch = 50
    pause = batch * threads / rate
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        for _ in range(batch):
            tags = {"site": f"site{n % 50}", "protocol": PROTOCOLS[n % 3], "status": "ok"}
            if n % 2:
                emitter.histogram("runner.duration", (n % 997) / 100, tags=tags)
            else:
                emitter.histogram("runner.bytes", n % 65536, tags=tags)
            n += 1
        sent[index] += batch
        next_at += pause
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

workers = [threading.Thread(target=app, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
print("started", flush=True)
time.sleep(seconds)
stop.set()
for w in workers:
    w.join()
netauto_statsd.flush()
print(json.dumps({"sent": sum(sent), "stats": netauto_statsd.stats()}), flush=True)
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def count(exporter: Exporter) -> float:
    """Observations the exporter counted, both histograms together."""
    return sum(exporter.value(name) for name in COUNTS)


def settle(exporter: Exporter, seconds: float = 1.0) -> float:
    """The exporter's count once it stopped moving for ``seconds``."""
    last, since = -1.0, time.monotonic()
    while True:
        now = count(exporter)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return now
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40_000, help="observations/s, all threads together")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the first RSS reading")
    parser.add_argument("--down", type=float, default=2.0, help="seconds each exporter restart keeps the port closed")
    args = parser.parse_args()
    binary = find_binary("statsd_exporter")
    if binary is None:
        sys.exit("statsd_exporter not found (PATH=.tools/bin:$PATH)")
    seconds = args.minutes * 60
    udp_port = free_port(socket.SOCK_DGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))}
    env.update(DD_DOGSTATSD_URL=f"udp://127.0.0.1:{udp_port}", NETAUTO_STATSD_ENV="soak", PYTHONPATH=str(ROOT))
    received = 0.0
    restarts = []
    with tempfile.TemporaryDirectory() as tmp:
        exporter = Exporter(binary, Path(tmp), udp_port=udp_port)
        start = time.monotonic()
        app = subprocess.Popen(
            [sys.executable, "-c", APP, str(args.threads), str(args.rate), str(seconds)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert app.stdout is not None and app.stdout.readline().strip() == "started"
        time.sleep(min(args.warmup, seconds / 8))
        rss_start = rss_kib(app.pid)
        ways = [signal.SIGTERM, signal.SIGKILL, signal.SIGTERM]
        for index, how in enumerate(ways, 1):
            time.sleep(max(0.0, start + seconds * index / 4 - time.monotonic()))
            # Read this instance's exact total: freeze the app a moment so nothing is
            # in flight while we read, then let it run and stop the exporter at once.
            os.kill(app.pid, signal.SIGSTOP)
            before = settle(exporter, 0.3)
            os.kill(app.pid, signal.SIGCONT)
            if how == signal.SIGKILL:
                exporter.process.proc.kill()
            exporter.stop()
            received += before
            down_at = time.monotonic()
            time.sleep(args.down)  # a container restart takes a while: the app's flushes are refused
            exporter = Exporter(binary, Path(tmp), udp_port=udp_port)
            down = time.monotonic() - down_at
            restarts.append(f"{signal.Signals(how).name} at {down_at - start:.0f}s, down {down:.2f}s")
        rss_end = 0
        while app.poll() is None:
            rss_end = rss_kib(app.pid) or rss_end
            time.sleep(0.5)
        report = json.loads(app.stdout.read().strip().splitlines()[-1])
        received += settle(exporter)
        errors = {k: v for k, v in exporter.self_errors().items() if v}
        exporter.stop()
    stats = report["stats"]
    sent = report["sent"]
    failed, capped = stats["samples_failed"], stats["dropped_pending"]
    in_flight = sent - failed - capped - received
    achieved = sent / seconds
    print(f"soak: {args.minutes:g} min, {args.threads} threads, {args.rate:,.0f} obs/s asked, {achieved:,.0f} achieved")
    print("exporter restarts: " + "; ".join(restarts))
    growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
    print(f"app RSS: {rss_start / 1024:.1f} MiB after warm-up, {rss_end / 1024:.1f} MiB at the end ({growth:+.1%})")
    print(f"observations sent:                     {sent:>12,}")
    print(f"client-counted lost, send failed:      {failed:>12,}")
    print(f"client-counted lost, pending cap:      {capped:>12,}")
    print(f"received by the exporters:             {received:>12,.0f}")
    print(f"in flight at a restart (not countable): {in_flight:>11,.0f} ({in_flight / sent:.4%})")
    print(f"client stats: {stats}")
    print(f"last exporter's own error counters: {errors or 'all 0'}")


if __name__ == "__main__":
    main()
