"""Bound children and the decorated runner on their fast path: same numbers on the wire as the checked path.

A bound child (``metric.bind(...)``) and ``@runner_lifecycle({...})`` skip per-call
resolution: after binding, a call is one locked store (``Emitter.stats()["accepted"]``
does not count it, as its docstring says). Tests elsewhere mostly run with the test
recorder attached, which sends every call down the ordinary path; these run without
it, against a real loopback UDP socket, so the fast path itself is what is measured.
"""

from __future__ import annotations

from collections.abc import Callable

from netauto_statsd.catalog import liveview, runner, throughput
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.instrument import current_run, runner_lifecycle
from netauto_statsd.testing import recording
from tests.runtime.core.wire import UdpSink
from tests.runtime.core.wire import flushed as _flushed
from tests.runtime.core.wire import installed as _installed
from tests.runtime.core.wire import values_of as _values

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
MakeEmitter = Callable[..., Emitter]


def test_a_bound_gauge_moves_from_its_current_value(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``add()`` on the fast path accumulates (from 0 for a new context) and can go below zero."""
    emitter = _installed(sink, make_emitter)
    sessions = liveview.SESSIONS.bind(view="/v")
    for delta in (1, 1, 1, -1, 0.5):
        sessions.add(delta)
    assert _values(_flushed(emitter, sink), "liveview.sessions", view="/v") == [2.5]
    sessions.add(-4)  # -1.5: sent as "set 0, then move down" (a leading '-' is relative)
    assert _values(_flushed(emitter, sink), "liveview.sessions", view="/v") == [0, -1.5]
    sessions.set(7)
    sessions.add(-2)
    assert _values(_flushed(emitter, sink), "liveview.sessions", view="/v") == [5]
    assert emitter.stats()["accepted"] == 0, "every call above took the fast path"


def test_bound_children_stay_on_their_fast_path_up_to_the_largest_value(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """The fast path takes every finite value the checked path takes, ints and floats, up to +-1.797e308."""
    emitter = _installed(sink, make_emitter)
    created = throughput.RUNS_CREATED.bind(**RUN)
    duration = runner.DURATION.bind(**RUN_OK)
    sessions = liveview.SESSIONS.bind(view="/v")
    created.inc()
    created.inc(2.5)
    duration.observe(0)
    duration.observe(0.25)
    duration.observe(MAX_MAGNITUDE)
    duration.observe(-MAX_MAGNITUDE)
    sessions.set(MAX_MAGNITUDE)
    sessions.set(-MAX_MAGNITUDE)
    sessions.set(0)
    sessions.add(MAX_MAGNITUDE)
    sessions.add(-MAX_MAGNITUDE)  # back to 0
    sessions.add(3)
    assert emitter.stats()["accepted"] == 0, "a bound child's call must not be resolved again"
    lines = _flushed(emitter, sink)
    assert _values(lines, "run.created", **RUN) == [3.5]
    assert _values(lines, "runner.duration", **RUN_OK) == [0, 0.25, MAX_MAGNITUDE, -MAX_MAGNITUDE]
    assert _values(lines, "liveview.sessions", view="/v") == [3]


def test_a_bound_counter_at_zero_still_creates_its_series(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``inc(0)`` (e.g. errors at 0, so ``rate()`` works) takes the checked path, which sends the 0."""
    emitter = _installed(sink, make_emitter)
    throughput.RUNS_CREATED.bind(**RUN).inc(0)
    assert _values(_flushed(emitter, sink), "run.created", **RUN) == [0]
    assert emitter.stats()["accepted"] == 1


def test_bad_values_on_bound_children_are_refused_and_counted(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Off the fast path a bad value meets the ordinary checks: refused, counted, nothing sent for it."""
    emitter = _installed(sink, make_emitter, strict=False)
    created = throughput.RUNS_CREATED.bind(**RUN)
    duration = runner.DURATION.bind(**RUN_OK)
    sessions = liveview.SESSIONS.bind(view="/v")
    created.inc(-1)
    created.inc(float("inf"))
    created.inc(True)
    duration.observe(float("nan"))
    duration.observe("0.5")  # type: ignore[arg-type]
    sessions.set(float("-inf"))
    sessions.add(float("nan"))
    sessions.add(None)  # type: ignore[arg-type]
    assert emitter.stats()["rejected"] == 8
    lines = _flushed(emitter, sink)
    assert {line.name for line in lines} == {"netauto.client.rejected"}
    assert _values(lines, "client.rejected", reason="bad_value") == [8]


def test_the_decorated_runner_records_on_its_fast_path(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``@runner_lifecycle({...})`` on a plain function: start, stop, duration and bytes, no lock per call."""
    emitter = _installed(sink, make_emitter)
    sizes = [4446, 0, 12]

    @runner_lifecycle(RUN)
    def execute(size: int) -> int:
        current_run().add_bytes(size)
        return size

    assert [execute(size) for size in sizes] == sizes
    assert emitter.stats()["accepted"] == 0, "the decorated call must stay on the fast path"
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [3]
    assert _values(lines, "runner.stop", **RUN_OK) == [3]
    assert sorted(_values(lines, "runner.bytes", **RUN_OK)) == sorted(sizes)
    durations = _values(lines, "runner.duration", **RUN_OK)
    assert len(durations) == 3 and all(0 <= d < 4446 for d in durations)  # seconds, not the bytes


def test_the_decorated_runner_leaves_the_fast_path_for_bytes_it_cannot_store_there(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """Fractional bytes (a float) go through the checked path and still arrive."""
    emitter = _installed(sink, make_emitter)

    @runner_lifecycle(RUN)
    def execute() -> None:
        current_run().add_bytes(1.5)  # type: ignore[arg-type]

    execute()
    execute()
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.bytes", **RUN_OK) == [1.5, 1.5]
    assert _values(lines, "runner.stop", **RUN_OK) == [2]
    assert len(_values(lines, "runner.duration", **RUN_OK)) == 2


def test_a_context_keeps_at_most_its_capacity_per_flush_on_the_fast_path(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """The per-flush memory bound holds for bound children and the decorated runner; counts stay exact."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 4
    duration = runner.DURATION.bind(site="lon1", protocol="ssh", status="ok")
    for i in range(10):
        duration.observe(i / 10)

    @runner_lifecycle(RUN)
    def execute() -> None:
        current_run().add_bytes(100)

    for _ in range(10):
        execute()
    lines = _flushed(emitter, sink)
    for name, tags in (("runner.duration", {"site": "lon1"}), ("runner.bytes", RUN_OK), ("runner.duration", RUN)):
        kept = [line for line in lines if line.name == f"netauto.{name}" and tags.items() <= line.tag_dict.items()]
        assert sum(len(line.values) for line in kept) == 4, (name, tags)
        assert sum(len(line.values) * line.repeat for line in kept) == 10, (name, tags)


def test_bound_children_follow_a_replaced_emitter(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """After ``configure()`` / ``set_emitter()`` the next call of every kind lands in the new emitter."""
    old = _installed(sink, make_emitter)
    created = throughput.RUNS_CREATED.bind(**RUN)
    duration = runner.DURATION.bind(**RUN_OK)
    sessions = liveview.SESSIONS.bind(view="/v")
    pending = liveview.SESSIONS.bind(view="/w")
    other = UdpSink()
    try:
        new = make_emitter(other.port)
        set_emitter(new)
        created.inc(2)
        duration.observe(0.5)
        sessions.set(4)
        pending.add(3)
        assert _flushed(old, sink) == []
        lines = _flushed(new, other)
    finally:
        other.close()
    assert _values(lines, "run.created", **RUN) == [2]
    assert _values(lines, "runner.duration", **RUN_OK) == [0.5]
    assert _values(lines, "liveview.sessions", view="/v") == [4]
    assert _values(lines, "liveview.sessions", view="/w") == [3]


def test_a_runner_decorated_before_the_recorder_is_attached_is_seen_by_it(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A module-level ``@runner_lifecycle`` used on its fast path, then under ``recording()``: every call recorded."""
    emitter = _installed(sink, make_emitter)

    @runner_lifecycle(RUN)
    def execute() -> None:
        current_run().add_bytes(10)

    execute()
    with recording() as recorder:
        execute()
        execute()
    assert recorder.total("runner.start", **RUN) == 2
    assert recorder.total("runner.stop", **RUN_OK) == 2
    assert recorder.values("runner.bytes", **RUN_OK) == [10, 10]
    assert _values(_flushed(emitter, sink), "runner.start", **RUN) == [1]


def test_a_new_epoch_on_the_same_emitter_keeps_the_window(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Attaching and detaching a listener re-resolves the children; starts counted before it are not lost."""
    emitter = _installed(sink, make_emitter)

    @runner_lifecycle(RUN)
    def execute() -> None:
        pass

    for _ in range(3):
        execute()
    emitter.listener = None  # a new epoch, same emitter and aggregator
    execute()
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [4]
    assert _values(lines, "runner.stop", **RUN_OK) == [4]
