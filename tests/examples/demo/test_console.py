"""The demo's command line and what it says: argparse-style errors, exporter down and back up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support import ROOT, free_port, require_binary, require_module

require_module("netauto_demo", "pip install -e ./examples")
from netauto_demo.console import ExporterWatch, destination  # noqa: E402

DEMO = [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo"]


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_", "REDIS_URL"))}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "argument --rate: must be a number of runs per second > 0, got 0"),
        (["--rate", "nan"], "argument --rate: must be a number of runs per second > 0, got nan"),
        (["--duration", "-5"], "argument --duration: must be seconds >= 0 (0 runs until stopped), got -5"),
        (["--devices", "0"], "argument --devices: must be >= 1, got 0"),
        (["--port", "70000"], "argument --port: must be 0..65535"),
        (["--role", "load"], "argument --target: --role load needs the app's URL"),
        (["--role", "load", "--target", "localhost:8080"], "argument --target: expected an app URL"),
        (["--role", "load", "--target", "ftp://x:21"], "argument --target: expected an app URL"),
    ],
)
def test_bad_arguments_exit_2_like_argparse(args: list[str], message: str) -> None:
    done = subprocess.run([*DEMO, *args], capture_output=True, text=True, cwd=ROOT, env=demo_env(), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("usage: netauto-statsd demo"), done.stderr
    assert f"netauto-statsd demo: error: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_worker_without_redis_url_is_a_usage_error() -> None:
    done = subprocess.run([*DEMO, "--role", "worker"], capture_output=True, text=True, cwd=ROOT, env=demo_env())
    assert done.returncode == 2
    assert "error: --role worker needs REDIS_URL" in done.stderr


def test_load_against_an_app_that_is_down_is_one_line() -> None:
    target = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*DEMO, "--role", "load", "--target", target, "--duration", "5"],
        capture_output=True, text=True, cwd=ROOT, env=demo_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"error: the app at {target} does not answer" in done.stderr


def test_destination_says_which_setting_and_the_two_defaults() -> None:
    assert destination({"DD_DOGSTATSD_URL": "udp://10.0.0.1:9125"}) == "udp://10.0.0.1:9125 (DD_DOGSTATSD_URL)"
    assert destination({"DD_AGENT_HOST": "exp"}) == "udp://exp:8125 (DD_AGENT_HOST / DD_DOGSTATSD_PORT)"
    default = destination({})
    assert default.startswith("udp://localhost:8125 (the client's default")
    assert "listens on :9125 by default" in default and "DD_DOGSTATSD_URL=udp://127.0.0.1:9125" in default
    assert destination({"DD_DOGSTATSD_DISABLE": "true"}).startswith("nowhere")


def test_watch_says_down_once_and_up_once() -> None:
    told: list[str] = []
    figures = iter(
        [(0, 0), (1, 2), (2, 3), (3, 5), (3, 6), (3, 7), (3, 8), (3, 9), (4, 10)]  # (packets_failed, flushes)
    )

    def stats() -> dict[str, int]:
        failed, flushes = next(figures)
        return {"packets_failed": failed, "flushes": flushes}

    watch = ExporterWatch(stats, "udp://127.0.0.1:9", told.append)
    for _ in range(8):
        watch.check()
    assert len(told) == 3, told
    assert "is not answering (1 packets failed so far)" in told[0]
    assert told[1] == "metrics: the exporter at udp://127.0.0.1:9 answers again"
    assert "is not answering (4 packets" in told[2]


@pytest.fixture
def demo_without_exporter() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The whole demo pushing to a UDP port nobody listens on (yet)."""
    require_binary("redis-server", "apt-get install redis-server")
    port = free_port(socket.SOCK_DGRAM)
    env = demo_env(DD_DOGSTATSD_URL=f"udp://127.0.0.1:{port}")
    proc = subprocess.Popen([*DEMO, "--duration", "0", "--quiet", "--rate", "4"], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)  # fmt: skip
    try:
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(90)


def read_until(proc: subprocess.Popen[str], text: str, seen: list[str], timeout: float = 30.0) -> None:
    """Read the demo's stderr line by line until one contains ``text``."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, f"the demo ended before saying {text!r}:\n{''.join(seen)}"
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(seen)}")


def test_exporter_down_is_said_once_and_its_return_too(
    demo_without_exporter: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = demo_without_exporter
    seen: list[str] = []
    read_until(proc, f"metrics: the exporter at udp://127.0.0.1:{port} is not answering", seen)
    # A receiver appears on the port and reads, as an exporter does: one that never reads fills
    # its buffer, and the client's pacer then counts what it cannot take as failed
    # (tests/runtime/core/test_pacing.py), so the exporter would rightly never "answer again".
    received: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.settimeout(0.2)
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                try:
                    received.append(len(listener.recv(65535)))
                except OSError:
                    continue

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            read_until(proc, f"metrics: the exporter at udp://127.0.0.1:{port} answers again", seen)
        finally:
            stop.set()
            reader.join(5)
    assert received  # and metrics arrive
    text = "".join(seen)
    assert text.count("is not answering") == 1, text
    assert "Traceback" not in text and "Error submitting packet" not in text
