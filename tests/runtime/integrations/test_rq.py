"""RQ integration against a real redis-server, real ``rq worker`` processes and the real statsd_exporter.

The job functions below are imported by the worker subprocesses as
``tests.runtime.integrations.test_rq.<name>``.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Queue, Retry, get_current_job
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus
from rq.worker import SpawnWorker

from netauto_statsd import chunk_appended
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.integrations.rq import (
    HORSE_TERMINATED,
    InstrumentedQueue,
    InstrumentedSimpleWorker,
    InstrumentedWorker,
    WorkerMetricsMixin,
    declare_job_functions,
)
from netauto_statsd.tags import normalise_value
from netauto_statsd.testing import Recorder
from tests.support import ROOT, Exporter, free_port, wait_until

pytestmark = [pytest.mark.redis]

MODULE = "tests.runtime.integrations.test_rq"
QUEUE = "netauto"


# ------------------------------------------------------------ job functions
def succeed(n: int) -> int:
    """A good job; it also emits a metric of its own, which must survive the horse's os._exit."""
    chunk_appended(site="par1", protocol="ssh", size=10)
    return n * 2


def fail(n: int) -> None:
    raise ValueError(f"device {n} refused the command")


def hang(seconds: float) -> None:
    """A job that runs too long (its RQ timeout is shorter), or until stopped."""
    time.sleep(seconds)


def kill_self() -> None:
    """What the OOM killer does to a horse."""
    os.kill(os.getpid(), signal.SIGKILL)


def always_flaky() -> None:
    raise RuntimeError("still flaky")


def flaky_once(key: str) -> str:
    job = get_current_job()
    assert job is not None
    if job.connection.incr(key) == 1:
        raise RuntimeError("flaky the first time")
    chunk_appended(site="par1", protocol="ssh", size=10)
    return "ok"


class FastPollWorker(InstrumentedWorker):
    """Polls the queue registries every 50 ms, so a test sees the gauges move."""

    metrics_poll_interval = 0.05


# ------------------------------------------------------------------ helpers
def func_tag(function: Any) -> str:
    """The ``func`` label a job of ``function`` gets (dots are not allowed in tag values)."""
    return normalise_value(f"{MODULE}.{function.__name__}")


