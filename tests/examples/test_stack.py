"""The no-Docker stack (``python -m netauto_demo.stack``) against real processes.

It runs for a short ``--duration`` (or until SIGINT) on free ports; while it
runs the test asks its Prometheus for the demo's series, and afterwards checks
that every process group it started is gone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, require_binary, require_module

require_module("netauto_demo", "pip install -e ./examples")

pytestmark = [pytest.mark.exporter, pytest.mark.prometheus, pytest.mark.redis, pytest.mark.slow]
STACK = [sys.executable, "-m", "netauto_demo.stack", "--any-ports", "--scrape-interval", "1s"]


@pytest.fixture(autouse=True)
def binaries() -> None:
    require_binary("statsd_exporter", "scripts/stack or scripts/test installs it")
    require_binary("prometheus", "apt-get install prometheus")
    require_binary("redis-server", "apt-get install redis-server")


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen([*STACK, "--workdir", str(tmp_path), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)  # fmt: skip


def read_until(proc: subprocess.Popen[str], pattern: str, seen: list[str], timeout: float = 90) -> re.Match[str]:
    """Read the stack's output until a line matches ``pattern``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "the stack ended early:\n" + "".join(seen)
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.loads(response.read())["data"]["result"])


def wait_for_data(prometheus: str, timeout: float = 60) -> dict[str, float]:
    """Poll the stack's Prometheus until the exporter is up and the demo's runs are stored."""
    deadline = time.monotonic() + timeout
    figures: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            for name, expr in {
                "up": 'sum(up{job="statsd-exporter"})',
                "runs": 'sum(netauto_runs_created_total{env="local"})',
                "requests": 'sum(netauto_http_requests_total{env="local"})',
            }.items():
                result = query(prometheus, expr)
                figures[name] = float(result[0]["value"][1]) if result else 0.0
        except OSError:
            pass
        if figures.get("up") == 1 and figures.get("runs", 0) > 0 and figures.get("requests", 0) > 0:
            return figures
        time.sleep(0.5)
    raise AssertionError(f"no demo data in Prometheus within {timeout}s: {figures}")


def groups_left(workdir: Path) -> list[str]:
    """Process groups of the stack's registry that still have a process, and any other process of this
    stack: one whose command line or environment names its workdir (the database path is in every
    demo process' environment, RQ work horses included, which leave their worker's group).
    """
    registry = json.loads((workdir / "processes.json").read_text())
    left = []
    for row in registry:
        try:
            os.killpg(row["pgid"], 0)
            left.append(row["name"])
        except ProcessLookupError:
            pass
    marker = str(workdir).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes() or marker in (proc / "environ").read_bytes():
                left.append(f"pid {proc.name}: {(proc / 'cmdline').read_bytes()[:200]!r}")
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return left


def report_available() -> bool:
    """``netauto-statsd report`` is installed, with its extra (matplotlib)."""
    return all(importlib.util.find_spec(name) is not None for name in ("netauto_statsd.tooling.report", "matplotlib"))


def test_stack_runs_for_its_duration_with_data_and_leaves_nothing(tmp_path: Path) -> None:
    proc = start(tmp_path, "--duration", "30")
    seen: list[str] = []
    try:
        prometheus = read_until(proc, r"Prometheus\s+(http://127\.0\.0\.1:\d+)", seen).group(1)
        udp = read_until(proc, r"sends DogStatsD to (udp://127\.0\.0\.1:\d+)", seen).group(1)
        read_until(proc, r"defaults to localhost:8125 while statsd_exporter listens on :9125", seen)
        figures = wait_for_data(prometheus)
        assert proc.poll() is None, "the stack stopped before its duration"
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(seen) + output
    assert proc.returncode == 0, text
    assert re.search(r"\[\s*\d+s\] runs: .* \| exporter samples \d+ \| Prometheus: exporters up 1", text), text
    assert "stopped; logs and data kept in" in text
    if report_available():  # the report of every panel, written at exit from the stack's Prometheus
        assert f"report of every dashboard panel: {tmp_path / 'report' / 'index.html'}" in text, text
        assert (tmp_path / "report" / "index.html").is_file()
        assert re.search(r"index\.html: \d+ panels of 4 dashboards, 0 without data", text), text
    else:
        assert "no HTML report" in text or "report failed" in text, text
    assert figures["runs"] > 0
    names = {row["name"] for row in json.loads((tmp_path / "processes.json").read_text())}
    assert {"statsd_exporter", "prometheus", "redis", "app", "worker-0", "worker-1", "load"} <= names
    assert groups_left(tmp_path) == []
    config = json.loads((tmp_path / "prometheus.yml").read_text())
    assert {job["job_name"] for job in config["scrape_configs"]} == {"statsd-exporter", "prometheus"}
    assert f"metrics go to {udp} (DD_DOGSTATSD_URL)" in (tmp_path / "app.log").read_text()


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    proc = start(tmp_path, "--no-report")  # no --duration: until interrupted
    seen: list[str] = []
    try:
        prometheus = read_until(proc, r"Prometheus\s+(http://127\.0\.0\.1:\d+)", seen).group(1)
        wait_for_data(prometheus)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + output
    assert "stopping everything it started" in output
    assert groups_left(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "-5"], "argument --duration: must be seconds >= 0"),
        (["--rate", "0"], "argument --rate: must be a number of runs per second > 0"),
        (["--scrape-interval", "soon"], "argument --scrape-interval: not a duration"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([*STACK, "--workdir", str(tmp_path), *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "processes.json").exists(), "nothing is started on a bad argument"


def test_scripts_stack_checks_its_tools_then_hands_over() -> None:
    """The one command: with everything installed it installs nothing and passes its arguments on."""
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(ROOT / "scripts" / "stack"), "--help"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: netauto-statsd stack"), done.stdout
    assert "--duration" in done.stdout and "--any-ports" in done.stdout


def test_sweep_ends_only_what_carries_the_stack_mark() -> None:
    """A process that left its group (as an RQ work horse does) is found by the mark it inherited."""
    from netauto_demo.processes import STACK_VARIABLE, strays, sweep

    run_id = uuid.uuid4().hex
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    marked = subprocess.Popen(sleeper, env={**os.environ, STACK_VARIABLE: run_id}, start_new_session=True)
    other = subprocess.Popen(sleeper, env={**os.environ, STACK_VARIABLE: uuid.uuid4().hex}, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while marked.pid not in strays(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)  # /proc/<pid>/environ holds the mark once exec is done
        assert strays(run_id) == [marked.pid]
        assert sweep(run_id) == [marked.pid]
        assert marked.wait(10) is not None
        assert strays(run_id) == []
        assert other.poll() is None, "a process without this stack's mark is left alone"
    finally:
        for proc in (marked, other):
            proc.kill()
            proc.wait()
