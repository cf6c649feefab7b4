"""Job tags, outcome reporting and the counting queue: what every RQ process of the app shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from rq import Queue
from rq.job import Job

from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import call

__all__ = ["OTHER", "InstrumentedQueue", "declare_job_functions", "job_tags", "report"]

OTHER = "other"

T = TypeVar("T")

_functions: frozenset[str] | None = None
_enqueue_depth = threading.local()


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


def status_value(job: Job) -> str:
    """The status RQ last stored on ``job`` (no Redis round trip)."""
    status = job.get_status(refresh=False)
    return str(getattr(status, "value", status))


def seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    """``later - earlier`` in seconds (never negative), or ``None`` if either is unknown."""
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def report(
    tags: dict[str, object], status: str, duration: float | None, wait: float | None, exception: str | None
) -> None:
    """Emit one finished execution: ``rq.job.finished``, its duration and wait, and the failure if any."""
    emitter = get_emitter()
    outcome = {**tags, "status": status}
    emitter.increment("rq.job.finished", tags=outcome)
    if duration is not None:
        emitter.histogram("rq.job.duration", duration, tags=outcome)
    if wait is not None:
        emitter.histogram("rq.job.wait", wait, tags=tags)
    if exception is not None:
        emitter.increment("rq.job.failure", tags={**tags, "exception": exception})


class InstrumentedQueue(Queue):
    """An ``rq.Queue`` that counts ``rq.job.enqueued`` for each job it creates.

    Counted once per job the application enqueues or schedules through
    ``enqueue``, ``enqueue_call``, ``enqueue_at`` / ``enqueue_in``,
    ``enqueue_many`` and ``enqueue_job``; retries and released dependents
    are not new jobs and are not counted again.
    """

    def _counted(self, call_rq: Callable[[], T], jobs_of: Callable[[T], Iterable[Job]]) -> T:
        depth = getattr(_enqueue_depth, "value", 0)
        _enqueue_depth.value = depth + 1
        try:
            result = call_rq()
        finally:
            _enqueue_depth.value = depth
        if depth == 0:  # the outermost call counts, not enqueue_call -> enqueue_job
            call("rq enqueue count", _count_enqueued, jobs_of(result))
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
