"""What the fork hook resets, run in this process (where a mutation run can see it).

The subprocess tests (``test_lifecycle_exit_paths.py``) prove it in a real forked
child; mutmut maps tests to code by what runs inside the pytest process, so this
one runs the hook here and checks its three effects on the wire: the next flush
goes out from a fresh socket (never the parent's), a context first seen after the
hook is created under the fresh lock, and per-process gauges carry a process tag
computed again (host-pid), not a leftover.
"""

from __future__ import annotations

import os
import socket
import weakref
from collections.abc import Callable, Iterator

import pytest

from netauto_statsd.emitter import Emitter, lifecycle
from netauto_statsd.tags import normalise_value
from tests.runtime.core.wire import Line, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A loopback UDP socket that also tells who sent each datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        yield sock


def _received(sock: socket.socket) -> tuple[list[Line], object]:
    datagram, sender = sock.recvfrom(65535)
    return [parse_dogstatsd(text) for text in split_lines([datagram])], sender


def test_after_the_fork_hook_the_emitter_sends_from_a_fresh_socket_with_a_fresh_process_tag(
    receiver: socket.socket, make_emitter: MakeEmitter
) -> None:
    emitter = make_emitter(receiver.getsockname()[1])
    emitter.gauge("liveview.sessions", 1, tags={"view": "/before"})
    emitter.flush()
    _, before = _received(receiver)
    parents = emitter._transport
    emitter._resolver._process_tag = "left-over"  # what a child would inherit: the parent's host-pid
    try:
        lifecycle._call(weakref.ref(emitter), "after_fork_in_child")
        emitter.gauge("liveview.sessions", 3, tags={"view": "/after"})  # a context first made after the hook
        emitter.increment("run.created", 2, tags={**RUN, "site": "lon1"})  # another one, not per-process
        emitter.flush()
        lines, after = _received(receiver)
    finally:
        if emitter._transport is not parents:
            parents.close()
    assert after != before, "after the fork hook the emitter must not send through the old socket"
    assert emitter.stats()["internal_errors"] == 0
    by_name = {line.name: line for line in lines}
    assert set(by_name) == {"netauto.liveview.sessions", "netauto.run.created"}
    gauge = by_name["netauto.liveview.sessions"]
    assert (gauge.values, gauge.tag_dict["view"]) == ((3,), "/after")
    assert gauge.tag_dict["process"] == normalise_value(f"{socket.gethostname()}-{os.getpid()}")
    assert by_name["netauto.run.created"].values == (2,)
