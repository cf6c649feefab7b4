"""One execution's outcome, handed from the process that performed the job to the worker."""

from __future__ import annotations

import math
import mmap
import struct

from rq.job import Job, JobStatus

from netauto_statsd.integrations.rq._jobs import status_value

__all__ = ["RETRIED_STATES", "Outcome", "seen_status"]

RETRIED_STATES = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}


class Outcome:
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
        """Forget the last record (before each execution)."""
        self._page[0] = 0

    def write(self, status: str, duration: float, wait: float | None, exception: str | None) -> None:
        """Record how the execution ended; the record is complete when its first byte is set."""
        name = (exception or "").encode("utf-8", "replace")[:64]
        wait_value = math.nan if wait is None else wait
        self._LAYOUT.pack_into(self._page, 0, 0, self._STATUSES.index(status), duration, wait_value, len(name), name)
        self._page[0] = 1  # last: the record is complete

    def read(self) -> tuple[str, float, float | None, str | None] | None:
        """``(status, duration, wait, exception)``, or ``None`` if nobody wrote a record."""
        written, status, duration, wait, length, name = self._LAYOUT.unpack_from(self._page, 0)
        if not written:
            return None
        exception = name[:length].decode("utf-8", "replace") if length else None
        return self._STATUSES[status], duration, None if math.isnan(wait) else wait, exception


def seen_status(job: Job, performed: bool, exception: str | None) -> str:
    """Classify an execution its performer watched end, from the status RQ left on the job."""
    state = status_value(job)
    failed_run = exception is not None or type(getattr(job, "_result", None)).__name__ == "Retry"
    if state == JobStatus.FINISHED.value:
        return "succeeded"
    if state == JobStatus.STOPPED.value:
        return "stopped"
    if state == JobStatus.FAILED.value:
        return "failed"
    if state in RETRIED_STATES and failed_run:
        return "retried"
    return "succeeded" if performed and not failed_run else "failed"  # e.g. a repeat scheduled after success
