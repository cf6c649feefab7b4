"""RQ jobs, queues and workers (the seed's PromEx Oban plugin)."""

from __future__ import annotations

from netauto_statsd.catalog.model import Tag
from netauto_statsd.catalog.registry import counter, gauge, histogram
from netauto_statsd.catalog.shared import EXCEPTION, FUNC, JOB_SECONDS, QUEUE

AREA = "rq"
JOB_STATUS = Tag("status", ("succeeded", "failed", "stopped", "retried", "abandoned"), "job outcome")

ENQUEUED = counter(
    "rq.job.enqueued",
    tags=(QUEUE, FUNC),
    help="Jobs enqueued.",
    prometheus_name="netauto_rq_jobs_enqueued_total",
    area=AREA,
)
STARTED = counter(
    "rq.job.started",
    tags=(QUEUE, FUNC),
    help="Jobs started by a worker.",
    prometheus_name="netauto_rq_jobs_started_total",
    area=AREA,
)
FINISHED = counter(
    "rq.job.finished",
    tags=(QUEUE, FUNC, JOB_STATUS),
    help="Jobs finished, by outcome.",
    prometheus_name="netauto_rq_jobs_finished_total",
    area=AREA,
)
FAILURES = counter(
    "rq.job.failure",
    tags=(QUEUE, FUNC, EXCEPTION),
    help="Job failures by exception class.",
    prometheus_name="netauto_rq_job_failures_total",
    max_combinations=200,
    area=AREA,
)
DURATION = histogram(
    "rq.job.duration",
    tags=(QUEUE, FUNC, JOB_STATUS),
    unit="seconds",
    help="Job execution time.",
    prometheus_name="netauto_rq_job_duration_seconds",
    buckets=JOB_SECONDS,
    area=AREA,
)
WAIT = histogram(
    "rq.job.wait",
    tags=(QUEUE, FUNC),
    unit="seconds",
    help="Queue wait: started_at - enqueued_at.",
    prometheus_name="netauto_rq_job_wait_seconds",
    buckets=JOB_SECONDS,
    area=AREA,
)
QUEUE_JOBS = gauge(
    "rq.queue.jobs",
    tags=(QUEUE, Tag("state", ("queued", "started", "failed", "deferred", "scheduled"), "job registry")),
    help="Jobs per queue and state, polled by workers (use max, not sum, across reporters).",
    prometheus_name="netauto_rq_queue_jobs",
    ttl="1m",
    area=AREA,
)
WORKERS = gauge(
    "rq.workers",
    tags=(QUEUE, Tag("state", ("busy", "idle"), "worker state")),
    help="Workers per queue and state, each worker reporting itself.",
    prometheus_name="netauto_rq_workers",
    ttl="1m",
    area=AREA,
)
