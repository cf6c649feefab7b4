"""The metric objects' way in (``emitter.bound``): wiring, kept children and who may emit.

Which path a call took is observable: ``Emitter.stats()["accepted"]`` counts the
checked path (string layer, unbound calls, a tag set's first call), never a bound
child's fast path (its docstring says so). These tests pin that, on a real loopback
UDP socket, for the children ``emitter.bound`` keeps per tag set, the bound on how
many it keeps, and the entry points ``bound.install`` hands to the catalog.
"""

from __future__ import annotations

import dataclasses
import threading
import types
from collections.abc import Callable

import pytest

from netauto_statsd.catalog import liveview, runner, throughput
from netauto_statsd.emitter import Emitter, bound, fastcall
from netauto_statsd.emitter.bound import BoundOutcome
from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.instrument import run_created, timed
from tests.runtime.core.wire import UdpSink
from tests.runtime.core.wire import flushed as _flushed
from tests.runtime.core.wire import installed as _installed
from tests.runtime.core.wire import values_of as _values

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
WAIT = {"queue": "default", "func": "f"}
MakeEmitter = Callable[..., Emitter]


def test_install_hands_the_catalog_every_entry_point(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """What ``bound.install`` puts on a runtime namespace emits each kind, binds, and generates keyword calls."""
    emitter = _installed(sink, make_emitter)
    runtime = types.SimpleNamespace()
    bound.install(runtime)
    runtime.count(throughput.RUNS_CREATED, 2, RUN)
    runtime.observe(runner.DURATION, 0.5, RUN_OK)
    runtime.set_gauge(liveview.SESSIONS, 3, {"view": "/set"})
    runtime.move_gauge(liveview.SESSIONS, -2, {"view": "/move"})
    runtime.bind(throughput.RUNS_CREATED, {"site": "lon1", "protocol": "ssh"}).inc(4)
    runtime.install_fast(throughput.CHUNKS_APPENDED, "inc", runtime.count)
    throughput.CHUNKS_APPENDED.inc(site="par1", protocol="ssh")  # generated: first call, checked
    throughput.CHUNKS_APPENDED.inc(5, site="par1", protocol="ssh")  # generated: the kept child
    assert emitter.stats()["accepted"] == 5, "the second keyword call must reuse the child install_fast binds"
    lines = _flushed(emitter, sink)
    assert _values(lines, "run.created", **RUN) == [2]
    assert _values(lines, "run.created", site="lon1") == [4]
    assert _values(lines, "runner.duration", **RUN_OK) == [0.5]
    assert _values(lines, "liveview.sessions", view="/set") == [3]
    assert _values(lines, "liveview.sessions", view="/move") == [0, -2]  # below zero: "set 0, then move"
    assert _values(lines, "chunk.appended", **RUN) == [6]


def test_a_look_alike_is_refused_by_every_method_and_bound_child(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """A copy of a declared metric (another help text) never emits, whichever method or child it uses."""
    emitter = _installed(sink, make_emitter, strict=False)
    counter = dataclasses.replace(throughput.RUNS_CREATED, help="not the declared one")
    histogram = dataclasses.replace(runner.DURATION, help="not the declared one")
    gauge = dataclasses.replace(liveview.SESSIONS, help="not the declared one")
    histogram.observe(0.5, **RUN_OK)
    gauge.set(1, view="/set")
    gauge.add(1, view="/add")
    counter.bind(**RUN).inc()
    histogram.bind(**RUN_OK).observe(0.5)
    bound_gauge = gauge.bind(view="/bound")
    bound_gauge.set(1)
    bound_gauge.add(1)
    assert emitter.stats()["rejected"] == 7 and emitter.stats()["accepted"] == 0
    lines = _flushed(emitter, sink)
    assert {line.name for line in lines} == {"netauto.client.rejected"}
    assert _values(lines, "client.rejected", reason="unknown_metric") == [7]


def test_hooks_reuse_the_child_kept_for_a_tags_mapping(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``run_created`` and ``timed`` (tags as a mapping): only the first call of a tag set is resolved."""
    emitter = _installed(sink, make_emitter)
    for _ in range(3):
        run_created("par1", "ssh")
        with timed("rq.job.wait", WAIT):
            pass
    assert emitter.stats()["accepted"] == 2, "the second and third calls must use the kept children"
    lines = _flushed(emitter, sink)
    assert _values(lines, "run.created", **RUN) == [3]
    assert len(_values(lines, "rq.job.wait", **WAIT)) == 3


def test_an_unhashable_tag_value_in_a_mapping_is_resolved_on_every_call(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A list as a tag value cannot find a kept child: each call takes the checked path and still counts."""
    emitter = _installed(sink, make_emitter, strict=False)
    for _ in range(2):
        run_created(["par1"], "ssh")  # type: ignore[arg-type]
        with timed("rq.job.wait", {"queue": ["default"], "func": "f"}):
            pass
    assert emitter.stats()["accepted"] == 4 and emitter.stats()["internal_errors"] == 0
    lines = _flushed(emitter, sink)
    assert _values(lines, "run.created", site="__par1__", protocol="ssh") == [2]
    assert len(_values(lines, "rq.job.wait", queue="__default__")) == 2


def test_the_children_kept_per_metric_are_cleared_when_full(
    sink: UdpSink, make_emitter: MakeEmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ``KIDS_PER_METRIC`` kept children a new tag set clears them: one seen before is resolved again."""
    monkeypatch.setattr(bound, "KIDS_PER_METRIC", 3)
    emitter = _installed(sink, make_emitter)
    for site in ("a1", "a2", "a3"):
        run_created(site, "ssh")
    run_created("a1", "ssh")  # kept: fast
    assert emitter.stats()["accepted"] == 3
    run_created("a4", "ssh")  # a fourth tag set: the three kept are dropped, a4 kept
    run_created("a4", "ssh")  # kept: fast
    run_created("a1", "ssh")  # dropped: resolved again
    assert emitter.stats()["accepted"] == 5
    lines = _flushed(emitter, sink)
    assert [_values(lines, "run.created", site=site) for site in ("a1", "a2", "a3", "a4")] == [[3], [1], [1], [2]]


def test_the_keyword_children_kept_per_metric_are_cleared_when_full(
    sink: UdpSink, make_emitter: MakeEmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generated keyword function keeps at most ``fastcall.KIDS_PER_METRIC`` children, then starts again."""
    monkeypatch.setattr(fastcall, "KIDS_PER_METRIC", 3)
    emitter = _installed(sink, make_emitter)
    created = throughput.RUNS_CREATED
    created.inc(site="a0", protocol="ssh")  # installs the generated function (the first call is not kept)
    for site in ("a1", "a2", "a3"):
        created.inc(site=site, protocol="ssh")
    created.inc(site="a1", protocol="ssh")  # kept: fast
    assert emitter.stats()["accepted"] == 4
    created.inc(site="a4", protocol="ssh")  # a fourth tag set: the three kept are dropped, a4 kept
    created.inc(site="a4", protocol="ssh")  # kept: fast
    created.inc(site="a1", protocol="ssh")  # dropped: resolved again
    assert emitter.stats()["accepted"] == 6
    lines = _flushed(emitter, sink)
    assert [_values(lines, "run.created", site=site) for site in ("a1", "a2", "a3", "a4")] == [[3], [1], [1], [2]]


def test_a_bound_counter_takes_the_largest_value_on_its_fast_path(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``inc(1.797e308)`` is as finite as any other value: stored without a second resolution."""
    emitter = _installed(sink, make_emitter)
    throughput.RUNS_CREATED.bind(**RUN).inc(MAX_MAGNITUDE)
    assert emitter.stats()["accepted"] == 0
    assert _values(_flushed(emitter, sink), "run.created", **RUN) == [MAX_MAGNITUDE]


def test_a_keyword_call_with_an_undeclared_tag_keeps_no_child_for_its_declared_values(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A refused call (an extra tag) must not leave a child that later calls with the declared tags alone would find."""
    emitter = _installed(sink, make_emitter, strict=False)
    created = throughput.RUNS_CREATED
    created.inc(site="a0", protocol="ssh")  # installs the generated function
    created.inc(site="par1", protocol="ssh", bogus="x")  # type: ignore[call-arg]  # refused: undeclared tag
    created.inc(site="par1", protocol="ssh")
    created.inc(site="par1", protocol="ssh")
    assert emitter.stats()["rejected"] == 1
    lines = _flushed(emitter, sink)
    assert _values(lines, "run.created", **RUN) == [2]
    assert _values(lines, "client.rejected", reason="unknown_tag") == [1]


class _CountingLock:
    """The aggregator's real lock, counting how often it is taken (``BoundOutcome`` promises once per call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> _CountingLock:
        self._lock.acquire()
        self.taken += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_an_outcome_takes_the_aggregator_lock_once_for_its_feeds_and_never_per_begin_or_end(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A runner's start, then its stop, duration and bytes together: one lock to take the children's feeds
    at the first call, none per begin or end, for every value the children's own fast paths take (0 and
    the largest value included); the numbers are the children's."""
    emitter = _installed(sink, make_emitter)
    outcome = BoundOutcome(
        runner.STARTS.bind(**RUN),
        runner.STOPS.bind(**RUN_OK),
        runner.DURATION.bind(**RUN_OK),
        runner.BYTES.bind(**RUN_OK),
    )
    largest = int(MAX_MAGNITUDE)  # exactly 1.797e308: an int the exporter takes
    cases = [(0.0, 0), (0.25, 4446), (MAX_MAGNITUDE, 1), (0.5, largest)]
    lock = _CountingLock()
    emitter._agg.lock = lock  # type: ignore[assignment]
    for first, second in cases:
        outcome.begin()
        outcome.end(first, second)
    assert lock.taken == 1
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [4]
    assert _values(lines, "runner.stop", **RUN_OK) == [4]
    assert _values(lines, "runner.duration", **RUN_OK) == [first for first, _ in cases]
    assert _values(lines, "runner.bytes", **RUN_OK) == [second for _, second in cases]


def test_an_outcome_ending_in_a_new_epoch_resolves_again_once_and_then_stores_without_a_lock(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A run that began before the epoch moved (here a listener change on the same emitter) ends on the fast
    path: each child re-resolves once (one lock each, to reserve its counter), the feeds are taken in one
    more, and neither that end nor the next begin and end take any."""
    emitter = _installed(sink, make_emitter)
    outcome = BoundOutcome(
        runner.STARTS.bind(**RUN),
        runner.STOPS.bind(**RUN_OK),
        runner.DURATION.bind(**RUN_OK),
        runner.BYTES.bind(**RUN_OK),
    )
    outcome.begin()
    emitter.listener = None  # a new epoch, same emitter and aggregator
    lock = _CountingLock()
    emitter._agg.lock = lock  # type: ignore[assignment]
    outcome.end(0.25, 12)
    assert lock.taken == 4 + 1
    outcome.begin()
    outcome.end(0.5, 34)
    assert lock.taken == 4 + 1
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [2]
    assert _values(lines, "runner.stop", **RUN_OK) == [2]
    assert _values(lines, "runner.duration", **RUN_OK) == [0.25, 0.5]
    assert _values(lines, "runner.bytes", **RUN_OK) == [12, 34]
