"""The emit benchmark still runs (a smoke run: no timing is asserted, a test must not time things)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_emit.py"


def test_bench_emit_runs_every_candidate_and_reports_the_targets() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for candidate in (
        "ours: counter",
        "ours: runner",
        "ours plain: histogram",
        "datadog default: timed",
        "datadog buffered+aggregated: increment",
        "prometheus_client: @Histogram.time()",
        "pystatsd: @timer",
        "floor: socket.send, 25 lines/datagram",
    ):
        assert f"| {candidate} |" in result.stdout, candidate
    assert result.stdout.count("| <= ") == 3  # the three targets are evaluated
