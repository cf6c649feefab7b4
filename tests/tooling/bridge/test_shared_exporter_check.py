"""Issue 18.5: the ``shared_exporter`` fixture really checks its error counters at the end of the session.

An inner pytest session (a subprocess, real exporter) uses the fixture and sends
one line the exporter cannot parse; the session must end in an error naming the
counter. Without the check it would pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.exporter

INNER_CONFTEST = "from tests.conftest import exporter_binary, shared_exporter  # noqa: F401\n"
INNER_TEST = """
import socket


def test_sends_a_broken_line(shared_exporter):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"netauto.run.created:1|x", ("127.0.0.1", shared_exporter.udp_port))
    deadline = __import__("time").monotonic() + 10
    while shared_exporter.value("statsd_exporter_sample_errors_total") < 1:
        assert __import__("time").monotonic() < deadline, "the exporter never counted the broken line"
"""


def _inner(tmp_path: Path, test: str, exporter_binary: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    (tmp_path / "test_inner.py").write_text(test)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml")]
    command += ["--rootdir", str(ROOT), str(tmp_path / "test_inner.py")]
    env = {"PATH": str(Path(exporter_binary).parent), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_an_exporter_error_fails_the_session(exporter_binary: str, tmp_path: Path) -> None:
    done = _inner(tmp_path, INNER_TEST, exporter_binary)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout, done.stdout
    assert "the shared statsd_exporter counted errors" in done.stdout
    assert "statsd_exporter_sample_errors_total" in done.stdout


def test_a_clean_session_passes(exporter_binary: str, tmp_path: Path) -> None:
    clean = INNER_TEST.replace("|x", "|c").replace(
        'value("statsd_exporter_sample_errors_total") < 1', 'value("netauto_runs_created_total") < 0'
    )
    done = _inner(tmp_path, clean, exporter_binary)
    assert done.returncode == 0, done.stdout + done.stderr
