"""RQ worker lifecycle: a SIGKILLed worker's job, work horses and per-process gauges, shutdown flush.

Real redis-server, real ``rq worker`` processes and the real statsd_exporter. The
job functions are imported by the worker subprocesses as
``tests.runtime.integrations.test_rq_lifecycle.<name>``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rq import Worker
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, text

from netauto_statsd.integrations.rq import (
    ABANDONED,
    InstrumentedQueue,
    InstrumentedSimpleWorker,
    InstrumentedWorker,
    WorkerMetrics,
    WorkerMetricsMixin,
)
from netauto_statsd.integrations.sqlalchemy import instrument_engine
from netauto_statsd.testing import Recorder
from tests.runtime.integrations.test_rq import (
    QUEUE,
    WorkerRun,
    all_functions,  # noqa: F401 - fixture
    func_tag,
    hang,
    restore_signals,  # noqa: F401 - fixture
    succeed,
)
from tests.support import ROOT, Exporter, wait_until

pytestmark = [pytest.mark.redis]

MODULE = "tests.runtime.integrations.test_rq_lifecycle"


def query_in_its_own_engine(path: str) -> int:
    """A job that creates, instruments and uses its own engine, inside the work horse."""
    engine = create_engine(f"sqlite:///{path}")
    instrument_engine(engine, "default")
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("select 1")).scalar_one())
    finally:
        engine.dispose()


class LongRunningWorker:
    """``rq worker`` (not burst) in its own process group, as a supervisor runs it."""

    def __init__(self, redis_url: str, tmp_path: Path, env_overrides: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_", "RQ_"))}
        env.update(env_overrides)
        rq = str(Path(sys.executable).with_name("rq"))
        args = [rq, "worker", "--path", str(ROOT), "-w", f"{MODULE}.InstrumentedWorker", "--url", redis_url, QUEUE]
        self.log_path = tmp_path / "worker.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill_group(self) -> None:
        """SIGKILL the worker and its horse: no handler, no teardown, nothing reported."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def test_a_job_whose_worker_was_sigkilled_is_reported_abandoned_by_registry_cleanup(
    statsd_recorder: Recorder,
    redis_server: Any,
    redis_conn: Any,
    tmp_path: Path,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    job = queue.enqueue(hang, 60, job_timeout=120)
    worker = LongRunningWorker(redis_server.url, tmp_path, {"DD_DOGSTATSD_DISABLE": "1"})
    try:
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 30, "the job to start")
    finally:
        worker.kill_group()
    # The worker is gone mid-job: RQ still says "started" and nobody reported an end.
    assert job.get_status(refresh=True) == JobStatus.STARTED
    assert statsd_recorder.total("rq.job.finished") == 0
    # Time passes (the execution's heartbeat expires): moved into the past instead of waiting.
    registry = StartedJobRegistry(QUEUE, connection=redis_conn)
    for member in redis_conn.zrange(registry.key, 0, -1):
        redis_conn.zadd(registry.key, {member: 1})

    cleaner = InstrumentedSimpleWorker([QUEUE], connection=redis_conn)
    cleaner.clean_registries()  # what a live worker's maintenance runs

    assert Job.fetch(job.id, connection=redis_conn).get_status() == JobStatus.FAILED
    assert statsd_recorder.total("rq.job.finished", status=ABANDONED, func=func_tag(hang)) == 1
    assert statsd_recorder.total("rq.job.failure", exception="AbandonedJobError", func=func_tag(hang)) == 1
    assert statsd_recorder.count("rq.job.wait") == 1
    assert statsd_recorder.count("rq.job.duration") == 0  # unknown: nobody saw it end


@pytest.mark.exporter
def test_engines_created_in_work_horses_send_no_per_process_pool_gauges(
    exporter: Exporter,
    emitter_for: Any,
    redis_server: Any,
    redis_conn: Any,
    tmp_path: Path,
    all_functions: None,  # noqa: F811
) -> None:
    emitter_for(exporter)
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    for i in range(4):
        queue.enqueue(query_in_its_own_engine, str(tmp_path / f"job-{i}.db"))
    WorkerRun(redis_server.url, f"{MODULE}.InstrumentedWorker", tmp_path, exporter.udp_port).finish()

    # The statements are counted (counters add up across horses)...
    exporter.wait_value("netauto_db_queries_total", 4, timeout=15, pool="default")
    exporter.wait_value("netauto_rq_jobs_finished_total", 4, timeout=15, status="succeeded")
    # ...but no horse left a per-process pool series behind (one per job would pile up).
    processes = {labels.get("process") for _, labels, _ in exporter.samples("netauto_db_pool_connections")}
    assert processes == set(), processes


@pytest.mark.exporter
def test_sigterm_flushes_the_workers_last_window(
    exporter: Exporter,
    emitter_for: Any,
    redis_server: Any,
    redis_conn: Any,
    tmp_path: Path,
    all_functions: None,  # noqa: F811
) -> None:
    emitter_for(exporter)
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    jobs = [queue.enqueue(succeed, i) for i in range(7)]
    env = {
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(exporter.udp_port),
        "NETAUTO_STATSD_FLUSH_INTERVAL": "60",  # the longest allowed: only the shutdown flush delivers
    }
    worker = LongRunningWorker(redis_server.url, tmp_path, env)
    try:
        wait_until(
            lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in jobs), 60, "the jobs to finish"
        )
        worker.proc.send_signal(signal.SIGTERM)  # warm shutdown, as docker stop / systemd do
        assert worker.proc.wait(30) == 0, worker.log()
    finally:
        worker.kill_group()
    exporter.wait_value("netauto_rq_jobs_started_total", 7, timeout=15, queue=QUEUE)
    exporter.wait_value("netauto_rq_jobs_finished_total", 7, timeout=15, queue=QUEUE, status="succeeded")
    exporter.wait_value("netauto_rq_workers", 0, timeout=15, queue=QUEUE, state="idle")


def test_the_worker_keeps_its_state_in_one_collaborator(redis_conn: Any) -> None:
    # The mixin only overrides RQ's own methods; its one new class attribute is the poll setting.
    new_names = {n for n in vars(WorkerMetricsMixin) if not n.startswith("__")} - set(dir(Worker))
    assert new_names == {"metrics_poll_interval"}, new_names
    worker = InstrumentedWorker([QUEUE], connection=redis_conn)
    assert [n for n in vars(worker) if "netauto" in n] == ["netauto_metrics"]
    assert isinstance(worker.netauto_metrics, WorkerMetrics)
