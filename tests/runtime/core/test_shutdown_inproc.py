"""The opt-in signal handlers and the child-exit flush of ``netauto_statsd.shutdown``, seen in-process.

``test_shutdown.py`` proves what a real SIGTERM or a real ``multiprocessing`` child
does, in subprocesses a mutation run cannot see. These tests call the installed
handler function directly (a real signal to the test process is not sent), on
signals whose default action is to do nothing (``SIGWINCH``, ``SIGURG``), so even
the re-delivered default action is harmless here; what the flush sends is read at
a real UDP socket, from a real emitter. The child-exit flush runs in a real
``fork`` child.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from netauto_statsd import shutdown
from netauto_statsd.emitter import Emitter
from tests.runtime.core.wire import UdpSink, split_lines

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}
#: signals whose default action is "ignore": re-delivering them to this process is harmless
QUIET = signal.SIGWINCH
QUIET_TOO = signal.SIGURG


class Recorder:
    """A flush target that notes which thread flushed it, and can be made slow or failing."""

    def __init__(self, block: threading.Event | None = None, hold: float = 0.0, fail: bool = False) -> None:
        self.block, self.hold, self.fail = block, hold, fail
        self.flushes: list[tuple[str, bool]] = []

    def flush(self) -> int:
        if self.block is not None:
            self.block.wait(self.hold)
        thread = threading.current_thread()
        self.flushes.append((thread.name, thread.daemon))
        if self.fail:
            raise RuntimeError("boom")
        return 1


@pytest.fixture(autouse=True)
def _restore_signals() -> Iterator[None]:
    """Whatever a test installs, the process's handlers and the module's records are put back."""
    before = {signum: signal.getsignal(signum) for signum in (QUIET, QUIET_TOO)}
    yield
    shutdown.uninstall_shutdown_handlers()
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    target = Recorder()
    shutdown.track(target)
    yield target
    shutdown._tracked.discard(target)


def _installed_handler(signum: int) -> Callable[[int, FrameType | None], Any]:
    handler = signal.getsignal(signum)
    assert callable(handler), handler
    return handler


def test_a_handled_signal_flushes_every_tracked_emitter_then_does_the_default_action(
    sink: UdpSink, make_emitter: MakeEmitter, recorder: Recorder
) -> None:
    """The emitter's window reaches the socket, from the shutdown thread; then the default action is back."""
    emitter = make_emitter(sink.port)  # flush interval 60 s: only the handler can send this
    for _ in range(3):
        emitter.increment("run.created", tags=RUN)
    assert signal.getsignal(QUIET) == signal.SIG_DFL
    assert shutdown.install_shutdown_handlers([QUIET]) == [QUIET]
    _installed_handler(QUIET)(QUIET, None)
    assert split_lines(sink.drain()) == ["netauto.run.created:3|c|#site:par1,protocol:ssh,env:dev,service:netauto"]
    assert recorder.flushes == [("netauto-statsd-shutdown", True)]  # a daemon helper thread, never the caller
    assert signal.getsignal(QUIET) == signal.SIG_DFL  # the default action, re-delivered as if we were not here


def test_a_previous_python_handler_runs_after_the_flush_with_the_same_arguments(recorder: Recorder) -> None:
    calls: list[tuple[int, FrameType | None, int]] = []

    def theirs(signum: int, frame: FrameType | None) -> None:
        calls.append((signum, frame, len(recorder.flushes)))

    signal.signal(QUIET, theirs)
    shutdown.install_shutdown_handlers([QUIET])
    shutdown.install_shutdown_handlers([QUIET])  # idempotent: "theirs" stays the previous handler
    frame = sys._getframe()
    _installed_handler(QUIET)(QUIET, frame)
    assert calls == [(QUIET, frame, 1)]  # once, after our flush, with the signal's own arguments
    assert signal.getsignal(QUIET) is shutdown._on_signal  # ours stays installed
    shutdown.uninstall_shutdown_handlers()
    assert signal.getsignal(QUIET) is theirs


def test_an_ignored_signal_stays_ignored_after_the_flush(recorder: Recorder) -> None:
    signal.signal(QUIET, signal.SIG_IGN)
    shutdown.install_shutdown_handlers([QUIET])
    _installed_handler(QUIET)(QUIET, None)
    assert recorder.flushes == [("netauto-statsd-shutdown", True)]
    assert signal.getsignal(QUIET) is shutdown._on_signal  # not reset to the default action
    shutdown.uninstall_shutdown_handlers()
    assert signal.getsignal(QUIET) == signal.SIG_IGN


