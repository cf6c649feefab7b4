"""What ``emitter.lifecycle`` registers, run for real: exit hooks in a forked child, failures logged, no restart.

The subprocess tests (``test_shutdown.py``) prove a real interpreter's exit; these
fork the test process itself after the hooks were registered here, so the hooks that
run in the child are the ones this process registered: the ``atexit`` callback
(run as the interpreter's exit would run it), the fork hook and the
``multiprocessing`` child's exit flush. Every check reads a real UDP socket.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import socket
import threading
import weakref
from collections.abc import Callable

import pytest

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, lifecycle, set_emitter
from netauto_statsd.tags import normalise_value
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}
LINE = "netauto.run.created:{}|c|#site:par1,protocol:ssh,env:dev,service:netauto"


def _flush_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "netauto-statsd-flush" and t.is_alive()}


def test_a_forked_childs_exit_sends_its_own_window_not_the_parents(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """The fork hook empties the child's copy; the ``atexit`` hook registered in the parent closes and flushes it."""
    emitter = make_emitter(sink.port)
    emitter.increment("run.created", 2, tags=RUN)  # the parent's window; registers the process hooks here
    pid = os.fork()
    if pid == 0:  # the child: emit, then exit as an interpreter does (atexit callbacks), never back into pytest
        code = 1
        try:
            emitter.increment("run.created", 5, tags=RUN)
            atexit._run_exitfuncs()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.wait_lines(1)
    assert split_lines(sink.drain()) == [LINE.format(5)], "the child sends what it counted, and only that"
    emitter.flush()
    assert split_lines(sink.drain()) == [LINE.format(2)], "the parent still owns (and sends) its own window"


def test_a_forked_child_sends_from_its_own_socket_with_its_own_process_tag(make_emitter: MakeEmitter) -> None:
    """The fork hook gives the child a fresh transport (never the parent's socket), a fresh process tag and
    fresh context ids; the parent's per-process gauge is not the child's to send."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        emitter = make_emitter(receiver.getsockname()[1])
        emitter.gauge("liveview.sessions", 1, tags={"view": "/parent"})
        emitter.flush()  # the parent's socket exists now
        _, parent_address = receiver.recvfrom(65535)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                emitter.gauge("liveview.sessions", 3, tags={"view": "/child"})  # a context made in the child
                emitter.flush()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        datagram, child_address = receiver.recvfrom(65535)
    assert child_address != parent_address, "the child must not send through the parent's socket"
    (line,) = [parse_dogstatsd(text) for text in split_lines([datagram])]
    assert (line.name, line.values) == ("netauto.liveview.sessions", (3,))
    assert line.tag_dict["view"] == "/child"
    assert line.tag_dict["process"] == normalise_value(f"{socket.gethostname()}-{pid}")


def _count_five() -> None:
    from netauto_statsd.emitter import get_emitter

    get_emitter().increment("run.created", 5, tags=RUN)  # no flush(), no close(): the child's exit sends it


def test_a_multiprocessing_fork_child_flushes_at_its_normal_exit(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """A ``multiprocessing`` child ends with ``os._exit``: the finalizer the flush thread's start registers sends it."""
    emitter = make_emitter(sink.port)
    set_emitter(emitter)
    emitter.increment("run.created", 2, tags=RUN)
    child = multiprocessing.get_context("fork").Process(target=_count_five)
    child.start()
    child.join(30)
    assert child.exitcode == 0
    sink.wait_lines(1)
    assert split_lines(sink.drain()) == [LINE.format(5)]
    emitter.flush()
    assert split_lines(sink.drain()) == [LINE.format(2)]


class _FlushFails(Emitter):
    """An emitter whose flush breaks (as a broken transport or hook beyond the emitter's guards would)."""

    failing = True
    calls = 0

    def flush(self) -> int:
        self.calls += 1
        if self.failing:
            raise RuntimeError("boom")
        return super().flush()


def test_a_failing_flush_is_logged_and_the_flush_thread_keeps_going(
    sink: UdpSink, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = _FlushFails(Settings(host="127.0.0.1", port=sink.port, flush_interval=0.01))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            emitter.increment("run.created", tags=RUN)  # starts the thread
            sink.wait_for(lambda _: emitter.calls >= 3, what="three flush attempts")
        messages = [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"]
        assert "netauto_statsd: flush thread error: boom" in messages
    finally:
        emitter.failing = False
        emitter.close()
    assert split_lines(sink.drain()) == [LINE.format(1)]  # close() sent what the thread could not


def test_an_exit_hook_that_fails_is_logged_not_raised(sink: UdpSink, caplog: pytest.LogCaptureFixture) -> None:
    """The ``atexit`` callback closes the emitter; a flush failing there is logged at debug level, never raised."""
    emitter = _FlushFails(Settings(host="127.0.0.1", port=sink.port, flush_interval=60.0))
    try:
        emitter.increment("run.created", tags=RUN)
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            lifecycle._call(weakref.ref(emitter), "close")
        messages = [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"]
        assert messages == ["netauto_statsd: close failed: boom"]
    finally:
        emitter.failing = False
        emitter.close()


def test_an_emission_after_close_starts_nothing(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """A closed emitter keeps what it is given but starts no flush thread and registers no exit hook."""
    emitter = make_emitter(sink.port)
    emitter.close()
    registered, threads = atexit._ncallbacks(), _flush_threads()
    emitter.increment("run.created", tags=RUN)
    assert emitter.stats()["accepted"] == 1
    assert atexit._ncallbacks() == registered
    assert _flush_threads() <= threads
    assert emitter._life.pid == -1
