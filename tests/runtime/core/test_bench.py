"""The emit benchmark still runs (a smoke run: no timing is asserted, a test must not time things)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
