"""The integration benchmarks still run (smoke runs: a test must not time things, speed lives in bench/)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, require_binary


def _quick(script: str, *extra: str) -> str:
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *extra, "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_bench_aiohttp_quick_runs_every_scenario_and_the_prometheus_peer() -> None:
    out = _quick("bench_aiohttp.py")
    for row in ("| handler_cpu_us | ours |", "| http_server_cpu_us | prometheus_client, hand-rolled |"):
        assert row in out, row
    assert "| ws_chunks_per_s | ours |" in out and "| paced_p99_ms | ours |" in out
    assert "| send_handler_cpu_us | ours |" in out and "| handler_cpu_us | ours, kept in the middleware chain |" in out


def test_bench_sqlalchemy_quick_runs_every_scenario_and_the_prometheus_peer() -> None:
    out = _quick("bench_sqlalchemy.py")
    for scenario in ("select (statement)", "orm (unit of work)", "unit (statement)", "single (statement)"):
        assert f"| {scenario} | ours |" in out, scenario
        assert f"| {scenario} | prometheus_client listener |" in out, scenario


@pytest.mark.redis
def test_bench_rq_quick_runs() -> None:
    require_binary("redis-server", "apt-get install redis-server (Debian package)")
    out = _quick("bench_rq.py")
    assert "trivial jobs per variant" in out


@pytest.mark.parametrize("workload", ["http", "send", "orm"])
def test_bench_instructions_quick_runs_each_workload_natively(workload: str) -> None:
    """``--reps 0``: the measured processes and their clients run without valgrind (the instruction
    counts need valgrind and minutes; the smoke run keeps the harness from rotting)."""
    out = _quick("bench_instructions.py", workload, "--reps", "0")
    assert f"| {workload}: variant |" in out and "| ours |" in out and "| plain again (A/A) |" in out