class WorkerRun:
    """``rq worker --burst -w <class>`` in a subprocess, exactly as a user starts it."""

    def __init__(
        self, redis_url: str, worker_class: str, tmp_path: Path, statsd_port: int | None, strict: bool = True
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_", "RQ_"))}
        if statsd_port is not None:
            env.update(DD_AGENT_HOST="127.0.0.1", DD_DOGSTATSD_PORT=str(statsd_port))
        if strict:
            env["NETAUTO_STATSD_STRICT"] = "1"
        rq = str(Path(sys.executable).with_name("rq"))
        args = [rq, "worker", "--burst", "--path", str(ROOT), "-w", worker_class, "--url", redis_url, QUEUE]
        self.log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def finish(self, timeout: float = 240) -> None:
        """Wait for the burst worker to exit cleanly (kill it and fail if it does not)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker still running after {timeout}s:\n{self.log()}") from None
        assert code == 0, f"worker exited with {code}:\n{self.log()}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def exporter_total(exporter: Exporter, name: str, **labels: str) -> float:
    return exporter.value(name, queue=QUEUE, **labels)


def wait_total(exporter: Exporter, name: str, expected: float, **labels: str) -> None:
    exporter.wait_value(name, expected, timeout=15, queue=QUEUE, **labels)


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """RQ installs SIGINT/SIGTERM handlers when a worker runs in this process: put pytest's back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def all_functions() -> Iterator[None]:
    declare_job_functions(None)
    yield
    declare_job_functions(None)


# -------------------------------------------------- the forking worker, end to end
@pytest.mark.exporter
@pytest.mark.slow
def test_thousand_jobs_through_a_forking_worker_are_counted_exactly(
    exporter: Exporter, emitter_for: Any, redis_server: Any, redis_conn: Any, tmp_path: Path, all_functions: None
) -> None:
    emitter_for(exporter)  # this process enqueues; the worker process sends the rest
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    plan = (
        [Queue.prepare_data(succeed, (i,)) for i in range(900)]
        + [Queue.prepare_data(fail, (i,)) for i in range(80)]
        + [Queue.prepare_data(hang, (30,), timeout=1) for _ in range(2)]
        + [Queue.prepare_data(always_flaky, retry=Retry(max=1)) for _ in range(10)]
        + [Queue.prepare_data(flaky_once, (f"flaky:{i}",), retry=Retry(max=1)) for i in range(7)]
    )
    random.Random(5).shuffle(plan)
    jobs = queue.enqueue_many(plan[:500])
    killed = queue.enqueue(kill_self)  # mid-queue: the worker must go on after it
    jobs += queue.enqueue_many(plan[500:])
    assert len(jobs) + 1 == 1000

    WorkerRun(redis_server.url, f"{MODULE}.InstrumentedWorker", tmp_path, exporter.udp_port).finish()

    # What RQ itself says happened.
    failed_registry = Queue(QUEUE, connection=redis_conn).failed_job_registry
    assert failed_registry.count == 80 + 2 + 10 + 1
    assert Job.fetch(killed.id, connection=redis_conn).get_status() == JobStatus.FAILED

    # The exporter agrees, exactly: nothing lost across 1,017 forks.
    fn = {f.__name__: func_tag(f) for f in (succeed, fail, hang, kill_self, always_flaky, flaky_once)}
    wait_total(exporter, "netauto_rq_jobs_enqueued_total", 1000)
    wait_total(exporter, "netauto_rq_jobs_started_total", 1017)
    wait_total(exporter, "netauto_rq_jobs_finished_total", 907, status="succeeded")
    wait_total(exporter, "netauto_rq_jobs_finished_total", 93, status="failed")
    wait_total(exporter, "netauto_rq_jobs_finished_total", 17, status="retried")
    assert exporter_total(exporter, "netauto_rq_jobs_finished_total", status="stopped") == 0
    wait_total(exporter, "netauto_rq_jobs_finished_total", 1, status="failed", func=fn["kill_self"])
    wait_total(exporter, "netauto_rq_job_failures_total", 80, exception="ValueError", func=fn["fail"])
    wait_total(exporter, "netauto_rq_job_failures_total", 27, exception="RuntimeError")
    wait_total(exporter, "netauto_rq_job_failures_total", 2, exception="JobTimeoutException", func=fn["hang"])
    wait_total(exporter, "netauto_rq_job_failures_total", 1, exception=HORSE_TERMINATED, func=fn["kill_self"])
    wait_total(exporter, "netauto_rq_job_failures_total", 80 + 27 + 2 + 1)
    wait_total(exporter, "netauto_rq_job_duration_seconds_count", 1017)
    wait_total(exporter, "netauto_rq_job_wait_seconds_count", 1017)
    # The jobs' own metrics, emitted inside the horses, all arrived.
    exporter.wait_value("netauto_chunks_appended_total", 907, timeout=15, site="par1")
    # Final state reported by the worker as it left: queue drained, failures parked, nobody busy.
    wait_total(exporter, "netauto_rq_queue_jobs", 0, state="queued")
    wait_total(exporter, "netauto_rq_queue_jobs", 93, state="failed")
    wait_total(exporter, "netauto_rq_queue_jobs", 0, state="started")
    wait_total(exporter, "netauto_rq_workers", 0, state="busy")

    # Queue wait: the histogram's sum is the sum of the jobs' own started_at - enqueued_at.
    stored = Job.fetch_many([j.id for j in jobs], connection=redis_conn)
    good = [j for j in stored if j is not None and j.func_name == f"{MODULE}.succeed"]
    assert len(good) == 900
    expected = sum((j.started_at - j.enqueued_at).total_seconds() for j in good)
    got = exporter_total(exporter, "netauto_rq_job_wait_seconds_sum", func=fn["succeed"])
    assert math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-3), (got, expected)
    # ...and the duration's sum is RQ's own ended_at - started_at.
    expected = sum((j.ended_at - j.started_at).total_seconds() for j in good)
    got = exporter_total(exporter, "netauto_rq_job_duration_seconds_sum", func=fn["succeed"])
    assert math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-3), (got, expected)


