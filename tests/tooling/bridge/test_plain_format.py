"""Plain StatsD and DogStatsD, mapped by the same file, give the same Prometheus series."""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd import chunk_appended, run_created, run_finished, runner_lifecycle
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from tests.support import Exporter

HOSTILE_SITES = ["par1", "a.b.c", "x:y|z", "new\nline", "#hash,comma", "sp ace", "", "\u00e9t\u00e9", "a" * 200]


def scenario(emitter: Emitter) -> None:
    """Runner lifecycle, throughput, live-view and job metrics, with hostile tag values."""
    set_emitter(emitter)
    try:
        for i, site in enumerate(HOSTILE_SITES):
            tags = {"site": site, "protocol": ("ssh", "telnet", "netconf")[i % 3]}
            run_created(site=site, protocol=tags["protocol"], device=f"dev.{i}")
            for size in (100, 250, 4096):
                chunk_appended(site=site, protocol=tags["protocol"], size=size)
            run_finished(site=site, protocol=tags["protocol"], total_bytes=4446)
            with runner_lifecycle(tags) as run:
                run.add_bytes(4446)
            with pytest.raises(ValueError), runner_lifecycle(tags):
                raise ValueError("device said no")
        emitter.histogram("runner.duration", 0.25, {"site": "par1", "protocol": "ssh", "status": "timeout"})
        view = {"view": "/runs/{run_id}/live"}
        emitter.histogram("liveview.mount", 0.125, view)
        emitter.histogram("liveview.handshake", 0.0625, view)
        emitter.increment("liveview.messages", 42, {**view, "direction": "sent"})
        emitter.gauge("liveview.sessions", 3, view)
        emitter.gauge_add("liveview.sessions", -1, view)
        job = {"queue": "default", "func": "netauto.jobs.execute_run"}
        emitter.increment("rq.job.enqueued", 5, job)
        emitter.histogram("rq.job.wait", 1.5, job)
        emitter.increment("rq.job.finished", 4, {**job, "status": "succeeded"})
        emitter.gauge("rq.queue.jobs", 7, {"queue": "default", "state": "queued"})
    finally:
        set_emitter(None)
    emitter.close()


MEASURED = ("netauto_runner_duration_seconds_sum", "netauto_runner_duration_seconds_bucket")


def _netauto_series(exporter: Exporter) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every netauto sample; the decorator's measured wall time (differs per run: its sum and
    finite buckets) reads -1 when > 0. Counts and the +Inf bucket are compared exactly."""
    return sorted(
        (name, tuple(sorted((k, v) for k, v in labels.items() if k != "process")), value)
        if not (name in MEASURED and dict(labels).get("status") != "timeout" and dict(labels).get("le") != "+Inf")
        else (name, tuple(sorted(labels.items())), -1.0 if value > 0 else 0.0)
        for name, labels, value in exporter.samples("netauto_")
    )


def _run(
    transport: str, binary: str, tmp: Path
) -> tuple[list[tuple[str, tuple[tuple[str, str], ...], float]], dict[str, float]]:
    exporter = Exporter(binary, tmp)
    try:
        emitter = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, transport=transport, strict=True))
        scenario(emitter)
        assert emitter.stats()["packets_failed"] == 0
        # the last thing sent is the queue gauge; wait until everything is applied
        exporter.wait_value("netauto_rq_queue_jobs", 7)
        exporter.wait_value("netauto_runner_stops_total", 2 * len(HOSTILE_SITES))
        return _netauto_series(exporter), exporter.self_errors()
    finally:
        exporter.stop()


def test_both_formats_produce_identical_series(exporter_binary: str, tmp_path: Path) -> None:
    dog, dog_errors = _run("dogstatsd", exporter_binary, tmp_path)
    plain, plain_errors = _run("statsd", exporter_binary, tmp_path)
    assert dog, "nothing arrived"
    only_dog = sorted(set(dog) - set(plain))
    only_plain = sorted(set(plain) - set(dog))
    assert dog == plain, f"only DogStatsD: {only_dog[:5]}\nonly plain: {only_plain[:5]}"
    for errors in (dog_errors, plain_errors):
        assert {k: v for k, v in errors.items() if v} == {}
    # hostile values were normalised, never split into segments or labels
    sites = {dict(labels).get("site") for name, labels, _ in dog if name == "netauto_runs_created_total"}
    assert "a_b_c" in sites and "x_y_z" in sites and "new_line" in sites


def test_plain_histograms_keep_their_unit(exporter_binary: str, tmp_path: Path) -> None:
    """pystatsd has no histogram: |ms timers x1000 come out in seconds and bytes, not 1000x off."""
    series, _ = _run("statsd", exporter_binary, tmp_path)
    values = {(name, dict(labels).get("status")): value for name, labels, value in series}
    assert values[("netauto_rq_job_wait_seconds_sum", None)] == pytest.approx(1.5)
    assert values[("netauto_liveview_mount_seconds_sum", None)] == pytest.approx(0.125)
    runner_bytes = [v for (n, s), v in values.items() if n == "netauto_runner_processed_bytes_sum" and s == "ok"]
    assert runner_bytes and all(v == pytest.approx(4446) for v in runner_bytes)
