"""`pip install "netauto-statsd[check]"` is all `check` needs: a clean venv runs every proof and says OK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

#: What a source checkout of an operator's repo holds that `check` reads by default.
CHECKOUT = ("setup.cfg", "pyproject.toml", "README.md", "netauto_statsd", "bridge", "grafana")


def test_the_check_extra_is_complete(tmp_path: Path, exporter_binary: str) -> None:
    src, venv = tmp_path / "src", tmp_path / "venv"
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
    for name in CHECKOUT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=ignore)
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", ".[check]"]
    installed = subprocess.run(pip, cwd=src, capture_output=True, text=True, timeout=240)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    done = subprocess.run(
        [str(venv / "bin" / "netauto-statsd"), "check", "--exporter", exporter_binary, "--strict"],
        cwd=src, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "contexts compared sample for sample" in done.stdout
    assert done.stdout.rstrip().endswith("check OK: 0 problem(s), 0 warning(s)")