@pytest.mark.exporter
def test_a_stopped_job_and_the_live_worker_and_queue_gauges(
    exporter: Exporter, emitter_for: Any, redis_server: Any, redis_conn: Any, tmp_path: Path, all_functions: None
) -> None:
    emitter_for(exporter)
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    blocker = queue.enqueue(hang, 60, job_timeout=120)
    for i in range(3):
        queue.enqueue(succeed, i)
    worker = WorkerRun(redis_server.url, f"{MODULE}.FastPollWorker", tmp_path, exporter.udp_port)
    try:
        wait_until(lambda: blocker.get_status(refresh=True) == JobStatus.STARTED, 30, "the blocking job to start")
        # While it runs, the worker reports itself busy and polls the registries.
        wait_total(exporter, "netauto_rq_workers", 1, state="busy")
        wait_total(exporter, "netauto_rq_workers", 0, state="idle")
        wait_total(exporter, "netauto_rq_queue_jobs", 3, state="queued")
        wait_total(exporter, "netauto_rq_queue_jobs", 1, state="started")
        send_stop_job_command(redis_conn, blocker.id)
        worker.finish(timeout=60)
    finally:
        worker.kill()
    assert blocker.get_status(refresh=True) == JobStatus.STOPPED
    # Only the parent saw this end: the horse was killed.
    wait_total(exporter, "netauto_rq_jobs_finished_total", 1, status="stopped", func=func_tag(hang))
    wait_total(exporter, "netauto_rq_jobs_finished_total", 3, status="succeeded")
    wait_total(exporter, "netauto_rq_job_wait_seconds_count", 4)
    assert exporter_total(exporter, "netauto_rq_job_failures_total") == 0
    wait_total(exporter, "netauto_rq_queue_jobs", 0, state="queued")
    wait_total(exporter, "netauto_rq_workers", 0, state="busy")


