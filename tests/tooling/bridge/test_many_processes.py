"""Many processes push to one exporter: Prometheus-side totals are exact and nothing is dropped."""

from __future__ import annotations

import multiprocessing

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from tests.support import Exporter

PROCESSES = 4
INCREMENTS = 250_000
OBSERVATIONS = 25_000


def _push(port: int, worker: int) -> dict[str, int]:
    emitter = Emitter(Settings(host="127.0.0.1", port=port, strict=True))
    counter_tags = {"site": f"site{worker % 2}", "protocol": "ssh"}
    hist_tags = {"site": f"site{worker % 2}", "protocol": "ssh", "status": "ok"}
    for _ in range(INCREMENTS):
        emitter.increment("chunk.appended", tags=counter_tags)
    for i in range(OBSERVATIONS):
        emitter.histogram("runner.duration", (i % 100) / 100.0, tags=hist_tags)
    emitter.close()
    return emitter.stats()


def test_four_processes_add_up_exactly(exporter: Exporter) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        stats = pool.starmap(_push, [(exporter.udp_port, w) for w in range(PROCESSES)])
    assert all(s["packets_failed"] == 0 and s["internal_errors"] == 0 for s in stats), stats
    exporter.wait_value("netauto_chunks_appended_total", PROCESSES * INCREMENTS, timeout=30)
    exporter.wait_value("netauto_runner_duration_seconds_count", PROCESSES * OBSERVATIONS, timeout=30)
    # each site got exactly its two workers' share
    for site in ("site0", "site1"):
        assert exporter.value("netauto_chunks_appended_total", site=site) == 2 * INCREMENTS
    expected_sum = PROCESSES * sum((i % 100) / 100.0 for i in range(OBSERVATIONS))
    assert abs(exporter.value("netauto_runner_duration_seconds_sum") - expected_sum) < 1e-6 * expected_sum
    assert exporter.self_errors()["statsd_exporter_udp_packet_drops_total"] == 0
