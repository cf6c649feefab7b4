"""Aggregation between flushes: one typed store per kind, under one lock.

* counters: a list indexed by context id (the hot path is one ``+=``); a window or
  lifetime sum that leaves float64 is refused at flush and counted;
* gauges: ``{context id: value}``, kept across flushes (re-sent while the process lives);
* histograms: ``{context id: samples}``, at most :data:`SAMPLES_PER_CONTEXT` per flush.
  Past that a context keeps a uniform sample (reservoir sampling) and the flush
  sends it with DogStatsD sample rates ``1/m`` that statsd_exporter expands
  exactly (it repeats each value ``int(1/rate)`` times), so counts stay exact and
  the sum is estimated from a uniform sample.

The lock is held for a dict update only; turning a drained window into a
:class:`~netauto_statsd.wire.Batch` happens outside it.

A hot path that records the same contexts call after call (the decorated runner)
may skip the lock: it appends to a *feed*, a list kept per context for the life
of the aggregator (``ticks_for`` for a counter: one item per ``+1``;
``samples_for`` for a histogram: the values). ``list.append`` is atomic, and
:meth:`Aggregator.drain` takes from each feed only the items it counted
(``n = len(items)``, copy ``[:n]``, ``del [:n]``), so an append that lands
meanwhile stays for the next flush: nothing is lost or counted twice. Feeds are
bounded by their user (at most ``capacity`` items each, then the locked path).
"""

from __future__ import annotations

import math
import random
import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from itertools import repeat as forever
from operator import add

from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire import Batch, Context

#: Context id of one of the client's own counters, from its name and tag pairs.
ClientContext = Callable[[str, tuple[tuple[str, str], ...]], int]

#: Histogram samples one context keeps per flush before it switches to sampling.
SAMPLES_PER_CONTEXT = 32_768
#: Largest repetition a sample rate may ask of the exporter; beyond it samples are dropped and counted.
MAX_REPEAT = 1000


def exact_rate(repeat: int) -> float:
    """The float ``r`` nearest ``1/repeat`` for which ``int(1 / r) == repeat`` (what the exporter computes).

    >>> exact_rate(4), int(1 / exact_rate(3))
    (0.25, 3)
    """
    rate = 1.0 / repeat
    while int(1.0 / rate) < repeat:
        rate = math.nextafter(rate, 0.0)
    while int(1.0 / rate) > repeat:
        rate = math.nextafter(rate, 1.0)
    return rate


@dataclass
class Window:
    """What one flush takes out of the stores (context ids, not contexts yet)."""

    counters: list[float]
    gauges: dict[int, float]
    histograms: dict[int, list[float]]
    offered: dict[int, int]  # contexts that sampled: how many samples they were offered
    zeros: set[int]  # counters incremented by exactly 0
    extra: dict[int, float] = field(default_factory=dict)  # client counters added while building