# ------------------------------------------------------- in-process workers
def test_queue_wait_matches_the_jobs_own_timestamps(
    statsd_recorder: Recorder, redis_conn: Any, restore_signals: None, all_functions: None
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    jobs = [queue.enqueue(succeed, i) for i in range(20)]
    InstrumentedSimpleWorker([QUEUE], connection=redis_conn).work(burst=True)

    waits = statsd_recorder.values("rq.job.wait", queue=QUEUE)
    stored = [Job.fetch(j.id, connection=redis_conn) for j in jobs]
    expected = [(j.started_at - j.enqueued_at).total_seconds() for j in stored]
    assert len(waits) == len(expected) == 20
    for got, want in zip(waits, expected, strict=True):  # FIFO: same order
        assert got == pytest.approx(want, abs=1e-6)
    # Every job waited (for those before it). Not "sorted": under load one enqueue can take
    # longer than running the job before it, so a later job may wait less.
    assert all(w > 0 for w in waits)


def test_simple_worker_outcomes(
    statsd_recorder: Recorder, redis_conn: Any, restore_signals: None, all_functions: None
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(succeed, 1)
    queue.enqueue(fail, 2)
    queue.enqueue(always_flaky, retry=Retry(max=1))
    queue.enqueue(flaky_once, "simple-flaky", retry=Retry(max=2))
    queue.enqueue(hang, 30, job_timeout=1)
    worker = InstrumentedSimpleWorker([QUEUE], connection=redis_conn)
    worker.metrics_poll_interval = 0.05
    worker.work(burst=True)

    rec = statsd_recorder
    assert rec.total("rq.job.enqueued") == 5
    assert rec.total("rq.job.started") == 7
    assert rec.total("rq.job.finished", status="succeeded") == 2
    assert rec.total("rq.job.finished", status="failed") == 3
    assert rec.total("rq.job.finished", status="retried") == 2
    assert rec.total("rq.job.failure", exception="ValueError") == 1
    assert rec.total("rq.job.failure", exception="RuntimeError") == 3
    assert rec.total("rq.job.failure", exception="JobTimeoutException") == 1
    assert rec.count("rq.job.duration") == rec.count("rq.job.wait") == 7
    timed_out = rec.values("rq.job.duration", func=func_tag(hang))
    assert len(timed_out) == 1 and 1.0 <= timed_out[0] < 5.0
    # The worker left: not busy, not idle; the queue's last reported state is drained.
    assert rec.gauge("rq.workers", state="busy") == 0
    assert rec.gauge("rq.workers", state="idle") == 0
    assert rec.gauge("rq.queue.jobs", queue=QUEUE, state="queued") == 0
    assert rec.gauge("rq.queue.jobs", queue=QUEUE, state="failed") == 3


def test_a_job_that_cannot_be_read_is_failed_by_rq_and_counted_as_other(
    statsd_recorder: Recorder, redis_conn: Any, restore_signals: None, all_functions: None
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    broken = queue.enqueue(succeed, 1)
    redis_conn.hset(broken.key, "data", b"not a pickle")
    queue.enqueue(succeed, 2)
    InstrumentedSimpleWorker([QUEUE], connection=redis_conn).work(burst=True)

    assert broken.get_status(refresh=True) == JobStatus.FAILED
    assert statsd_recorder.total("rq.job.finished", status="failed", func="other") == 1
    assert statsd_recorder.total("rq.job.finished", status="succeeded", func=func_tag(succeed)) == 1


# ---------------------------------------------------------------- enqueue
def test_every_enqueue_entry_point_counts_each_job_once(
    statsd_recorder: Recorder, redis_conn: Any, all_functions: None
) -> None:
    from datetime import timedelta

    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(succeed, 1)
    queue.enqueue_call(succeed, args=(2,))
    queue.enqueue_in(timedelta(minutes=5), succeed, 3)
    queue.enqueue_many([Queue.prepare_data(succeed, (i,)) for i in range(4)])
    queue.enqueue_job(Job.create(succeed, args=(9,), connection=redis_conn))
    with redis_conn.pipeline() as pipe:
        queue.enqueue(succeed, 10, pipeline=pipe)
        pipe.execute()
    assert statsd_recorder.total("rq.job.enqueued", queue=QUEUE, func=func_tag(succeed)) == 9
    assert len(queue) + queue.scheduled_job_registry.count == 9

    declare_job_functions({f"{MODULE}.fail"})
    queue.enqueue(succeed, 11)
    queue.enqueue(fail, 12)
    assert statsd_recorder.total("rq.job.enqueued", func="other") == 1
    assert statsd_recorder.total("rq.job.enqueued", func=func_tag(fail)) == 1


def test_spawn_worker_is_refused(redis_conn: Any) -> None:
    class SpawnedWithMetrics(WorkerMetricsMixin, SpawnWorker):
        pass

    with pytest.raises(TypeError, match="SpawnWorker"):
        SpawnedWithMetrics([QUEUE], connection=redis_conn)


# ------------------------------------------------------ metrics backend down
def _outcomes(redis_conn: Any, jobs: list[Job]) -> list[tuple[str, str, Any, str]]:
    out = []
    for job in jobs:
        job = Job.fetch(job.id, connection=redis_conn)
        result = job.latest_result()
        last_line = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        out.append((job.func_name or "", job.get_status().value, job.return_value(), "".join(last_line)))
    return out


def _run_mix(
    redis_url: str, redis_conn: Any, queue_class: type[Queue], worker_class: str, tmp_path: Path, port: int | None
) -> list[Any]:
    redis_conn.flushall()
    queue = queue_class(QUEUE, connection=redis_conn)
    jobs = [queue.enqueue(succeed, i, job_id=f"ok-{i}") for i in range(5)]
    jobs += [queue.enqueue(fail, i, job_id=f"fail-{i}") for i in range(3)]
    jobs.append(queue.enqueue(kill_self, job_id="killed"))
    jobs.append(queue.enqueue(always_flaky, job_id="flaky", retry=Retry(max=1)))
    WorkerRun(redis_url, worker_class, tmp_path, port, strict=False).finish()
    return _outcomes(redis_conn, jobs)


def test_jobs_behave_the_same_when_the_metrics_backend_is_down(
    redis_server: Any, redis_conn: Any, tmp_path: Path, all_functions: None
) -> None:
    import socket

    nobody = free_port(socket.SOCK_DGRAM)  # nothing listens there: every datagram bounces
    emitter = Emitter(Settings(host="127.0.0.1", port=nobody, flush_interval=0.05))
    previous = set_emitter(emitter)
    try:
        with_metrics = _run_mix(
            redis_server.url, redis_conn, InstrumentedQueue, f"{MODULE}.InstrumentedWorker", tmp_path, nobody
        )
        emitter.flush()
    finally:
        set_emitter(previous)
        emitter.close()
    without = _run_mix(redis_server.url, redis_conn, Queue, "rq.Worker", tmp_path, None)
    assert with_metrics == without
    assert [o[1] for o in without] == ["finished"] * 5 + ["failed"] * 5
