"""Process ends without loss: real child processes, samples counted at a real UDP receiver.

SIGTERM/SIGHUP with the opt-in handlers (default action re-delivered, or a previous
Python handler chained), and ``multiprocessing`` children under fork, forkserver
and spawn that never call ``flush()``. The flush interval is 60 s everywhere, so
only the shutdown path can have sent what arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines
from tests.support import ROOT, wait_until

SAMPLES = 250


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "NETAUTO_STATSD_"))}
    env.update(
        DD_DOGSTATSD_URL=f"udp://127.0.0.1:{port}",
        NETAUTO_STATSD_FLUSH_INTERVAL="60",
        PYTHONPATH=str(ROOT),
    )
    return env


def _received(sink: UdpSink) -> int:
    """Histogram samples of runner.duration that reached the sink so far."""
    lines = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    return sum(len(line.values) for line in lines if line.name == "netauto.runner.duration")


WAITING_CHILD = """
import signal, sys, time
import netauto_statsd
from netauto_statsd.emitter import get_emitter
{setup}
emitter = get_emitter()
for i in range({samples}):
    emitter.histogram("runner.duration", i / 100, tags={{"site": "par1", "protocol": "ssh", "status": "ok"}})
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _run_until_signalled(sink: UdpSink, setup: str, signum: int) -> subprocess.CompletedProcess[str]:
    code = WAITING_CHILD.format(setup=textwrap.dedent(setup), samples=SAMPLES)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=_env(sink.port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_opt_in_handler_flushes_then_dies_by_the_signal(sink: UdpSink, signame: str) -> None:
    signum = getattr(signal, signame)
    done = _run_until_signalled(sink, "netauto_statsd.install_shutdown_handlers()", signum)
    assert done.returncode == -signum, done.stderr  # the default action still happened
    assert _received(sink) == SAMPLES


def test_without_the_handler_sigterm_loses_the_window(sink: UdpSink) -> None:
    """The defect the handler fixes (issue 13): proves the test above can fail."""
    done = _run_until_signalled(sink, "", signal.SIGTERM)
    assert done.returncode == -signal.SIGTERM
    assert _received(sink) == 0


def test_a_previous_python_handler_still_runs_after_the_flush(sink: UdpSink) -> None:
    setup = """
    def graceful(signum, frame):
        print("graceful shutdown", netauto_statsd.stats()["flushes"], flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, graceful)
    netauto_statsd.install_shutdown_handlers()
    netauto_statsd.install_shutdown_handlers()  # idempotent: the previous handler is not lost
    """
    done = _run_until_signalled(sink, setup, signal.SIGTERM)
    assert done.returncode == 3, done.stderr
    assert "graceful shutdown 1" in done.stdout  # ours flushed first, then theirs ran
    assert _received(sink) == SAMPLES


def test_an_ignored_signal_stays_ignored_but_flushes(sink: UdpSink) -> None:
    setup = """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    netauto_statsd.install_shutdown_handlers(["SIGHUP"])
    """
    code = WAITING_CHILD.format(setup=textwrap.dedent(setup), samples=SAMPLES)
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(sink.port), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGHUP)
        sink.wait_lines(1, timeout=10)  # the flush on SIGHUP
        assert _received(sink) == SAMPLES
        assert proc.poll() is None  # still running: SIG_IGN was kept
    finally:
        proc.kill()
        proc.wait()


def test_uninstall_restores_the_previous_handlers() -> None:
    from netauto_statsd.shutdown import install_shutdown_handlers, uninstall_shutdown_handlers

    before = signal.getsignal(signal.SIGHUP)
    assert install_shutdown_handlers(["SIGHUP", "SIGNOTHERE"]) == [signal.SIGHUP]
    assert signal.getsignal(signal.SIGHUP) is not before
    uninstall_shutdown_handlers()
    assert signal.getsignal(signal.SIGHUP) == before


MP_PARENT = """
import multiprocessing, sys
sys.path.insert(0, {here!r})
import mp_target

if __name__ == "__main__":
    ctx = multiprocessing.get_context({method!r})
    mp_target.work({parent})  # the parent's own emitter is running when the children start
    procs = [ctx.Process(target=mp_target.work, args=({samples},)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    print([p.exitcode for p in procs], flush=True)
"""

MP_TARGET = """
from netauto_statsd.emitter import get_emitter

def work(samples):
    emitter = get_emitter()
    for i in range(samples):
        emitter.histogram("runner.duration", i / 100, tags={"site": "par1", "protocol": "ssh", "status": "ok"})
    # no flush(), no close(): the child's normal exit must send it
"""


@pytest.mark.parametrize(("method", "parent"), [("fork", 0), ("fork", 7), ("forkserver", 0), ("spawn", 7)])
def test_multiprocessing_children_flush_at_their_normal_exit(
    sink: UdpSink, tmp_path: Path, method: str, parent: int
) -> None:
    (tmp_path / "mp_target.py").write_text(MP_TARGET)
    script = tmp_path / "parent.py"
    script.write_text(MP_PARENT.format(here=str(tmp_path), method=method, samples=SAMPLES, parent=parent))
    done = subprocess.run(
        [sys.executable, str(script)], env=_env(sink.port), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0]"
    got = 0

    def all_arrived() -> bool:
        nonlocal got
        got += _received(sink)
        return got >= 3 * SAMPLES + parent

    wait_until(all_arrived, 10, "every child's samples (and the parent's, flushed at its exit)")
    assert got == 3 * SAMPLES + parent