class Aggregator:
    """The typed stores of one emitter. Callers hold :attr:`lock` around the ``add_*`` methods."""

    def __init__(self, samples_per_context: int = SAMPLES_PER_CONTEXT) -> None:
        self.lock = threading.Lock()
        self.capacity = samples_per_context
        self.counters: list[float] = []
        self.gauges: dict[int, float] = {}
        self.histograms: dict[int, list[float]] = {}
        self.offered: dict[int, int] = {}
        self.zeros: set[int] = set()  # counters incremented by 0 in this window
        self.accepted = 0
        self._totals: dict[int, float] = {}  # counter sums already sent, per context
        self._ticks: dict[int, list[int]] = {}  # counter context -> lock-free +1s (feeds)
        self._feeds: dict[int, list[float]] = {}  # histogram context -> lock-free values (feeds)

    # ------------------------------------------------------------------ feeds
    def ticks_for(self, cid: int) -> list[int]:
        """The feed of counter ``cid``: append ``1`` to it to add one, without the lock (call with the lock held)."""
        feed = self._ticks.get(cid)
        if feed is None:
            feed = self._ticks[cid] = []
        return feed

    def samples_for(self, cid: int) -> list[float]:
        """The feed of histogram ``cid``: append a value to observe it, without the lock (call with the lock held)."""
        feed = self._feeds.get(cid)
        if feed is None:
            feed = self._feeds[cid] = []
        return feed

    def _take_feeds(self) -> None:
        """Move what the feeds hold into the stores (call with the lock held)."""
        for cid, ticks in self._ticks.items():
            n = len(ticks)
            if n:
                del ticks[:n]  # an append landing now is at index >= n: it stays
                self.add_count(cid, n)
        for cid, feed in self._feeds.items():
            n = len(feed)
            if n:
                values = feed[:n]
                del feed[:n]
                self.add_samples(cid, values)

    # ------------------------------------------------------------------- adds
    def reserve(self, cid: int) -> None:
        """Make room for context ``cid`` in the counter list (call with the lock held)."""
        missing = cid + 1 - len(self.counters)
        if missing > 0:
            self.counters.extend([0] * missing)

    def add_count(self, cid: int, value: float) -> None:
        """Add to a counter (a sum past float64 is refused at flush)."""
        counters = self.counters
        if cid >= len(counters):
            self.reserve(cid)
        counters[cid] += value
        if not value:  # an explicit 0 still creates the series (e.g. errors at 0, so rate() works)
            self.zeros.add(cid)

    def add_sample(self, cid: int, value: float) -> None:
        """Keep one histogram observation (or sample it in, past the per-flush capacity)."""
        samples = self.histograms.get(cid)
        if samples is None:
            self.histograms[cid] = [value]
        elif len(samples) < self.capacity:
            samples.append(value)
        else:
            self._sample(cid, samples, value)

    def add_samples(self, cid: int, values: list[float]) -> None:
        """Keep several observations of one context."""
        samples = self.histograms.get(cid)
        if samples is None:
            samples = self.histograms[cid] = []
        room = self.capacity - len(samples)
        if len(values) <= room:
            samples.extend(values)
            return
        samples.extend(values[:room])
        for value in values[max(room, 0) :]:
            self._sample(cid, samples, value)

    def _sample(self, cid: int, samples: list[float], value: float) -> None:
        seen = self.offered.get(cid, len(samples)) + 1
        self.offered[cid] = seen
        slot = int(random.random() * seen)  # Algorithm R: every offered sample kept with equal chance
        if slot < len(samples):
            samples[slot] = value

    def set_gauge(self, cid: int, value: float) -> None:
        """Set a gauge."""
        self.gauges[cid] = value

    def move_gauge(self, cid: int, delta: float) -> None:
        """Move a gauge by ``delta``."""
        self.gauges[cid] = self.gauges.get(cid, 0) + delta

    def bump(self, cid: int, value: float = 1) -> None:
        """Add to one of the client's own counters."""
        self.add_count(cid, value)

    # ------------------------------------------------------------------ drain
    def drain(self) -> Window:
        """Take the current window out of the stores (gauges are copied, they live on)."""
        with self.lock:
            if self._ticks or self._feeds:
                self._take_feeds()
            window = Window(self.counters, dict(self.gauges), self.histograms, self.offered, self.zeros)
            self.counters = [0] * len(window.counters)
            self.histograms, self.offered, self.zeros = {}, {}, set()
        return window

    def build(self, window: Window, contexts: list[Context], client: ClientContext) -> Batch:
        """Turn a drained window into a batch, with the client counters it implies in the same batch.

        ``client(name, pairs)`` returns the context id of one of the client's own
        counters (``client.sampled``, ``client.dropped``, ``client.rejected``).
        """
        batch = Batch()
        extra = window.extra
        for cid, values in window.histograms.items():
            context = contexts[cid]
            offered = window.offered.get(cid)
            if offered is None:
                batch.histograms[context] = values
                continue
            kept = len(values)
            repeat, heavier = divmod(offered, kept)
            if repeat >= MAX_REPEAT:
                dropped = client("client.dropped", (("reason", "pending_overflow"),))
                extra[dropped] = extra.get(dropped, 0) + offered - kept * MAX_REPEAT
                repeat, heavier = MAX_REPEAT, 0
            # ``kept - heavier`` values stand for ``repeat`` each, the rest for ``repeat + 1``:
            # together exactly the samples offered (or the cap).
            groups = [(exact_rate(repeat), values[: kept - heavier])]
            if heavier:
                groups.append((exact_rate(repeat + 1), values[kept - heavier :]))
            batch.sampled[context] = groups
            key = client("client.sampled", (("metric", normalise_value(context[0].name)),))
            extra[key] = extra.get(key, 0) + min(offered, kept * MAX_REPEAT) - kept
        counters = window.counters
        ids: list[int] = []
        sums: list[float] = []
        if window.zeros or any(counters):
            ids, sums = self._counter_rows(counters, window.zeros, client, extra)
        if extra:  # the client's own counters: added to a context already there, or after the others
            known = len(ids)
            for cid, value in extra.items():
                at = bisect_left(ids, cid, 0, known)
                if at < known and ids[at] == cid:
                    sums[at] += value
                else:
                    ids.append(cid)
                    sums.append(value)
        if ids:
            batch.set_counter_rows(ids, sums, contexts)
        batch.gauges = {contexts[cid]: value for cid, value in window.gauges.items()}
        return batch

    def _counter_rows(
        self, counters: list[float], zeros: set[int], client: ClientContext, extra: dict[int, float]
    ) -> tuple[list[int], list[float]]:
        """The window's counters to send: context ids in ascending order and their values (in bulk:
        a flush may carry 10,000). A context whose lifetime sum would leave float64 is refused and counted.
        """
        totals = self._totals
        if zeros:  # counters incremented by exactly 0 are sent too (the series must exist)
            ids = sorted(set(compress(range(len(counters)), counters)) | zeros)
            values = [counters[cid] for cid in ids]
        else:
            ids = list(compress(range(len(counters)), counters))
            values = list(compress(counters, counters))
        sums = list(map(add, map(totals.get, ids, forever(0)), values))
        if not sums or max(sums) <= MAX_MAGNITUDE:
            totals.update(zip(ids, sums, strict=True))
            return ids, values
        kept_ids, kept = [], []
        for cid, value, total in zip(ids, values, sums, strict=True):
            if total > MAX_MAGNITUDE:  # the exporter's sum would become +Inf for good
                over = client("client.rejected", (("reason", "counter_overflow"),))
                extra[over] = extra.get(over, 0) + 1
                continue
            totals[cid] = total
            kept_ids.append(cid)
            kept.append(value)
        return kept_ids, kept

    def after_fork_in_child(self) -> None:
        """Start empty with a fresh lock: the parent still owns (and sends) what it aggregated."""
        self.lock = threading.Lock()
        self.counters, self.gauges, self.histograms, self.offered, self.zeros = [], {}, {}, {}, set()
        self._totals = {}
        for ticks in self._ticks.values():  # the feeds stay (their users hold them), empty
            del ticks[:]
        for feed in self._feeds.values():
            del feed[:]