def test_a_flush_that_outlasts_the_timeout_is_logged_and_the_signal_still_acts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flush still running ``FLUSH_TIMEOUT`` (2 s) after the signal: warned, and the previous handler runs anyway."""
    slow = Recorder(block=threading.Event(), hold=shutdown.FLUSH_TIMEOUT + 0.8)
    shutdown.track(slow)
    calls: list[int] = []
    signal.signal(QUIET, lambda signum, frame: calls.append(signum))
    try:
        shutdown.install_shutdown_handlers([QUIET])
        with caplog.at_level(logging.WARNING, logger="netauto_statsd"):
            _installed_handler(QUIET)(QUIET, None)
        assert calls == [QUIET]
        assert slow.flushes == []  # the handler did not wait for it
        assert [r.getMessage() for r in caplog.records] == [
            f"netauto_statsd: flush on signal {int(QUIET)} did not finish in 2.0 s"
        ]
    finally:
        assert slow.block is not None
        slow.block.set()
        shutdown._tracked.discard(slow)


def test_flush_with_timeout_reports_whether_the_flush_finished() -> None:
    gate = threading.Event()
    stuck = Recorder(block=gate, hold=30)
    shutdown.track(stuck)
    try:
        assert shutdown.flush_with_timeout(0.05) is False  # still waiting on the gate
        gate.set()
        assert shutdown.flush_with_timeout(10) is True
        assert ("netauto-statsd-shutdown", True) in stuck.flushes
    finally:
        gate.set()
        shutdown._tracked.discard(stuck)


def test_a_failing_flush_is_logged_and_the_other_emitters_still_flush(caplog: pytest.LogCaptureFixture) -> None:
    failing, fine = Recorder(fail=True), Recorder()
    for target in (failing, fine):
        shutdown.track(target)
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            assert shutdown.flush_with_timeout(10) is True
        assert len(failing.flushes) == 1 and len(fine.flushes) == 1
        assert "netauto_statsd: flush on signal failed: boom" in [r.getMessage() for r in caplog.records]
    finally:
        shutdown._tracked.discard(failing)
        shutdown._tracked.discard(fine)


def test_tracking_holds_emitters_weakly() -> None:
    target = Recorder()
    shutdown.track(target)
    assert target in shutdown._tracked
    ref = weakref.ref(target)
    del target
    assert ref() is None  # nothing else kept it alive


def test_install_skips_unknown_signals_accepts_numbers_and_returns_plain_ints() -> None:
    handled = shutdown.install_shutdown_handlers(["SIGNOTHERE", "SIGWINCH", int(QUIET_TOO)])
    assert handled == [QUIET, QUIET_TOO]
    assert [type(signum) for signum in handled] == [int, int]
    assert signal.getsignal(QUIET) is shutdown._on_signal and signal.getsignal(QUIET_TOO) is shutdown._on_signal
    assert shutdown.install_shutdown_handlers(["SIGWINCH"]) == [QUIET]  # again: still reported as handled


def test_uninstall_leaves_a_handler_installed_over_ours_and_forgets_what_it_recorded() -> None:
    def later(signum: int, frame: FrameType | None) -> None:
        pass

    def newer(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    calls: list[int] = []
    shutdown.install_shutdown_handlers([QUIET, QUIET_TOO])
    signal.signal(QUIET_TOO, later)  # someone replaced ours
    shutdown.uninstall_shutdown_handlers()
    assert signal.getsignal(QUIET) == signal.SIG_DFL
    assert signal.getsignal(QUIET_TOO) is later
    assert shutdown._installed == {}
    signal.signal(QUIET, newer)
    shutdown.install_shutdown_handlers([QUIET])  # records ``newer`` now, not the default from before
    _installed_handler(QUIET)(QUIET, None)
    assert calls == [QUIET]


def test_uninstall_puts_the_default_back_where_the_previous_handler_was_not_set_from_python() -> None:
    shutdown.install_shutdown_handlers([QUIET])
    shutdown._installed[QUIET] = None  # what signal.getsignal() reports for a handler set in C
    shutdown.uninstall_shutdown_handlers()
    assert signal.getsignal(QUIET) == signal.SIG_DFL


# ------------------------------------------------------------ multiprocessing
class DatagramFlush:
    """Flushing sends one datagram ``flushed <n>`` to the sink: a real socket shows each flush."""

    def __init__(self, port: int) -> None:
        self.port, self.count = port, 0

    def flush(self) -> int:
        self.count += 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(f"flushed {self.count}".encode(), ("127.0.0.1", self.port))
        return 1


def _child(port: int, keep: bool) -> None:
    target = DatagramFlush(port)
    registered = shutdown.flush_at_child_exit(target)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"registered {registered}".encode(), ("127.0.0.1", port))
    if keep:
        _kept.append(target)
    # returns without flushing: the child's normal exit (os._exit after the finalizers) must do it


_kept: list[DatagramFlush] = []


@pytest.mark.parametrize("keep", [True, False], ids=["alive", "collected"])
def test_a_fork_child_flushes_once_at_its_normal_exit_and_the_parent_registers_nothing(
    sink: UdpSink, keep: bool
) -> None:
    """In the test process (no ``multiprocessing`` parent) nothing is registered; in a child, one flush at exit.

    ``collected``: the child dropped its only reference, so the weakly held target is gone
    and its exit flushes nothing (and fails nothing).
    """
    assert shutdown.flush_at_child_exit(DatagramFlush(sink.port)) is False
    child = multiprocessing.get_context("fork").Process(target=_child, args=(sink.port, keep))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    expected = [b"registered True", b"flushed 1"] if keep else [b"registered True"]
    assert sink.drain() == expected


def test_the_child_exit_flush_logs_a_failure_and_skips_a_collected_target(caplog: pytest.LogCaptureFixture) -> None:
    failing = Recorder(fail=True)
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        shutdown._flush_ref(weakref.ref(failing))
        gone = Recorder(fail=True)
        ref = weakref.ref(gone)
        del gone
        shutdown._flush_ref(ref)
    assert len(failing.flushes) == 1
    assert [r.getMessage() for r in caplog.records] == ["netauto_statsd: flush at child exit failed: boom"]
