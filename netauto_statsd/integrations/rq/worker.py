"""Worker classes with metrics: narrow overrides on RQ's worker, the state in one collaborator.

:class:`WorkerMetricsMixin` overrides five methods, each handing over to the
worker's :class:`WorkerMetrics` (one attribute, ``worker.netauto_metrics``):
``work`` starts it, ``teardown`` flushes and stops it, ``execute_job`` (the
worker process) counts a start and then the outcome, ``perform_job`` (the horse,
or the worker itself for ``SimpleWorker``) records the outcome it saw, and
``handle_exception`` remembers the exception class.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import rq.worker as _rq_worker
from rq import Queue, SimpleWorker, Worker
from rq.job import Job, JobStatus

from netauto_statsd.annotations import LifecycleAnnotations, lifecycle_annotations
from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import call
from netauto_statsd.integrations._base import Instrumentor
from netauto_statsd.integrations._process import mark_short_lived
from netauto_statsd.integrations.rq._jobs import OTHER, job_tags, report, seconds, status_value
from netauto_statsd.integrations.rq._outcome import RETRIED_STATES, Outcome, seen_status
from netauto_statsd.scopes import Scope

if TYPE_CHECKING:
    from rq.worker import BaseWorker as _WorkerBase
else:
    _WorkerBase = object

__all__ = [
    "ABANDONED",
    "HORSE_TERMINATED",
    "InstrumentedSimpleWorker",
    "InstrumentedWorker",
    "RQInstrumentor",
    "WorkerMetrics",
    "WorkerMetricsMixin",
]

#: ``exception`` tag of a failure the parent saw but the horse never reported.
HORSE_TERMINATED = "WorkHorseTerminated"
#: ``status`` of a job whose worker died mid-job, found by RQ's registry cleanup.
ABANDONED = "abandoned"

#: RQ >= 2 has a worker whose horse is a fresh interpreter sharing no memory with the parent.
_SPAWN_WORKER: type | None = getattr(_rq_worker, "SpawnWorker", None)


class WorkerMetrics:
    """Everything the metrics need about one worker: outcome page, poller, the job in flight.

    Created by :class:`RQInstrumentor` and kept in ``worker.netauto_metrics``.

    Attributes:
        poll_interval: seconds between two polls of the queue registries.
    """

    def __init__(self, worker: _WorkerBase, poll_interval: float) -> None:
        self.worker = worker
        self.poll_interval = poll_interval
        self.pid = os.getpid()
        self.outcome: Outcome | None = None
        self.exception: str | None = None
        self.poller: threading.Thread | None = None
        self.stop: threading.Event | None = None
        self.running = False
        #: Grafana start/stop annotations of this worker, when asked for
        self.annotations: LifecycleAnnotations | None = None

    # ----------------------------------------------------------- worker loop
    def start(self) -> None:
        """The loop starts: worker idle, transport up before the first fork, poller running."""
        self.pid = os.getpid()
        self.running = True
        self.set_state(busy=False)
        # Send now, from the main thread: the transport is set up (and datadog
        # imported) before the first fork, never by the flush thread while we fork.
        get_emitter().flush()
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll_loop, args=(self.stop,), name="netauto-rq-poller", daemon=True)
        self.poller.start()

    def finish(self) -> None:
        """The worker tears down: flush the last window first, then the final state, flushed too."""
        if not self.running or os.getpid() != self.pid:
            return
        self.running = False
        call("rq teardown flush", _flush)  # before anything that can block (Redis, the scheduler)
        if self.stop is not None:
            self.stop.set()
        if self.poller is not None:
            self.poller.join(timeout=10)
        call("rq queue poll", self.poll)  # the last word: the state after this worker's work
        call("rq worker state", self.set_state, None)
        call("rq teardown flush", _flush)

    def _poll_loop(self, stop: threading.Event) -> None:
        while True:
            call("rq queue poll", self.poll)
            if stop.wait(self.poll_interval):
                return

    def poll(self) -> None:
        """Set ``rq.queue.jobs`` for each queue of this worker (one Redis round trip)."""
        emitter = get_emitter()
        worker = self.worker
        pipe = worker.connection.pipeline(transaction=False)
        for queue in worker.queues:
            pipe.llen(queue.key)
            for registry in (
                queue.started_job_registry,
                queue.failed_job_registry,
                queue.deferred_job_registry,
                queue.scheduled_job_registry,
            ):
                pipe.zcard(registry.key)
        counts = iter(pipe.execute())
        for queue in worker.queues:
            for state in ("queued", "started", "failed", "deferred", "scheduled"):
                emitter.gauge("rq.queue.jobs", int(next(counts)), tags={"queue": queue.name, "state": state})

    def set_state(self, busy: bool | None) -> None:
        """Report this worker busy, idle, or (``None``) gone, on each of its queues."""
        emitter = get_emitter()
        for name in self.worker.queue_names():
            emitter.gauge("rq.workers", 1 if busy else 0, tags={"queue": name, "state": "busy"})
            emitter.gauge("rq.workers", 1 if busy is False else 0, tags={"queue": name, "state": "idle"})

    # -------------------------------------------------------- worker process
    def job_started(self, job: Job, queue: Queue) -> tuple[Scope, Outcome | None]:
        """Count the start of ``job``; return what :meth:`job_ended` needs."""
        tags = call("rq job tags", job_tags, job) or {"queue": queue.name, "func": OTHER}
        return Scope(tags), call("rq job start", self._started, tags)

    def _started(self, tags: dict[str, object]) -> Outcome:
        if self.outcome is None:
            self.outcome = Outcome()
        self.outcome.clear()
        self.pid = os.getpid()
        self.set_state(busy=True)
        get_emitter().increment("rq.job.started", tags=tags)
        return self.outcome

    def job_ended(self, job: Job, started: tuple[Scope, Outcome | None]) -> None:
        """Report the outcome the performer recorded, or what RQ stored if nobody saw the end."""
        scope, outcome = started
        if outcome is not None:
            call("rq job outcome", self._report, job, scope, outcome)
        call("rq worker state", self.set_state, False)

    def _report(self, job: Job, scope: Scope, outcome: Outcome) -> None:
        seen = outcome.read()
        if seen is not None:
            report(scope.tags, *seen)
            return
        # Nobody saw the end (horse killed by SIGKILL, OOM, our timeout, a stop
        # command): report what RQ recorded in Redis.
        try:
            stored: Job | None = type(job).fetch(job.id, connection=self.worker.connection, serializer=job.serializer)
        except Exception:
            stored = None  # deleted meanwhile: the horse is gone and we know nothing better
        state = status_value(stored) if stored is not None else JobStatus.FAILED.value
        if state == JobStatus.FINISHED.value:
            status, exception = "succeeded", None
        elif state == JobStatus.STOPPED.value:
            status, exception = "stopped", None
        elif state in RETRIED_STATES:
            status, exception = "retried", HORSE_TERMINATED
        else:
            status, exception = "failed", HORSE_TERMINATED
        wait = seconds(stored.started_at, stored.enqueued_at) if stored is not None else None
        report(scope.tags, status, scope.elapsed(), wait, exception)

    # ---------------------------------------------- horse (or in-process)
    def performing(self) -> Scope:
        """The job is about to run here; a work horse is marked short-lived (no per-process gauges)."""
        self.exception = None
        if os.getpid() != self.pid:
            mark_short_lived()
        return Scope({})

    def performed(self, job: Job, started: Scope, performed: bool) -> None:
        """Record the outcome for the worker (and flush the job's own metrics, in a horse: RQ ends it with os._exit)."""
        call("rq job outcome", self._record, job, started, performed)
        if os.getpid() != self.pid:
            call("rq horse flush", _flush)

    def _record(self, job: Job, started: Scope, performed: bool) -> None:
        exception = self.exception
        status = seen_status(job, performed, exception)
        duration = seconds(job.ended_at, job.started_at)
        wait = seconds(job.started_at, job.enqueued_at)
        elapsed = duration if duration is not None else started.elapsed()
        if self.outcome is not None:
            self.outcome.write(status, elapsed, wait, exception)
        else:  # perform_job called outside execute_job: report directly
            report(job_tags(job), status, elapsed, wait, exception)

    def exception_seen(self, exc_info: tuple[Any, ...]) -> None:
        """Remember the exception class of a failing job."""
        if exc_info and exc_info[0] is not None:
            self.exception = exc_info[0].__name__

    # ------------------------------------------- RQ's registry cleanup
    def on_exception(self, job: Job, *exc_info: Any) -> None:
        """An RQ exception handler: count jobs RQ's cleanup found abandoned by a dead worker.

        ``StartedJobRegistry.cleanup`` (run by whichever worker holds the queue's
        maintenance lock) calls the worker's exception handlers with
        ``AbandonedJobError`` for each job still ``started`` when its execution
        expired: its worker was SIGKILLed or lost mid-job, and nobody reported it.
        Returns ``None``: the next handler runs.
        """
        if exc_info and getattr(exc_info[0], "__name__", "") == "AbandonedJobError":
            call("rq abandoned job", _report_abandoned, job)


def _report_abandoned(job: Job) -> None:
    report(job_tags(job), ABANDONED, None, seconds(job.started_at, job.enqueued_at), "AbandonedJobError")


def _flush() -> None:
    get_emitter().flush()


class RQInstrumentor(Instrumentor[_WorkerBase, WorkerMetrics]):
    """Attaches a :class:`WorkerMetrics` to a worker and registers its exception handler."""

    integration = "netauto_statsd.integrations.rq"

    def _state_of(self, worker: _WorkerBase, /) -> WorkerMetrics | None:
        metrics: WorkerMetrics | None = worker.__dict__.get("netauto_metrics")
        return metrics

    def _install(self, worker: _WorkerBase, /, **options: Any) -> None:
        if _SPAWN_WORKER is not None and isinstance(worker, _SPAWN_WORKER):
            raise TypeError("WorkerMetricsMixin needs a forking or simple worker; SpawnWorker is not supported")
        metrics = WorkerMetrics(worker, options.get("poll_interval", 5.0))
        worker.__dict__["netauto_metrics"] = metrics
        # First, so that a handler returning False (stop the chain) cannot hide abandoned jobs from us.
        worker._exc_handlers.insert(0, metrics.on_exception)

    def _uninstall(self, worker: _WorkerBase, metrics: WorkerMetrics, /) -> None:
        metrics.finish()
        if metrics.on_exception in worker._exc_handlers:
            worker._exc_handlers.remove(metrics.on_exception)
        del worker.__dict__["netauto_metrics"]


_instrumentor = RQInstrumentor()


class WorkerMetricsMixin(_WorkerBase):
    """Job, worker and queue metrics for any forking or in-process RQ worker class.

    Put it first: ``class MyWorker(WorkerMetricsMixin, rq.Worker)``.

    Attributes:
        metrics_poll_interval: seconds between two polls of the queue registries.
        netauto_metrics: this worker's :class:`WorkerMetrics` (all our state).
    """

    metrics_poll_interval: float = 5.0
    netauto_metrics: WorkerMetrics

    def __init__(self, *args: Any, annotations: bool | LifecycleAnnotations = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _instrumentor.install(self, poll_interval=self.metrics_poll_interval)  # TypeError for a SpawnWorker
        # annotations=True: Grafana start/stop annotations around work() (netauto_statsd.annotations)
        self.netauto_metrics.annotations = lifecycle_annotations(annotations)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """``work()``, with worker gauges set and the queue poller running meanwhile."""
        call("rq worker start", self.netauto_metrics.start)
        annotations = self.netauto_metrics.annotations
        if annotations is not None:
            annotations.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            call("rq worker stop", self.netauto_metrics.finish)  # if teardown did not run
            if annotations is not None:
                annotations.stop()

    def teardown(self) -> None:
        """Flush the last window and report the worker gone, then RQ's own teardown."""
        call("rq worker stop", self.netauto_metrics.finish)
        super().teardown()  # type: ignore[no-untyped-call]

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` as RQ does, counting its start and then its outcome."""
        started = self.netauto_metrics.job_started(job, queue)
        try:
            super().execute_job(job, queue)
        finally:
            self.netauto_metrics.job_ended(job, started)

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        """Perform the job as RQ does, then record its outcome (and flush, in a horse)."""
        job: Job = args[0] if args else kwargs["job"]
        started = self.netauto_metrics.performing()
        performed = False
        try:
            performed = bool(super().perform_job(*args, **kwargs))
            return performed
        finally:
            self.netauto_metrics.performed(job, started, performed)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """Remember the exception class of a failing job, then let RQ handle it."""
        self.netauto_metrics.exception_seen(exc_info)
        super().handle_exception(job, *exc_info)


class InstrumentedWorker(WorkerMetricsMixin, Worker):
    """RQ's default forking ``Worker``, with metrics.

    ``rq worker -w netauto_statsd.integrations.rq.InstrumentedWorker <queues>``
    """


class InstrumentedSimpleWorker(WorkerMetricsMixin, SimpleWorker):
    """RQ's in-process ``SimpleWorker`` with metrics (no fork)."""
