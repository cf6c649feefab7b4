"""RQ job, queue and worker instrumentation (the seed's PromEx Oban plugin).

Pick the worker class the RQ way, and enqueue through :class:`InstrumentedQueue`
(a drop-in ``rq.Queue``)::

    rq worker -w netauto_statsd.integrations.rq.InstrumentedWorker default
    rq worker -w netauto_statsd.integrations.rq.InstrumentedSimpleWorker default   # no fork

    InstrumentedQueue("default", connection=redis).enqueue(execute_run, run_id)

Tagged ``queue`` and ``func`` (the job function's dotted name; ``other`` outside
:func:`declare_job_functions` or beyond the catalog cap): ``rq.job.enqueued``,
``rq.job.started``, ``rq.job.finished{status}`` (succeeded, failed, stopped,
retried), ``rq.job.failure{exception}``, ``rq.job.duration`` (RQ's ``ended_at -
started_at``) and ``rq.job.wait`` (``started_at - enqueued_at``), in seconds.
Each worker reports itself in ``rq.workers{state}`` and polls ``rq.queue.jobs``
for its queues every :attr:`WorkerMetricsMixin.metrics_poll_interval` seconds
from a daemon thread: no second process to run.

Fork safety: the default ``Worker`` forks a horse per job that ends with
``os._exit``. The horse writes the outcome it saw into a page of memory shared
with the worker and flushes the job's own metrics before returning to RQ; the
worker emits the outcome once the horse is gone. An unwritten page means the
horse died unseen (SIGKILL, OOM, the worker's timeout kill, a stop command): the
worker reports what RQ recorded in Redis, a failure as ``WorkHorseTerminated``.

Version-agnostic: only ``execute_job(job, queue)``, ``perform_job(*args)``
(passed through), ``handle_exception(job, *exc_info)`` and ``work(...)`` are
overridden, whose roles are the same in RQ 1.x - 3.x (RQ 3.0 changed the
signatures of ``perform_job`` and ``handle_job_*``). Tested with RQ 2.12 and
3.0. ``SpawnWorker`` is refused: its horse shares no memory with the worker.
Errors inside the instrumentation are logged at debug level on
``netauto_statsd`` and swallowed, except
:class:`~netauto_statsd.emitter.CatalogError` in strict mode.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import rq.worker as _rq_worker
from rq import Queue, SimpleWorker, Worker
from rq.job import Job, JobStatus

from netauto_statsd.annotations import LifecycleAnnotations, lifecycle_annotations
from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter
from netauto_statsd.scopes import Scope

if TYPE_CHECKING:
    from rq.worker import BaseWorker as _WorkerBase
else:
    _WorkerBase = object

log = logging.getLogger("netauto_statsd")
log.addHandler(logging.NullHandler())

__all__ = [
    "HORSE_TERMINATED",
    "InstrumentedQueue",
    "InstrumentedSimpleWorker",
    "InstrumentedWorker",
    "WorkerMetricsMixin",
    "declare_job_functions",
    "job_tags",
]

#: ``exception`` tag of a failure the parent saw but the horse never reported.
HORSE_TERMINATED = "WorkHorseTerminated"
OTHER = "other"

T = TypeVar("T")

_functions: frozenset[str] | None = None
_enqueue_depth = threading.local()

#: RQ >= 2 has a worker whose horse is a fresh interpreter sharing no memory with the parent.
_SPAWN_WORKER: type | None = getattr(_rq_worker, "SpawnWorker", None)
_RETRIED_STATES = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}


def declare_job_functions(names: Iterable[str] | None) -> None:
    """Declare the job functions (dotted names) reported by name in this process.

    Jobs of any other function are tagged ``func=other``. ``None`` (the default)
    reports every function, capped by the catalog.

    Example:
        >>> declare_job_functions({"netauto.jobs.execute_run", "netauto.jobs.purge"})
        >>> declare_job_functions(None)  # back to the default: every function, capped
    """
    global _functions
    _functions = frozenset(names) if names is not None else None


def job_tags(job: Job) -> dict[str, object]:
    """The ``queue`` and ``func`` tags of ``job`` (``func`` is ``other`` if undeclared or unreadable)."""
    try:
        func = job.func_name or OTHER
    except Exception:  # undeserialisable payload: RQ will fail the job itself
        func = OTHER
    if _functions is not None and func not in _functions:
        func = OTHER
    return {"queue": job.origin, "func": func}


def _safely(what: str, action: Callable[[], T]) -> T | None:
    try:
        return action()
    except CatalogError:
        raise
    except Exception as exc:  # metrics never break a job
        log.debug("netauto_statsd: rq %s failed: %s", what, exc)
        return None


def _status_value(job: Job) -> str:
    status = job.get_status(refresh=False)
    return str(getattr(status, "value", status))


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def _report(tags: dict[str, object], status: str, duration: float, wait: float | None, exception: str | None) -> None:
    emitter = get_emitter()
    outcome = {**tags, "status": status}
    emitter.increment("rq.job.finished", tags=outcome)
    emitter.histogram("rq.job.duration", duration, tags=outcome)
    if wait is not None:
        emitter.histogram("rq.job.wait", wait, tags=tags)
    if exception is not None:
        emitter.increment("rq.job.failure", tags={**tags, "exception": exception})


# ------------------------------------------------------------------ enqueue
class InstrumentedQueue(Queue):
    """An ``rq.Queue`` that counts ``rq.job.enqueued`` for each job it creates.

    Counted once per job the application enqueues or schedules through
    ``enqueue``, ``enqueue_call``, ``enqueue_at`` / ``enqueue_in``,
    ``enqueue_many`` and ``enqueue_job``; retries and released dependents
    are not new jobs and are not counted again.
    """

    def _counted(self, call: Callable[[], T], jobs_of: Callable[[T], Iterable[Job]]) -> T:
        depth = getattr(_enqueue_depth, "value", 0)
        _enqueue_depth.value = depth + 1
        try:
            result = call()
        finally:
            _enqueue_depth.value = depth
        if depth == 0:  # the outermost call counts, not enqueue_call -> enqueue_job
            _safely("enqueue", lambda: _count_enqueued(jobs_of(result)))
        return result

    def enqueue_call(self, *args: Any, **kwargs: Any) -> Job:
        """``rq.Queue.enqueue_call``, counted."""
        return self._counted(lambda: super(InstrumentedQueue, self).enqueue_call(*args, **kwargs), _one)

    def enqueue_job(self, *args: Any, **kwargs: Any) -> Job:
        """``rq.Queue.enqueue_job``, counted."""
        return self._counted(lambda: super(InstrumentedQueue, self).enqueue_job(*args, **kwargs), _one)

    def enqueue_at(self, *args: Any, **kwargs: Any) -> Job:
        """``rq.Queue.enqueue_at`` (and ``enqueue_in``), counted."""
        job: Job = self._counted(lambda: super(InstrumentedQueue, self).enqueue_at(*args, **kwargs), _one)
        return job

    def enqueue_many(self, *args: Any, **kwargs: Any) -> list[Job]:
        """``rq.Queue.enqueue_many``, each job counted."""
        return self._counted(lambda: super(InstrumentedQueue, self).enqueue_many(*args, **kwargs), list)


def _one(job: Job) -> list[Job]:
    return [job]


def _count_enqueued(jobs: Iterable[Job]) -> None:
    emitter = get_emitter()
    for job in jobs:
        emitter.increment("rq.job.enqueued", tags=job_tags(job))


# ------------------------------------------------------------------- worker
class _Outcome:
    """One execution's outcome, in a page shared with the forked horse.

    The process that performed the job (the horse, or the worker itself for
    ``SimpleWorker``) writes it; the worker reads it once the horse is gone and
    emits. So the horse sends nothing of ours (no socket, no flush thread per
    job), and an unset record after the horse ended means nobody saw the end.
    """

    _LAYOUT = struct.Struct("<BBddB64s")  # written, status, duration, wait (NaN: unknown), exception
    _STATUSES = ("succeeded", "failed", "stopped", "retried")

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, self._LAYOUT.size)  # anonymous + MAP_SHARED: survives fork

    def clear(self) -> None:
        self._page[0] = 0

    def write(self, status: str, duration: float, wait: float | None, exception: str | None) -> None:
        name = (exception or "").encode("utf-8", "replace")[:64]
        wait_value = math.nan if wait is None else wait
        self._LAYOUT.pack_into(self._page, 0, 0, self._STATUSES.index(status), duration, wait_value, len(name), name)
        self._page[0] = 1  # last: the record is complete

    def read(self) -> tuple[str, float, float | None, str | None] | None:
        written, status, duration, wait, length, name = self._LAYOUT.unpack_from(self._page, 0)
        if not written:
            return None
        exception = name[:length].decode("utf-8", "replace") if length else None
        return self._STATUSES[status], duration, None if math.isnan(wait) else wait, exception


def _seen_status(job: Job, performed: bool, exception: str | None) -> str:
    """Classify an execution its performer watched end, from the status RQ left on the job."""
    state = _status_value(job)
    failed_run = exception is not None or type(getattr(job, "_result", None)).__name__ == "Retry"
    if state == JobStatus.FINISHED.value:
        return "succeeded"
    if state == JobStatus.STOPPED.value:
        return "stopped"
    if state == JobStatus.FAILED.value:
        return "failed"
    if state in _RETRIED_STATES and failed_run:
        return "retried"
    return "succeeded" if performed and not failed_run else "failed"  # e.g. a repeat scheduled after success


class WorkerMetricsMixin(_WorkerBase):
    """Job, worker and queue metrics for any forking or in-process RQ worker class.

    Put it first: ``class MyWorker(WorkerMetricsMixin, rq.Worker)``.

    Attributes:
        metrics_poll_interval: seconds between two polls of the queue registries.
    """

    metrics_poll_interval: float = 5.0
    _netauto_outcome: _Outcome | None = None
    _netauto_pid: int | None = None
    _netauto_exception: str | None = None
    _netauto_poller: threading.Thread | None = None
    _netauto_stop: threading.Event | None = None
    _netauto_annotations: LifecycleAnnotations | None = None

    def __init__(self, *args: Any, annotations: bool | LifecycleAnnotations = False, **kwargs: Any) -> None:
        if _SPAWN_WORKER is not None and isinstance(self, _SPAWN_WORKER):
            raise TypeError("WorkerMetricsMixin needs a forking or simple worker; SpawnWorker is not supported")
        super().__init__(*args, **kwargs)
        # annotations=True: Grafana start/stop annotations around work() (netauto_statsd.annotations)
        self._netauto_annotations = lifecycle_annotations(annotations)

    # ---------------------------------------------------------------- loop
    def work(self, *args: Any, **kwargs: Any) -> bool:
        """``work()``, with worker gauges set and the queue poller running meanwhile."""
        _safely("worker start", self._netauto_start)
        if self._netauto_annotations is not None:
            self._netauto_annotations.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            _safely("worker stop", self._netauto_finish)
            if self._netauto_annotations is not None:
                self._netauto_annotations.stop()

    def _netauto_start(self) -> None:
        self._netauto_pid = os.getpid()
        self._netauto_set_state(busy=False)
        # Send now, from the main thread: the transport is set up (and datadog
        # imported) before the first fork, never by the flush thread while we fork.
        get_emitter().flush()
        self._netauto_stop = threading.Event()
        self._netauto_poller = threading.Thread(
            target=self._netauto_poll_loop, args=(self._netauto_stop,), name="netauto-rq-poller", daemon=True
        )
        self._netauto_poller.start()

    def _netauto_finish(self) -> None:
        if self._netauto_stop is not None:
            self._netauto_stop.set()
        if self._netauto_poller is not None:
            self._netauto_poller.join(timeout=10)
        _safely("queue poll", self._netauto_poll)  # the last word: the state after this worker's work
        self._netauto_set_state(busy=None)
        get_emitter().flush()

    def _netauto_poll_loop(self, stop: threading.Event) -> None:
        while True:
            _safely("queue poll", self._netauto_poll)
            if stop.wait(self.metrics_poll_interval):
                return

    def _netauto_poll(self) -> None:
        """Set ``rq.queue.jobs`` for each queue of this worker (one Redis round trip)."""
        emitter = get_emitter()
        pipe = self.connection.pipeline(transaction=False)
        for queue in self.queues:
            pipe.llen(queue.key)
            for registry in (
                queue.started_job_registry,
                queue.failed_job_registry,
                queue.deferred_job_registry,
                queue.scheduled_job_registry,
            ):
                pipe.zcard(registry.key)
        counts = iter(pipe.execute())
        for queue in self.queues:
            for state in ("queued", "started", "failed", "deferred", "scheduled"):
                emitter.gauge("rq.queue.jobs", int(next(counts)), tags={"queue": queue.name, "state": state})

    def _netauto_set_state(self, busy: bool | None) -> None:
        """Report this worker busy, idle, or (``None``) gone, on each of its queues."""
        emitter = get_emitter()
        for name in self.queue_names():
            emitter.gauge("rq.workers", 1 if busy else 0, tags={"queue": name, "state": "busy"})
            emitter.gauge("rq.workers", 1 if busy is False else 0, tags={"queue": name, "state": "idle"})

    # ------------------------------------------------------- parent process
    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` as RQ does, counting its start and then its outcome."""
        tags = _safely("job tags", lambda: job_tags(job)) or {"queue": queue.name, "func": OTHER}
        outcome = _safely("job start", lambda: self._netauto_started(tags))
        scope = Scope(tags)
        try:
            super().execute_job(job, queue)
        finally:
            if outcome is not None:
                _safely("job outcome", lambda: self._netauto_report(job, scope, outcome))
            _safely("worker state", lambda: self._netauto_set_state(busy=False))

    def _netauto_started(self, tags: dict[str, object]) -> _Outcome:
        if self._netauto_outcome is None:
            self._netauto_outcome = _Outcome()
        self._netauto_outcome.clear()
        self._netauto_pid = os.getpid()
        self._netauto_set_state(busy=True)
        get_emitter().increment("rq.job.started", tags=tags)
        return self._netauto_outcome

    def _netauto_report(self, job: Job, scope: Scope, outcome: _Outcome) -> None:
        seen = outcome.read()
        if seen is not None:
            _report(scope.tags, *seen)
            return
        # Nobody saw the end (horse killed by SIGKILL, OOM, our timeout, a stop
        # command): report what RQ recorded in Redis.
        try:
            stored: Job | None = type(job).fetch(job.id, connection=self.connection, serializer=job.serializer)
        except Exception:
            stored = None  # deleted meanwhile: the horse is gone and we know nothing better
        state = _status_value(stored) if stored is not None else JobStatus.FAILED.value
        if state == JobStatus.FINISHED.value:
            status, exception = "succeeded", None
        elif state == JobStatus.STOPPED.value:
            status, exception = "stopped", None
        elif state in _RETRIED_STATES:
            status, exception = "retried", HORSE_TERMINATED
        else:
            status, exception = "failed", HORSE_TERMINATED
        wait = _seconds(stored.started_at, stored.enqueued_at) if stored is not None else None
        _report(scope.tags, status, scope.elapsed(), wait, exception)

    # -------------------------------------------------- horse (or in-process)
    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        """Perform the job as RQ does, then record its outcome (and flush the job's own metrics, in a horse)."""
        job: Job = args[0] if args else kwargs["job"]
        self._netauto_exception = None
        started = Scope({})
        performed = False
        try:
            performed = bool(super().perform_job(*args, **kwargs))
            return performed
        finally:
            _safely("job outcome", lambda: self._netauto_record(job, started, performed))
            if os.getpid() != self._netauto_pid:
                _safely("horse flush", get_emitter().flush)  # before RQ's os._exit

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """Remember the exception class of a failing job, then let RQ handle it."""
        if exc_info and exc_info[0] is not None:
            self._netauto_exception = exc_info[0].__name__
        super().handle_exception(job, *exc_info)

    def _netauto_record(self, job: Job, started: Scope, performed: bool) -> None:
        exception = self._netauto_exception
        status = _seen_status(job, performed, exception)
        duration = _seconds(job.ended_at, job.started_at)
        wait = _seconds(job.started_at, job.enqueued_at)
        seconds = duration if duration is not None else started.elapsed()
        if self._netauto_outcome is not None:
            self._netauto_outcome.write(status, seconds, wait, exception)
        else:  # perform_job called outside execute_job: report directly
            _report(job_tags(job), status, seconds, wait, exception)


class InstrumentedWorker(WorkerMetricsMixin, Worker):
    """RQ's default forking ``Worker``, with metrics.

    ``rq worker -w netauto_statsd.integrations.rq.InstrumentedWorker <queues>``
    """


class InstrumentedSimpleWorker(WorkerMetricsMixin, SimpleWorker):
    """RQ's in-process ``SimpleWorker`` with metrics (no fork)."""
