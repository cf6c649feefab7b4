"""Metric objects' way in: unbound calls (``RUNS_CREATED.inc(site=...)``) and bound children.

A bound child (``RUNS_CREATED.bind(site="par1", protocol="ssh")``) resolves its
tags once and keeps the context id; its ``inc()`` / ``observe()`` / ``set()`` /
``add()`` then cost one identity check (the :mod:`.epoch`), a type check and a
dict update under the aggregator's lock - the same work as prometheus_client's
prebound child. It re-resolves when the epoch moves: the process-wide emitter was
replaced (:func:`configure`, the test recorder), a listener was attached, or the
process forked. Anything unusual (a refused tag, a folded value, a listener, a
bad value) takes the ordinary path, with its checks and counters.
"""

from __future__ import annotations

import functools
from typing import Any

from netauto_statsd.catalog.model import CatalogError, Metric
from netauto_statsd.emitter import epoch, fastcall, process
from netauto_statsd.emitter.aggregate import Aggregator
from netauto_statsd.emitter.core import Emitter
from netauto_statsd.emitter.resolve import COUNTER, GAUGE, HISTOGRAM, cacheable
from netauto_statsd.emitter.values import MAX_MAGNITUDE

_MAX = MAX_MAGNITUDE
_NEVER = object()


# --------------------------------------------------------------- unbound calls
def _emitter() -> Emitter:
    emitter = process._default
    return emitter if emitter is not None else process.get_emitter()


#: Bound children kept per metric for repeated unbound calls (cleared when full).
KIDS_PER_METRIC = 1000


def _adopt(metric: Metric, tags: dict[str, object]) -> None:
    """Keep a bound child for this tag set, so the next identical unbound call is a bound call."""
    if not cacheable(metric.name, tags):
        return
    kids: dict[tuple[tuple[str, object], ...], _Bound] = metric._kids
    if len(kids) >= KIDS_PER_METRIC:
        kids.clear()
    try:
        kids[tuple(tags.items())] = _BOUND[metric.type](metric, tags)
    except CatalogError:  # strict mode: already raised by the call itself
        pass


def count(metric: Metric, value: object, tags: dict[str, object]) -> None:
    """``Counter.inc`` (first call with these tags, or tags that cannot be cached)."""
    _emitter().count(metric.name, metric, value, tags)
    _adopt(metric, tags)


def observe(metric: Metric, value: object, tags: dict[str, object]) -> None:
    """``Histogram.observe`` (first call with these tags, or tags that cannot be cached)."""
    _emitter().observe(metric.name, metric, value, tags)
    _adopt(metric, tags)


def count_with(metric: Metric, value: object, tags: dict[str, object]) -> None:
    """``metric.inc(value, **tags)`` for a tags mapping (keys need not be valid identifiers)."""
    try:
        child = metric._kids.get(tuple(tags.items()))
    except TypeError:
        child = None
    if child is None:
        count(metric, value, tags)
    else:
        child.inc(value)


def observe_with(metric: Metric, value: object, tags: dict[str, object]) -> None:
    """``metric.observe(value, **tags)`` for a tags mapping."""
    try:
        child = metric._kids.get(tuple(tags.items()))
    except TypeError:
        child = None
    if child is None:
        observe(metric, value, tags)
    else:
        child.observe(value)


def set_gauge(metric: Metric, value: object, tags: dict[str, object]) -> None:
    """``Gauge.set``."""
    _emitter().set_gauge(metric.name, metric, value, tags)


def move_gauge(metric: Metric, delta: object, tags: dict[str, object]) -> None:
    """``Gauge.add``."""
    _emitter().move_gauge(metric.name, metric, delta, tags)


# -------------------------------------------------------------- bound children
class _Bound:
    __slots__ = ("_agg", "_cid", "_emitter", "_epoch", "_seen", "metric", "tags")
    kind = ""

    def __init__(self, metric: Metric, tags: dict[str, object]) -> None:
        self.metric = metric
        self.tags = dict(tags)
        self._epoch: object = _NEVER  # equal to epoch.current only when the fast path applies
        self._seen: object = _NEVER  # the epoch the resolution below belongs to
        self._agg: Aggregator = Aggregator(0)
        self._cid = -1
        self._refresh()  # strict mode: a bad tag raises here, at bind time

    def _refresh(self) -> None:
        emitter = _emitter()
        current = epoch.current
        self._emitter = emitter
        self._seen = current
        self._epoch = _NEVER
        found = emitter.resolve(self.metric, self.kind, self.tags)
        if found is None or found.bumps or emitter.listener is not None:
            return  # every call takes the ordinary path (it counts what needs counting)
        self._agg = agg = emitter._agg
        self._cid = found.cid
        with agg.lock:
            agg.reserve(found.cid)
        emitter.ensure_running()
        self._epoch = current

    def _stale(self) -> bool:
        """Re-resolve if the epoch moved; True if the fast path now applies."""
        if self._seen is not epoch.current:
            self._refresh()
        return self._epoch is epoch.current

    def __repr__(self) -> str:
        return f"<bound {self.metric.name} {self.tags}>"


class BoundCounter(_Bound):
    """A counter with its tags fixed (from ``Counter.bind``)."""

    __slots__ = ()
    kind = COUNTER

    def inc(self, value: float = 1) -> None:
        """Add ``value`` (>= 0)."""
        cls = value.__class__
        if self._epoch is epoch.current and (cls is int or cls is float) and 0 < value <= _MAX:
            agg = self._agg
            with agg.lock:
                agg.counters[self._cid] += value
            return
        if self._epoch is not epoch.current and self._stale():
            self.inc(value)
        else:
            self._emitter.count(self.metric.name, self.metric, value, self.tags)


