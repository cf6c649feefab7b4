"""Benchmark: the RQ integration's cost, a forking worker instrumented vs RQ's plain ``Worker``.

Run from the repo root (redis-server on PATH; statsd_exporter on PATH or --exporter)::

    PATH=/tmp/gobin:$PATH python bench/bench_rq.py

``--jobs`` trivial jobs (default 2,000) go through each variant, split into
``--reps`` repetitions. In every repetition every variant runs, the order
alternating, so drift on a noisy machine hits all alike. Each is a real
``rq worker --burst`` subprocess on one redis-server: ``plain`` is RQ's default
``Worker``, ``instrumented`` is ``-w netauto_statsd.integrations.rq.InstrumentedWorker``
(sending to a real statsd_exporter when one is found, else a local UDP sink) and
``control`` is RQ's ``Worker`` with the same imports and no instrumentation (a
bigger process is slower to fork). Throughput comes from the jobs' own
timestamps (first ``started_at`` to last ``ended_at``), so start-up is not
counted; CPU per job is the worker's and its horses' (start-up subtracted).
Ratios are paired per repetition; the median is reported. Target:
instrumented/plain >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rq import Worker

from netauto_statsd.tooling.exporter import ThrowawayExporter, free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
QUEUE = "bench"
INSTRUMENTED = "netauto_statsd.integrations.rq.InstrumentedWorker"
PLAIN = "rq.Worker"
CONTROL = "bench_rq.ControlWorker"
LABELS = {PLAIN: "plain", CONTROL: "control", INSTRUMENTED: "instrumented"}


#: The job: as cheap as a job gets (a builtin every worker has loaded), so the
#: fork and RQ's own work dominate, and no variant imports a job module per horse.
JOB = "operator.index"


class ControlWorker(Worker):
    """RQ's plain ``Worker`` carrying the instrumented worker's imports, and no instrumentation.

    It tells the cost of a bigger process to fork (datadog and its HTTP client
    come with the emitter) from the cost of the instrumentation itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import datadog.dogstatsd.base  # noqa: F401

        import netauto_statsd.integrations.rq  # noqa: F401

        super().__init__(*args, **kwargs)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


class Sink:
    """Where the instrumented worker sends: a real statsd_exporter, else a UDP socket drained by a thread."""

    def __init__(self, exporter: str | None, workdir: Path) -> None:
        self.exporter: ThrowawayExporter | None = None
        if exporter:
            self.exporter = ThrowawayExporter(exporter, ROOT / "bridge" / "statsd_mapping.yml", log_dir=workdir)
            self.port, self.kind = self.exporter.udp_port, "statsd_exporter"
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
            threading.Thread(target=lambda: [sock.recv(65535) for _ in iter(int, 1)], daemon=True).start()
            self.kind = "UDP sink"

    def stop(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    from redis import Redis

    wait_for(lambda: Redis(port=port).ping(), 20, "redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"


def children_cpu() -> float:
    """CPU seconds (user + system) used by reaped children: the worker and, through it, its horses."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_batch(url: str, worker_class: str, jobs: int, env: dict[str, str]) -> tuple[float, float]:
    """Enqueue ``jobs`` trivial jobs, drain them with a burst worker.

    Returns jobs per second (from the jobs' own timestamps) and the CPU seconds
    the worker and its horses used (start-up included; see ``startup_cpu``).
    """
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    conn = Redis.from_url(url)
    conn.flushall()
    queue = Queue(QUEUE, connection=conn)
    enqueued = queue.enqueue_many([Queue.prepare_data(JOB, (i,)) for i in range(jobs)])
    cpu = children_cpu()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("rq")),
            "worker",
            "--burst",
            "--quiet",
            "--path",
            str(BENCH),
            "-w",
            worker_class,
            "--url",
            url,
            QUEUE,
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    cpu = children_cpu() - cpu
    if not jobs:
        return 0.0, cpu
    done = [job for job in Job.fetch_many([j.id for j in enqueued], connection=conn) if job is not None]
    finished = [job for job in done if job.get_status(refresh=False) == "finished"]
    if len(finished) != jobs:
        raise SystemExit(f"{worker_class}: only {len(finished)}/{jobs} jobs finished")
    first = min(job.started_at for job in finished if job.started_at)
    last = max(job.ended_at for job in finished if job.ended_at)
    return jobs / (last - first).total_seconds(), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per variant, over all repetitions")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--exporter", default=shutil.which("statsd_exporter"))
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 jobs, one repetition")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.reps = 20, 1
    per_rep = args.jobs // args.reps

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sink = Sink(args.exporter, workdir)
        redis_proc, url = start_redis(workdir)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))}
        envs = {
            PLAIN: base_env,
            CONTROL: base_env,
            INSTRUMENTED: {**base_env, "DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(sink.port)},
        }
        rates: dict[str, list[float]] = {v: [] for v in envs}
        cpu_per_job: dict[str, list[float]] = {v: [] for v in envs}
        try:
            run_batch(url, PLAIN, 50, envs[PLAIN])  # warm-up: page cache, imports
            # A worker that finds no job: its CPU is start-up and shutdown, subtracted below.
            startup_cpu = {v: statistics.median(run_batch(url, v, 0, envs[v])[1] for _ in range(3)) for v in envs}
            for rep in range(args.reps):
                order = list(envs) if rep % 2 == 0 else list(envs)[::-1]
                for variant in order:
                    rate, cpu = run_batch(url, variant, per_rep, envs[variant])
                    rates[variant].append(rate)
                    cpu_per_job[variant].append((cpu - startup_cpu[variant]) / per_rep)
                print(
                    f"rep {rep + 1}: "
                    + "  ".join(
                        f"{LABELS[v]} {rates[v][-1]:5.1f} jobs/s ({cpu_per_job[v][-1] * 1e3:.1f} ms CPU/job)"
                        for v in envs
                    )
                    + f"  ratio {rates[INSTRUMENTED][-1] / rates[PLAIN][-1]:.3f}",
                    flush=True,
                )
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
            sink.stop()

    def ratio_line(variant: str) -> str:
        paired = [i / p for i, p in zip(rates[variant], rates[PLAIN], strict=True)]
        return (
            f"{LABELS[variant]} / plain: median {statistics.median(paired):.3f} "
            f"({', '.join(f'{r:.3f}' for r in paired)}), best-repetition {max(rates[variant]) / max(rates[PLAIN]):.3f}"
        )

    print(
        f"\n{args.jobs} trivial jobs per variant, forking worker, {args.reps} interleaved repetitions, to {sink.kind}"
    )
    for variant in envs:
        print(
            f"{LABELS[variant]:13} median {statistics.median(rates[variant]):6.1f} jobs/s, "
            f"CPU per job (worker + horse, start-up subtracted) {statistics.median(cpu_per_job[variant]) * 1e3:.2f} ms"
        )
    print(ratio_line(INSTRUMENTED) + "  <- target >= 0.95")
    print(ratio_line(CONTROL))


if __name__ == "__main__":
    main()
