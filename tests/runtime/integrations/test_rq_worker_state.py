"""An RQ worker's own state, exactly: queue and worker gauges, the poller, install and uninstall, enqueue.

Workers built in this process against a real redis-server (a throwaway one,
stopped under the worker, where Redis going away is what is tested).
Job outcomes are in ``test_rq_figures``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.worker import SpawnWorker

from netauto_statsd.emitter import get_emitter
from netauto_statsd.integrations.rq import (
    InstrumentedQueue,
    InstrumentedSimpleWorker,
    RQInstrumentor,
    WorkerMetrics,
    WorkerMetricsMixin,
)
from netauto_statsd.testing import Recorder
from tests.runtime.integrations.conftest import REDIS_HOW, RedisServer
from tests.runtime.integrations.test_rq import (
    QUEUE,
    all_functions,  # noqa: F401 - fixture
    func_tag,
    restore_signals,  # noqa: F401 - fixture
    succeed,
)
from tests.support import require_binary, wait_until

pytestmark = [pytest.mark.redis]

OTHER_QUEUE = "netauto-low"


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
