"""Issue 18.5: ``NETAUTO_E2E_TRAFFIC`` narrows the end-to-end proof on a laptop, never quietly under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ROOT

END_TO_END = "tests/tooling/grafana/test_end_to_end.py"


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "NETAUTO_E2E_TRAFFIC")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", END_TO_END, *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**base, **env}, timeout=300)


def test_on_a_laptop_the_variable_narrows_to_one_source() -> None:
    done = _pytest("--collect-only", NETAUTO_E2E_TRAFFIC="synthetic")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "synthetic" in done.stdout
    assert "demo" not in done.stdout


def test_under_ci_every_source_is_collected_and_the_variable_fails_the_run() -> None:
    collected = _pytest("--collect-only", CI="true", NETAUTO_E2E_TRAFFIC="synthetic")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "demo" in collected.stdout and "synthetic" in collected.stdout
    done = _pytest("-k", "test_exporter_lost_nothing and synthetic", "-x", CI="true", NETAUTO_E2E_TRAFFIC="synthetic")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NETAUTO_E2E_TRAFFIC='synthetic': CI runs every traffic source" in done.stdout
