"""RQ job, queue and worker instrumentation (the seed's PromEx Oban plugin).

Pick the worker class the RQ way, and enqueue through :class:`InstrumentedQueue`
(a drop-in ``rq.Queue``)::

    rq worker -w netauto_statsd.integrations.rq.InstrumentedWorker default
    rq worker -w netauto_statsd.integrations.rq.InstrumentedSimpleWorker default   # no fork

    InstrumentedQueue("default", connection=redis).enqueue(execute_run, run_id)

Tagged ``queue`` and ``func`` (the job function's dotted name; ``other`` outside
:func:`declare_job_functions` or beyond the catalog cap): ``rq.job.enqueued``,
``rq.job.started``, ``rq.job.finished{status}`` (succeeded, failed, stopped,
retried, abandoned), ``rq.job.failure{exception}``, ``rq.job.duration`` (RQ's ``ended_at -
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

A job whose *worker* died mid-job (SIGKILL, OOM, a lost host) is reported when
RQ's registry cleanup finds it (``StartedJobRegistry.cleanup``, run by a live
worker's maintenance, calls the worker's exception handlers with
``AbandonedJobError``): ``rq.job.finished{status=abandoned}`` and
``rq.job.failure{exception=AbandonedJobError}``. A work horse is marked
short-lived: integrations send no per-process gauges from it. The worker's
teardown flushes its last window before RQ's own teardown (a normal shutdown,
SIGTERM included, loses nothing).

Version-agnostic: only ``execute_job(job, queue)``, ``perform_job(*args)``
(passed through), ``handle_exception(job, *exc_info)``, ``work(...)`` and
``teardown()`` are overridden, whose roles are the same in RQ 2.x - 3.x (RQ 3.0
changed the signatures of ``perform_job`` and ``handle_job_*``); the supported
range is checked at install (:mod:`netauto_statsd.integrations._base`).
``SpawnWorker`` is refused: its horse shares no memory with the worker. Errors
inside the instrumentation go through :mod:`netauto_statsd.guard`.
"""

from __future__ import annotations

from netauto_statsd.integrations.rq._jobs import InstrumentedQueue, declare_job_functions, job_tags
from netauto_statsd.integrations.rq.worker import (
    ABANDONED,
    HORSE_TERMINATED,
    InstrumentedSimpleWorker,
    InstrumentedWorker,
    RQInstrumentor,
    WorkerMetrics,
    WorkerMetricsMixin,
)

__all__ = [
    "ABANDONED",
    "HORSE_TERMINATED",
    "InstrumentedQueue",
    "InstrumentedSimpleWorker",
    "InstrumentedWorker",
    "RQInstrumentor",
    "WorkerMetrics",
    "WorkerMetricsMixin",
    "declare_job_functions",
    "job_tags",
]
