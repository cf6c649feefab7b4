"""The flush thread and process hooks of ``emitter.lifecycle``, seen from inside the test process.

The subprocess tests prove what a real exit or fork does; these show the same
behaviour where a mutation run can see it: the thread the first emission starts
(its name, daemon flag, periodic flush), the ``atexit`` hook registered once per
emitter (and what it calls), and the fork hook's effect, run in this process.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable

from netauto_statsd.emitter import Emitter, epoch, lifecycle
from netauto_statsd.tags import normalise_value
from tests.runtime.core.wire import UdpSink, split_lines

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}


def _flush_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "netauto-statsd-flush" and t.is_alive()]


def _wait(done: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_first_emission_starts_one_daemon_flush_thread_that_flushes_every_interval(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A named daemon thread (a process exits without waiting for it) flushes on its own, then stops at close."""
    before = set(_flush_threads())
    emitter = make_emitter(sink.port, flush_interval=0.05)
    assert not set(_flush_threads()) - before  # not at construction (an earlier test's thread may end meanwhile)
    emitter.increment("run.created", tags=RUN)
    emitter.increment("run.created", tags=RUN)  # a second call starts no second thread
    (thread,) = set(_flush_threads()) - before
    assert thread.daemon
    lines = sink.wait_lines(1)  # no explicit flush: the thread sent it
    assert lines == ["netauto.run.created:2|c|#site:par1,protocol:ssh,env:dev,service:netauto"]
    emitter.close()
    thread.join(5)
    assert not thread.is_alive()


def test_the_atexit_hook_is_registered_once_and_closes_the_emitter(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """The first start registers one ``atexit`` callback; calling it as ``atexit`` would flushes and closes."""
    emitter = make_emitter(sink.port)
    registered, before = atexit._ncallbacks(), set(_flush_threads())
    emitter.increment("run.created", tags=RUN)
    emitter.increment("run.created", tags=RUN)
    assert atexit._ncallbacks() == registered + 1
    (thread,) = set(_flush_threads()) - before
    lifecycle._call(weakref.ref(emitter), "close")  # what the registered callback does at exit
    assert split_lines(sink.drain()) == ["netauto.run.created:2|c|#site:par1,protocol:ssh,env:dev,service:netauto"]
    thread.join(5)
    assert emitter._life.closed and not thread.is_alive()


def test_the_fork_hook_starts_a_new_epoch_and_resets_the_emitter(make_emitter: MakeEmitter, sink: UdpSink) -> None:
    """What a forked child runs: bound children re-resolve (new epoch) and the thread restarts on next use."""
    emitter = make_emitter(sink.port, flush_interval=0.05)
    emitter.increment("run.created", tags=RUN)
    before = epoch.current
    life = emitter._life
    lock = life.flush_lock
    lifecycle._call(weakref.ref(emitter), "after_fork_in_child")
    assert life.pid == -2 and life.flush_lock is not lock
    assert epoch.current is not before
    emitter.increment("run.created", tags=RUN)  # restarts the thread: the count reaches the socket
    assert sink.wait_lines(1)[-1].startswith("netauto.run.created:")


def test_after_close_the_woken_thread_ends_without_a_flush_of_its_own(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``close()`` does the last flush; the thread it wakes must not send the live gauges a second time."""
    before = set(_flush_threads())
    emitter = make_emitter(sink.port)  # the thread waits 60 s: only close() wakes it
    emitter.gauge("liveview.sessions", 3, tags={"view": "/v"})
    (thread,) = set(_flush_threads()) - before
    emitter.close()
    thread.join(5)
    assert not thread.is_alive()
    process = normalise_value(f"{socket.gethostname()}-{os.getpid()}")
    assert split_lines(sink.drain()) == [
        f"netauto.liveview.sessions:3|g|#view:/v,process:{process},env:dev,service:netauto"
    ]
    assert emitter.stats()["flushes"] == 1
