"""RQ job outcomes, exactly: workers run in this process against a real redis-server.

A forking ``InstrumentedWorker`` run here forks real work horses, as ``rq
worker`` does; running it in the test's process lets the figures be compared
one by one with what RQ stored in Redis (and lets mutation testing see which
test covers which line). Job functions come from ``test_rq`` and this module.
The worker's own state (gauges, poller, install) is in ``test_rq_worker_state``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from rq import Repeat, Retry, get_current_job
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from netauto_statsd.integrations._process import is_short_lived
from netauto_statsd.integrations.rq import (
    HORSE_TERMINATED,
    InstrumentedQueue,
    InstrumentedSimpleWorker,
    InstrumentedWorker,
)
from netauto_statsd.tags import normalise_value
from netauto_statsd.testing import Recorder
from tests.runtime.core.wire import UdpSink, flushed, values_of
from tests.runtime.integrations.test_rq import (
    QUEUE,
    all_functions,  # noqa: F401 - fixture
    always_flaky,
    fail,
    func_tag,
    hang,
    kill_self,
    restore_signals,  # noqa: F401 - fixture
    succeed,
)
from tests.support import wait_until

pytestmark = [pytest.mark.redis]

MODULE = "tests.runtime.integrations.test_rq_figures"


class RefusDuRouteurDuSiteDeParisPendantLaCollecteDesConfigurationsDuéseau(Exception):  # noqa: N818
    """An exception class whose UTF-8 name is longer than 64 bytes and has a 2-byte letter at bytes 63-64."""


def refuse_with_a_long_name() -> None:
    raise RefusDuRouteurDuSiteDeParisPendantLaCollecteDesConfigurationsDuéseau("no")


def delete_self_then_die() -> None:
    """A job deleted from Redis by the app while it runs, whose horse then dies unseen."""
    job = get_current_job()
    assert job is not None
    job.delete()
    os.kill(os.getpid(), signal.SIGKILL)


def ask_for_a_retry() -> Retry:
    """A job that asks RQ to run it again by returning ``Retry`` (no exception)."""
    return Retry(max=1)


def stored(redis_conn: Any, job: Job) -> Job:
    return Job.fetch(job.id, connection=redis_conn)


def wait_of(job: Job) -> float:
    assert job.started_at is not None and job.enqueued_at is not None
    return (job.started_at - job.enqueued_at).total_seconds()


# ------------------------------------------------ a forking worker in this process
def test_a_forking_worker_reports_what_each_horse_saw_and_what_redis_recorded_for_killed_horses(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    good = queue.enqueue(succeed, 1)
    bad = queue.enqueue(fail, 2)
    killed = queue.enqueue(kill_self)
    flaky = queue.enqueue(always_flaky, retry=Retry(max=1))
    InstrumentedWorker([QUEUE], connection=redis_conn).work(burst=True)

    rec = statsd_recorder
    jobs = {name: stored(redis_conn, job) for name, job in (("good", good), ("bad", bad), ("killed", killed))}
    assert jobs["good"].get_status() == JobStatus.FINISHED
    assert jobs["bad"].get_status() == JobStatus.FAILED
    assert jobs["killed"].get_status() == JobStatus.FAILED
    assert stored(redis_conn, flaky).get_status() == JobStatus.FAILED

    assert rec.total("rq.job.started") == 5  # the flaky job twice
    assert rec.total("rq.job.finished", status="succeeded", func=func_tag(succeed)) == 1
    assert rec.total("rq.job.finished", status="failed", func=func_tag(fail)) == 1
    assert rec.total("rq.job.finished", status="failed", func=func_tag(kill_self)) == 1
    assert rec.total("rq.job.finished", status="retried", func=func_tag(always_flaky)) == 1
    assert rec.total("rq.job.finished", status="failed", func=func_tag(always_flaky)) == 1
    assert rec.total("rq.job.finished") == 5
    assert rec.total("rq.job.failure", exception="ValueError", func=func_tag(fail)) == 1
    assert rec.total("rq.job.failure", exception=HORSE_TERMINATED, func=func_tag(kill_self)) == 1
    assert rec.total("rq.job.failure", exception="RuntimeError", func=func_tag(always_flaky)) == 2
    assert rec.total("rq.job.failure") == 4
    # What the horse saw: RQ's own timestamps, exactly; the killed horse: what Redis holds.
    good_job = jobs["good"]
    assert good_job.ended_at is not None and good_job.started_at is not None
    assert rec.values("rq.job.duration", func=func_tag(succeed), status="succeeded") == [
        pytest.approx((good_job.ended_at - good_job.started_at).total_seconds(), abs=1e-6)
    ]
    for name, function in (("good", succeed), ("bad", fail), ("killed", kill_self)):
        assert rec.values("rq.job.wait", func=func_tag(function)) == [pytest.approx(wait_of(jobs[name]), abs=1e-6)]
    assert rec.count("rq.job.duration") == rec.count("rq.job.wait") == 5
    killed_duration = rec.values("rq.job.duration", func=func_tag(kill_self))
    assert len(killed_duration) == 1 and 0 < killed_duration[0] < 60
    # Busy per job, idle after each, gone at the end.
    assert rec.values("rq.workers", queue=QUEUE, state="busy") == [0] + [1, 0] * 5 + [0]
    assert rec.values("rq.workers", queue=QUEUE, state="idle") == [1] + [0, 1] * 5 + [0]
    assert get_emitter().stats()["internal_errors"] == 0  # teardown's flushes and polls included


def test_a_retried_job_whose_horse_was_killed_is_reported_retried_by_what_redis_recorded(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    job = queue.enqueue(kill_self, retry=Retry(max=1))
    InstrumentedWorker([QUEUE], connection=redis_conn).work(True)  # burst, given by position

    assert stored(redis_conn, job).get_status() == JobStatus.FAILED
    rec = statsd_recorder
    assert rec.total("rq.job.started") == 2
    assert rec.total("rq.job.finished", status="retried") == 1
    assert rec.total("rq.job.finished", status="failed") == 1
    assert rec.total("rq.job.failure", exception=HORSE_TERMINATED) == 2
    assert rec.count("rq.job.wait") == 2


def test_a_stopped_job_in_a_forking_worker_is_reported_stopped_without_a_failure(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    blocker = queue.enqueue(hang, 60, job_timeout=120)
    queue.enqueue(succeed, 1)

    def stop_when_started() -> None:
        wait_until(lambda: blocker.get_status(refresh=True) == JobStatus.STARTED, 30, "the blocking job to start")
        send_stop_job_command(redis_conn, blocker.id)

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    try:
        InstrumentedWorker([QUEUE], connection=redis_conn).work(burst=True)
    finally:
        stopper.join()

    assert blocker.get_status(refresh=True) == JobStatus.STOPPED
    rec = statsd_recorder
    assert rec.total("rq.job.finished", status="stopped", func=func_tag(hang)) == 1
    assert rec.total("rq.job.finished", status="succeeded", func=func_tag(succeed)) == 1
    assert rec.total("rq.job.finished") == 2
    assert rec.total("rq.job.failure") == 0
    assert rec.values("rq.job.wait", func=func_tag(hang)) == [
        pytest.approx(wait_of(stored(redis_conn, blocker)), abs=1e-6)
    ]


# ------------------------------------------------------- what reaches the wire from a horse
def test_a_horse_flushes_the_jobs_own_metrics_before_rq_ends_it_and_the_worker_sends_the_outcome(
    redis_conn: Any,
    tmp_path: Path,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, flush_interval=60, strict=True))
    previous = set_emitter(emitter)
    try:
        queue = InstrumentedQueue(QUEUE, connection=redis_conn)
        for i in range(3):
            queue.enqueue(succeed, i)
        InstrumentedWorker([QUEUE], connection=redis_conn).work(burst=True)
        lines = flushed(emitter, sink)
    finally:
        set_emitter(previous)
        emitter.close()
        sink.close()
    # each job's own chunk, sent by its horse (which RQ ends with os._exit: only its flush sends it)
    assert sum(values_of(lines, "chunk.appended", site="par1", protocol="ssh")) == 3
    # the outcomes, sent by the worker (this process)
    assert sum(values_of(lines, "rq.job.finished", queue=QUEUE, status="succeeded")) == 3
    assert sum(values_of(lines, "rq.job.enqueued", queue=QUEUE)) == 3


def test_a_job_performed_outside_execute_job_is_reported_directly(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    good, bad = queue.enqueue(succeed, 1), queue.enqueue(fail, 2)
    worker = InstrumentedSimpleWorker([QUEUE], connection=redis_conn)
    for job in (good, bad):
        execution = worker.prepare_execution(job)  # RQ 3 (the pinned test version): its own steps first
        worker.prepare_job_execution(job)
        if job is good:
            worker.perform_job(job, queue, execution)
        else:
            worker.perform_job(job=job, queue=queue, execution=execution)  # by keyword

    assert not is_short_lived()  # performed in the worker's own process: not a work horse
    rec = statsd_recorder
    assert rec.total("rq.job.started") == 0  # execute_job never ran
    assert rec.total("rq.job.finished", status="succeeded", func=func_tag(succeed)) == 1
    assert rec.total("rq.job.finished", status="failed", func=func_tag(fail)) == 1
    assert rec.total("rq.job.failure", exception="ValueError", func=func_tag(fail)) == 1
    assert rec.total("rq.job.failure") == 1  # the good job reported no failure
    stored_good = stored(redis_conn, good)
    assert stored_good.ended_at is not None and stored_good.started_at is not None
    assert rec.values("rq.job.duration", func=func_tag(succeed)) == [
        pytest.approx((stored_good.ended_at - stored_good.started_at).total_seconds(), abs=1e-6)
    ]
    assert rec.values("rq.job.wait", func=func_tag(fail)) == [pytest.approx(wait_of(stored(redis_conn, bad)), abs=1e-6)]


def test_a_job_repeated_after_success_is_reported_succeeded_each_time(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(succeed, 1, repeat=Repeat(times=1))
    InstrumentedSimpleWorker([QUEUE], connection=redis_conn).work(burst=True)

    rec = statsd_recorder
    assert rec.total("rq.job.started") == 2
    assert rec.total("rq.job.finished", status="succeeded", func=func_tag(succeed)) == 2
    assert rec.total("rq.job.finished") == 2
    assert rec.total("rq.job.failure") == 0


def test_a_job_returning_retry_is_reported_retried_then_as_rq_ends_it(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    job = queue.enqueue(ask_for_a_retry, retry=Retry(max=1))
    InstrumentedSimpleWorker([QUEUE], connection=redis_conn).work(burst=True)

    assert stored(redis_conn, job).get_status() == JobStatus.FAILED  # no retry left the second time
    rec = statsd_recorder
    func = normalise_value(f"{MODULE}.ask_for_a_retry")
    assert rec.total("rq.job.started", func=func) == 2
    assert rec.total("rq.job.finished", status="retried", func=func) == 1
    assert rec.total("rq.job.finished", status="failed", func=func) == 1
    assert rec.total("rq.job.finished") == 2
    assert rec.total("rq.job.failure") == 0  # it raised nothing


def test_a_long_non_ascii_exception_name_is_cut_at_64_bytes_and_still_reported(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    name = RefusDuRouteurDuSiteDeParisPendantLaCollecteDesConfigurationsDuéseau.__name__
    cut = name.encode("utf-8")[:64]
    assert len(name.encode("utf-8")) > 64 and cut.decode("utf-8", "replace").endswith("\ufffd")
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(refuse_with_a_long_name)
    InstrumentedWorker([QUEUE], connection=redis_conn).work(burst=True)  # the name crosses the horse's page

    expected = normalise_value(cut.decode("utf-8", "replace"))
    assert statsd_recorder.total("rq.job.failure", exception=expected) == 1
    assert statsd_recorder.total("rq.job.finished", status="failed") == 1
    assert get_emitter().stats()["internal_errors"] == 0


def test_a_job_deleted_while_its_horse_dies_is_reported_failed_without_a_wait(
    statsd_recorder: Recorder,
    redis_conn: Any,
    restore_signals: None,  # noqa: F811
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(delete_self_then_die)
    InstrumentedWorker([QUEUE], connection=redis_conn).work(burst=True)

    rec = statsd_recorder
    func = normalise_value(f"{MODULE}.delete_self_then_die")
    assert rec.total("rq.job.finished", status="failed", func=func) == 1
    assert rec.total("rq.job.failure", exception=HORSE_TERMINATED, func=func) == 1
    assert rec.count("rq.job.duration", func=func) == 1
    assert rec.count("rq.job.wait") == 0  # nothing left in Redis to read it from
    assert get_emitter().stats()["internal_errors"] == 0
