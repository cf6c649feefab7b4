"""The emit benchmark still runs (a smoke run: no timing is asserted, a test must not time things)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import require_binary

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_emit.py"


def test_bench_emit_runs_every_candidate_and_reports_the_targets() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    for candidate in (
        "ours: bound inc()",
        "ours: bound observe()",
        "ours: unbound inc(3 tags)",
        "ours: counter",
        "ours: runner",
        "ours plain: histogram",
        "datadog default: timed",
        "datadog buffered+aggregated: increment",
        "prometheus_client: observe (prebound)",
        "prometheus_client: @Histogram.time()",
        "pystatsd: @timer",
        "floor: socket.send, 25 lines/datagram",
        "floor: empty call",
    ):
        assert f"| {candidate} |" in result.stdout, candidate
    assert result.stdout.count("x | met |") + result.stdout.count("x | MISSED") == 5  # issue 16's five ratios
    for figure in ("idle wake-ups per second", "idle CPU, share of one core", "one flush of 10,000 counter contexts"):
        assert figure in result.stdout, figure
    assert "Pacing sleeps of our UDP sender" in result.stdout  # taken out of the wall column, said so


@pytest.mark.exporter
def test_bench_pacing_runs_every_candidate(tmp_path: Path) -> None:
    """A smoke run of bench/bench_pacing.py against the real exporter (what arrives is reported, not asserted)."""
    require_binary("statsd_exporter", "PATH=.tools/bin:$PATH")
    bench = BENCH.with_name("bench_pacing.py")
    result = subprocess.run(
        [sys.executable, str(bench), "--samples", "16000", "--rounds", "1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    for mode in ("off", "fixed", "observed"):
        assert sum(1 for row in rows if row and row[0] == mode) == 2, (mode, result.stdout)  # both read buffers
