"""The decorated runner's lock-free feeds: exact counts while flushes race the appends, and across fork.

``@runner_lifecycle({...})`` appends to per-context feeds without the aggregator's
lock; each flush takes from a feed only the items it counted. A drain that copied a
feed and then cleared it would lose the appends landing in between: with threads
trading the GIL every microsecond and a flush running in a loop, that loses runs
here, and the exporter's counts would not match.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.instrument import current_run, runner_lifecycle
from tests.runtime.core.test_emitter import _fork, _wait_child
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines
from tests.support import Exporter

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
THREADS, CALLS = 8, 2000


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Threads trade the GIL every microsecond: a race between appends and a drain gets its chance."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _run_threads(target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        try:
            start.wait(30)
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]


@pytest.mark.exporter
def test_runner_counts_are_exact_while_flushes_race_the_feeds(
    exporter: Exporter, emitter_for: Any, tiny_switch_interval: None
) -> None:
    emitter: Emitter = emitter_for(exporter)
    stop = threading.Event()
    flushes = [0]

    @runner_lifecycle(RUN)
    def execute(size: int) -> None:
        current_run().add_bytes(size)

    def flusher() -> None:
        while not stop.is_set():
            emitter.flush()
            flushes[0] += 1

    thread = threading.Thread(target=flusher, daemon=True)
    thread.start()
    try:
        _run_threads(lambda index: [execute(i % 3) for i in range(CALLS)])  # type: ignore[func-returns-value]
    finally:
        stop.set()
        thread.join(30)
    assert flushes[0] > 10, "the flushes must race the workload"
    emitter.flush()
    runs = THREADS * CALLS
    exporter.wait_value("netauto_runner_starts_total", runs, **RUN)
    exporter.wait_value("netauto_runner_stops_total", runs, **RUN_OK)
    exporter.wait_value("netauto_runner_duration_seconds_count", runs, **RUN_OK)
    exporter.wait_value("netauto_runner_processed_bytes_count", runs, **RUN_OK)
    exporter.wait_value("netauto_runner_processed_bytes_sum", THREADS * sum(i % 3 for i in range(CALLS)), **RUN_OK)
    assert emitter.stats()["samples_failed"] == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_send_the_parents_pending_runs(sink: UdpSink, make_emitter: Any) -> None:
    emitter: Emitter = make_emitter(sink.port)
    set_emitter(emitter)

    @runner_lifecycle(RUN)
    def execute() -> None:
        current_run().add_bytes(7)

    for _ in range(3):
        execute()  # pending in the feeds when the process forks

    def child() -> None:
        execute()
        emitter.flush()

    assert _wait_child(_fork(child)) == 0
    from_child = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    counts = {line.name: line.values for line in from_child if not line.name.endswith(("duration", "bytes"))}
    assert counts == {"netauto.runner.start": (1.0,), "netauto.runner.stop": (1.0,)}
    assert [line.values for line in from_child if line.name == "netauto.runner.bytes"] == [(7.0,)]

    emitter.flush()  # the parent sends its own three, exactly once
    from_parent = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    counts = {line.name: line.values for line in from_parent if not line.name.endswith(("duration", "bytes"))}
    assert counts == {"netauto.runner.start": (3.0,), "netauto.runner.stop": (3.0,)}
    assert [line.values for line in from_parent if line.name == "netauto.runner.bytes"] == [(7.0, 7.0, 7.0)]
