"""RQ figures, exactly: workers run in this process against a real redis-server.

A forking ``InstrumentedWorker`` run here forks real work horses, as ``rq
worker`` does; running it in the test's process lets the figures be compared
one by one with what RQ stored in Redis (and lets mutation testing see which
test covers which line). Job functions come from ``test_rq``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rq import Repeat, Retry, SimpleWorker, get_current_job
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus
from rq.worker import SpawnWorker

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from netauto_statsd.integrations._process import is_short_lived
from netauto_statsd.integrations.rq import (
    HORSE_TERMINATED,
    InstrumentedQueue,
    InstrumentedSimpleWorker,
    InstrumentedWorker,
    RQInstrumentor,
    WorkerMetrics,
    WorkerMetricsMixin,
)
from netauto_statsd.tags import normalise_value
from netauto_statsd.testing import Recorder
from tests.runtime.core.wire import UdpSink, flushed, values_of
from tests.runtime.integrations.conftest import REDIS_HOW, RedisServer
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
from tests.support import require_binary, wait_until

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


OTHER_QUEUE = "netauto-low"


def stored(redis_conn: Any, job: Job) -> Job:
    return Job.fetch(job.id, connection=redis_conn)


def wait_of(job: Job) -> float:
    assert job.started_at is not None and job.enqueued_at is not None
    return (job.started_at - job.enqueued_at).total_seconds()


# ------------------------------------------------------------------ the queue poll
def test_the_queue_poll_reports_every_registry_of_every_queue_exactly(
    statsd_recorder: Recorder,
    redis_conn: Any,
    all_functions: None,  # noqa: F811
) -> None:
    first = InstrumentedQueue(QUEUE, connection=redis_conn)
    second = InstrumentedQueue(OTHER_QUEUE, connection=redis_conn)
    parent = first.enqueue(succeed, 1)
    first.enqueue(succeed, 2)
    first.enqueue(succeed, 3)
    first.enqueue(succeed, 4, depends_on=parent)  # deferred until its parent finishes
    first.enqueue_in(timedelta(minutes=5), succeed, 5)
    first.enqueue_in(timedelta(minutes=6), succeed, 6)
    second.enqueue(succeed, 7)
    # Registries as RQ's workers fill them (sorted sets of job ids): counted, never read.
    redis_conn.zadd(second.started_job_registry.key, {"a": 1e12, "b": 1e12})
    redis_conn.zadd(second.failed_job_registry.key, {"c": 1e12, "d": 1e12, "e": 1e12, "f": 1e12})
    worker = InstrumentedSimpleWorker([first, second], connection=redis_conn)

    worker.netauto_metrics.poll()

    expected = {
        (QUEUE, "queued"): 3,
        (QUEUE, "started"): 0,
        (QUEUE, "failed"): 0,
        (QUEUE, "deferred"): 1,
        (QUEUE, "scheduled"): 2,
        (OTHER_QUEUE, "queued"): 1,
        (OTHER_QUEUE, "started"): 2,
        (OTHER_QUEUE, "failed"): 4,
        (OTHER_QUEUE, "deferred"): 0,
        (OTHER_QUEUE, "scheduled"): 0,
    }
    got = {(s.tags["queue"], s.tags["state"]): s.value for s in statsd_recorder.find("rq.queue.jobs")}
    assert got == expected
    assert statsd_recorder.count("rq.queue.jobs") == 10  # one set per queue and state
    assert all(isinstance(s.value, int) for s in statsd_recorder.find("rq.queue.jobs"))


def test_the_worker_reports_itself_busy_idle_and_gone_on_each_of_its_queues(
    statsd_recorder: Recorder, redis_conn: Any
) -> None:
    worker = InstrumentedSimpleWorker([QUEUE, OTHER_QUEUE], connection=redis_conn)
    metrics: WorkerMetrics = worker.netauto_metrics

    def states() -> dict[tuple[str, str], float | None]:
        return {
            (queue, state): statsd_recorder.gauge("rq.workers", queue=queue, state=state)
            for queue in (QUEUE, OTHER_QUEUE)
            for state in ("busy", "idle")
        }

    metrics.set_state(busy=True)
    assert states() == {(QUEUE, "busy"): 1, (QUEUE, "idle"): 0, (OTHER_QUEUE, "busy"): 1, (OTHER_QUEUE, "idle"): 0}
    metrics.set_state(busy=False)
    assert states() == {(QUEUE, "busy"): 0, (QUEUE, "idle"): 1, (OTHER_QUEUE, "busy"): 0, (OTHER_QUEUE, "idle"): 1}
    metrics.set_state(None)
    assert states() == {(QUEUE, "busy"): 0, (QUEUE, "idle"): 0, (OTHER_QUEUE, "busy"): 0, (OTHER_QUEUE, "idle"): 0}
    assert statsd_recorder.count("rq.workers") == 12


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


# ------------------------------------------------------------------ enqueue keywords
def test_enqueue_at_and_enqueue_many_pass_their_keywords_to_rq_and_count_each_job(
    statsd_recorder: Recorder,
    redis_conn: Any,
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    at = queue.enqueue_at(datetime.now(timezone.utc) + timedelta(minutes=5), succeed, 1, job_id="the-scheduled-one")
    many = queue.enqueue_many(
        [InstrumentedQueue.prepare_data(succeed, (i,), job_id=f"many-{i}") for i in range(3)], group_id="the-group"
    )

    assert at.id == "the-scheduled-one"
    assert queue.scheduled_job_registry.get_job_ids() == ["the-scheduled-one"]
    assert [job.id for job in many] == ["many-0", "many-1", "many-2"]
    assert {job.group_id for job in many} == {"the-group"}
    assert statsd_recorder.total("rq.job.enqueued", queue=QUEUE, func=func_tag(succeed)) == 4


# ------------------------------------------------------------------ uninstall
def test_uninstalling_a_running_worker_stops_its_poller_reports_it_gone_and_removes_its_handler(
    statsd_recorder: Recorder, redis_conn: Any
) -> None:
    def theirs(job: Job, *exc_info: Any) -> bool:
        return False  # stops RQ's handler chain: ours must run before it

    worker = InstrumentedSimpleWorker([QUEUE], connection=redis_conn, exception_handlers=[theirs])
    metrics: WorkerMetrics = worker.netauto_metrics
    assert RQInstrumentor().is_installed(worker)
    assert worker._exc_handlers == [metrics.on_exception, theirs]
    metrics.start()
    assert metrics.poller is not None and metrics.poller.is_alive()
    assert statsd_recorder.gauge("rq.workers", queue=QUEUE, state="idle") == 1

    RQInstrumentor().uninstall(worker)

    assert not metrics.poller.is_alive()
    assert metrics.running is False
    assert statsd_recorder.gauge("rq.workers", queue=QUEUE, state="idle") == 0
    assert statsd_recorder.gauge("rq.workers", queue=QUEUE, state="busy") == 0
    assert worker._exc_handlers == [theirs]
    assert "netauto_metrics" not in vars(worker)
    assert not RQInstrumentor().is_installed(worker)
    RQInstrumentor().uninstall(worker)  # a second time: nothing left to remove


# ------------------------------------------------------------------ the poller
def test_the_poller_polls_every_interval_in_a_daemon_thread_until_the_worker_stops(
    statsd_recorder: Recorder,
    redis_conn: Any,
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    queue.enqueue(succeed, 1)
    queue.enqueue(succeed, 2)
    worker = InstrumentedSimpleWorker([QUEUE], connection=redis_conn)
    metrics: WorkerMetrics = worker.netauto_metrics
    metrics.poll_interval = 0.02

    metrics.start()
    assert statsd_recorder.values("rq.workers", queue=QUEUE, state="idle") == [1]
    assert statsd_recorder.values("rq.workers", queue=QUEUE, state="busy") == [0]
    poller = metrics.poller
    assert poller is not None and poller.name == "netauto-rq-poller" and poller.daemon and poller.is_alive()
    wait_until(lambda: statsd_recorder.count("rq.queue.jobs", state="queued") >= 3, 10, "three polls")
    metrics.finish()

    assert not poller.is_alive()
    assert set(statsd_recorder.values("rq.queue.jobs", queue=QUEUE, state="queued")) == {2}
    after = len(statsd_recorder.samples)
    metrics.finish()  # teardown and work()'s own finally both call it: the second does nothing
    assert len(statsd_recorder.samples) == after
    assert get_emitter().stats()["internal_errors"] == 0


def test_with_redis_gone_each_failed_poll_is_counted_and_logged_and_the_worker_still_reports_itself_gone(
    statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    server = RedisServer(require_binary("redis-server", REDIS_HOW), tmp_path)  # this test's own, stopped below
    try:
        worker = InstrumentedSimpleWorker([QUEUE], connection=server.client())
    finally:
        server.stop()  # Redis goes away under the worker
    metrics: WorkerMetrics = worker.netauto_metrics
    metrics.poll_interval = 0.01
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")

    metrics.start()
    wait_until(lambda: get_emitter().stats()["internal_errors"] >= 2, 10, "two failed polls")
    metrics.finish()

    errors = get_emitter().stats()["internal_errors"]
    lines = [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"]
    assert len(lines) == errors
    assert all(line.startswith("netauto_statsd: rq queue poll failed: ") for line in lines), lines[:3]
    assert statsd_recorder.count("rq.queue.jobs") == 0
    assert statsd_recorder.gauge("rq.workers", queue=QUEUE, state="busy") == 0
    assert statsd_recorder.gauge("rq.workers", queue=QUEUE, state="idle") == 0


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


def test_a_worker_whose_redis_is_gone_when_it_starts_still_reports_itself_gone(
    statsd_recorder: Recorder, tmp_path: Path
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    server = RedisServer(require_binary("redis-server", REDIS_HOW), tmp_path)
    try:
        worker = InstrumentedSimpleWorker([QUEUE], connection=server.client())
    finally:
        server.stop()
    with pytest.raises(RedisConnectionError):
        worker.work(burst=True)  # RQ's bootstrap fails: its own teardown never runs
    poller = worker.netauto_metrics.poller
    assert poller is not None and not poller.is_alive()
    assert statsd_recorder.values("rq.workers", queue=QUEUE, state="idle") == [1, 0]
    assert statsd_recorder.values("rq.workers", queue=QUEUE, state="busy") == [0, 0]


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


class SlowPollWorker(InstrumentedSimpleWorker):
    metrics_poll_interval = 0.75


def test_the_poll_interval_comes_from_the_worker_class_or_defaults_to_five_seconds(
    redis_conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    assert SlowPollWorker([QUEUE], connection=redis_conn).netauto_metrics.poll_interval == 0.75
    assert InstrumentedSimpleWorker([QUEUE], connection=redis_conn).netauto_metrics.poll_interval == 5.0
    plain = SimpleWorker([QUEUE], connection=redis_conn)  # a worker class of the app's own
    RQInstrumentor().install(plain)
    try:
        assert plain.netauto_metrics.poll_interval == 5.0
    finally:
        RQInstrumentor().uninstall(plain)
    # annotations are off unless asked for: nothing configured, nothing said
    assert [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"] == []


def test_a_spawn_worker_is_refused_with_the_reason(redis_conn: Any) -> None:
    class SpawnedWithMetrics(WorkerMetricsMixin, SpawnWorker):
        pass

    with pytest.raises(TypeError) as refused:
        SpawnedWithMetrics([QUEUE], connection=redis_conn)
    assert str(refused.value) == "WorkerMetricsMixin needs a forking or simple worker; SpawnWorker is not supported"


def test_enqueue_options_reach_rq_and_each_job_is_counted_once_from_any_thread(
    statsd_recorder: Recorder,
    redis_conn: Any,
    all_functions: None,  # noqa: F811
) -> None:
    queue = InstrumentedQueue(QUEUE, connection=redis_conn)
    first = queue.enqueue(succeed, 1)
    front = queue.enqueue(succeed, 2, at_front=True)
    assert queue.job_ids == [front.id, first.id]
    with redis_conn.pipeline() as pipe:
        queued_later = queue.enqueue(succeed, 3, pipeline=pipe)
        assert queue.job_ids == [front.id, first.id]  # not before the pipeline runs
        pipe.execute()
    assert queue.job_ids == [front.id, first.id, queued_later.id]

    made: list[Job] = []
    errors: list[BaseException] = []

    def enqueue_from_a_new_thread() -> None:
        try:
            made.append(InstrumentedQueue(QUEUE, connection=redis_conn).enqueue(succeed, 4))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=enqueue_from_a_new_thread)
    thread.start()
    thread.join()
    assert errors == [] and len(made) == 1
    assert statsd_recorder.total("rq.job.enqueued", queue=QUEUE, func=func_tag(succeed)) == 4


def test_uninstalling_a_worker_that_never_worked_sends_nothing(statsd_recorder: Recorder, redis_conn: Any) -> None:
    worker = InstrumentedSimpleWorker([QUEUE], connection=redis_conn)
    RQInstrumentor().uninstall(worker)
    assert statsd_recorder.samples == []
    assert not RQInstrumentor().is_installed(worker)