class BoundHistogram(_Bound):
    """A histogram with its tags fixed (from ``Histogram.bind``)."""

    __slots__ = ()
    kind = HISTOGRAM

    def observe(self, value: float) -> None:
        """Record one observation."""
        cls = value.__class__
        if self._epoch is epoch.current and (cls is float or cls is int) and -_MAX <= value <= _MAX:
            agg = self._agg
            with agg.lock:
                samples = agg.histograms.get(self._cid)
                if samples is not None and len(samples) < agg.capacity:
                    samples.append(value)
                else:
                    agg.add_sample(self._cid, value)
            return
        if self._epoch is not epoch.current and self._stale():
            self.observe(value)
        else:
            self._emitter.observe(self.metric.name, self.metric, value, self.tags)


class BoundGauge(_Bound):
    """A gauge with its tags fixed (from ``Gauge.bind``)."""

    __slots__ = ()
    kind = GAUGE

    def set(self, value: float) -> None:
        """Set this process's value."""
        cls = value.__class__
        if self._epoch is epoch.current and (cls is float or cls is int) and -_MAX <= value <= _MAX:
            agg = self._agg
            with agg.lock:
                agg.gauges[self._cid] = value
            return
        if self._epoch is not epoch.current and self._stale():
            self.set(value)
        else:
            self._emitter.set_gauge(self.metric.name, self.metric, value, self.tags)

    def add(self, delta: float) -> None:
        """Move this process's value by ``delta``."""
        cls = delta.__class__
        if self._epoch is epoch.current and (cls is float or cls is int) and -_MAX <= delta <= _MAX:
            agg = self._agg
            with agg.lock:
                gauges = agg.gauges
                gauges[self._cid] = gauges.get(self._cid, 0) + delta
            return
        if self._epoch is not epoch.current and self._stale():
            self.add(delta)
        else:
            self._emitter.move_gauge(self.metric.name, self.metric, delta, self.tags)


class BoundOutcome:
    """A start counter, then a stop counter and two histograms recorded together (a runner's lifecycle).

    On its fast path no lock is taken: a start appends to the start counter's feed,
    an end to the stop counter's and both histograms' feeds
    (:meth:`~netauto_statsd.emitter.aggregate.Aggregator.ticks_for`), which the next
    flush drains exactly. A feed that holds ``capacity`` items sends the call through
    the locked path (same stores, sampling past the per-flush capacity). When any
    child is off its fast path (a refused tag, a listener, a value out of range) the
    children are used one by one, with their checks and counters.
    """

    __slots__ = (
        "_cids",
        "agg",
        "capacity",
        "durations",
        "epoch",
        "first",
        "second",
        "sizes",
        "start",
        "start_cid",
        "starts",
        "stop",
        "stops",
    )

    def __init__(self, start: BoundCounter, stop: BoundCounter, first: BoundHistogram, second: BoundHistogram) -> None:
        self.start, self.stop, self.first, self.second = start, stop, first, second
        #: the epoch the fast path is valid for, its aggregator, the start counter's context and
        #: the feeds (public so runner_lifecycle can inline begin() and end())
        self.epoch: object = _NEVER
        self.agg = start._agg
        self.start_cid = 0
        self._cids = (0, 0, 0, 0)
        self.capacity = 0
        self.starts: list[int] = []
        self.stops: list[int] = []
        self.durations: list[float] = []
        self.sizes: list[float] = []

    def _fast(self) -> bool:
        """Refresh after an epoch change; True if all four children are on their fast path."""
        kids = (self.start, self.stop, self.first, self.second)
        if not all(kid._stale() for kid in kids) or len({id(kid._agg) for kid in kids}) != 1:
            return False
        self.agg = agg = self.start._agg
        self._cids = start, stop, one, two = (self.start._cid, self.stop._cid, self.first._cid, self.second._cid)
        with agg.lock:
            self.starts, self.stops = agg.ticks_for(start), agg.ticks_for(stop)
            self.durations, self.sizes = agg.samples_for(one), agg.samples_for(two)
        self.capacity = agg.capacity
        self.start_cid = start
        self.epoch = epoch.current
        return True

    def begin(self) -> None:
        """Count a start."""
        if self.epoch is epoch.current or self._fast():
            if len(self.starts) < self.capacity:
                self.starts.append(1)
                return
            agg = self.agg
            with agg.lock:
                agg.add_count(self.start_cid, 1)
        else:
            self.start.inc()

    def end(self, first: float, second: int) -> None:
        """Count a stop, observe ``first`` (seconds) and ``second`` (bytes)."""
        if (
            (self.epoch is epoch.current or self._fast())
            and 0.0 <= first <= _MAX
            and second.__class__ is int
            and 0 <= second <= _MAX
        ):
            if len(self.durations) < self.capacity:
                self.stops.append(1)
                self.durations.append(first)
                self.sizes.append(second)
                return
            agg = self.agg
            _, stop, one, two = self._cids
            with agg.lock:
                agg.add_count(stop, 1)
                agg.add_sample(one, first)
                agg.add_sample(two, second)
            return
        self.stop.inc()
        self.first.observe(first)
        self.second.observe(second)


_BOUND: dict[str, type[_Bound]] = {"counter": BoundCounter, "histogram": BoundHistogram, "gauge": BoundGauge}


def bind(metric: Metric, tags: dict[str, object]) -> _Bound:
    """``Metric.bind``: a child of the right kind."""
    return _BOUND[metric.type](metric, tags)


def install(runtime: Any) -> None:
    """Point the catalog's metric objects at these entry points (done on the first emission)."""
    runtime.count = count
    runtime.observe = observe
    runtime.set_gauge = set_gauge
    runtime.move_gauge = move_gauge
    runtime.bind = bind
    runtime.install_fast = functools.partial(fastcall.install, bind=bind)
