"""The :class:`Emitter`: the one door every metric goes through.

It composes the parts: :mod:`.resolve` (catalog check, tag safety, cardinality,
cache), :mod:`.aggregate` (typed stores, sampling), :mod:`.lifecycle` (flush
thread, ``atexit``, fork) and a transport from :mod:`netauto_statsd.wire`.

Nothing here raises into the caller except :class:`CatalogError` in strict mode:
every other failure is counted (client self-metrics and :meth:`Emitter.stats`)
and logged at debug level on the ``netauto_statsd`` logger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from netauto_statsd._log import log
from netauto_statsd.catalog import CatalogError, Metric
from netauto_statsd.config import Settings, from_env
from netauto_statsd.emitter import epoch
from netauto_statsd.emitter.aggregate import Aggregator
from netauto_statsd.emitter.lifecycle import Lifecycle
from netauto_statsd.emitter.listener import Listener
from netauto_statsd.emitter.resolve import (
    COUNTER,
    GAUGE,
    GAUGE_MOVE,
    HISTOGRAM,
    Rejected,
    Resolved,
    Resolver,
    is_declared,
)
from netauto_statsd.emitter.values import MAX_MAGNITUDE, all_numbers, is_number, short, why_not
from netauto_statsd.wire import Transport, build_transport
from netauto_statsd.wire.base import samples_failed

Tags = Mapping[str, object] | None
_STATS = (
    "rejected",
    "overflowed",
    "unexpected_values",
    "dropped_disabled",
    "dropped_pending",
    "flushes",
    "packets_failed",
    "samples_failed",
    "internal_errors",
)


_flush_hooks: list[Callable[[], None]] = []


def add_flush_hook(hook: Callable[[], None]) -> None:
    """Call ``hook()`` at the start of every :meth:`Emitter.flush` (idempotent).

    For integrations that batch figures on their hot path: the flush thread,
    :func:`flush` and the exit flush then send what they gathered too.
    """
    if hook not in _flush_hooks:
        _flush_hooks.append(hook)


class Emitter:
    """Checks, aggregates and flushes metrics. Thread-safe and fork-aware.

    Metric objects (``RUNS_CREATED.inc(...)``) send through the process-wide
    emitter; the string methods here are a thin layer for integrations.

    Example:
        >>> em = Emitter(Settings(disabled=True))
        >>> em.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
        >>> em.stats()["accepted"]
        1
    """

    def __init__(self, settings: Settings | None = None, transport: Transport | None = None) -> None:
        self.settings = settings if settings is not None else from_env()
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else build_transport(self.settings)
        self._resolver = Resolver(self.settings)
        self._cache = self._resolver.cache
        self._agg = Aggregator()
        self._life = Lifecycle(self.flush, self.settings.flush_interval)
        self._listener: Listener | None = None
        self._stats = dict.fromkeys(_STATS, 0)

    # ---------------------------------------------------------------- listener
    @property
    def listener(self) -> Listener | None:
        """Sees every accepted emission (the test recorder); ``None`` for none."""
        return self._listener

    @listener.setter
    def listener(self, listener: Listener | None) -> None:
        self._listener = listener
        epoch.bump()  # bound children cached "no listener"

    recorder = listener  # the name integrations' tests used before the listener was typed

    # ----------------------------------------------------------- string API
    def increment(self, name: str, value: float = 1, tags: Tags = None) -> None:
        """Add ``value`` (>= 0) to counter ``name``."""
        self._emit(name, COUNTER, value, tags)

    def histogram(self, name: str, value: float, tags: Tags = None) -> None:
        """Record one observation of histogram ``name`` (seconds or bytes, per catalog)."""
        self._emit(name, HISTOGRAM, value, tags)

    def histogram_many(self, name: str, values: Iterable[float], tags: Tags = None) -> None:
        """Record several observations of histogram ``name`` at once: one catalog check, one lock.

        For integrations that gather observations on a hot path and hand them over in
        batches. Values that are not finite numbers are dropped and counted as rejected.
        """
        try:
            found = self._accept(name, None, HISTOGRAM, tags)
            if found is None:
                return
            try:
                given = list(values)
            except Exception:
                self.reject(Rejected("bad_value", f"{name}: values must be an iterable, got {short(values)}"))
                return
            good = given if all_numbers(given) else [v for v in given if is_number(v)]
            if len(good) != len(given):
                bad = next(v for v in given if not is_number(v))
                self.reject(Rejected("bad_value", f"{name}: {len(given) - len(good)} bad value(s), e.g. {short(bad)}"))
            if good:
                self._store(found, HISTOGRAM, good)
        except CatalogError:
            raise
        except Exception as exc:  # never break the app
            self._internal(name, exc)

    def gauge(self, name: str, value: float, tags: Tags = None) -> None:
        """Set gauge ``name`` to ``value`` for this process."""
        self._emit(name, GAUGE, value, tags)

    def gauge_add(self, name: str, delta: float, tags: Tags = None) -> None:
        """Move this process's value of gauge ``name`` by ``delta`` (e.g. +1 / -1 sessions)."""
        self._emit(name, GAUGE_MOVE, delta, tags)

    def _emit(self, name: str, kind: str, value: float, tags: Tags) -> None:
        """The string layer's one way in (a subclass may override it, e.g. to simulate a broken emitter)."""
        if kind == COUNTER:
            self.count(name, None, value, tags)
        else:
            self._one(name, None, kind, value, tags)

    # ----------------------------------------------- entry points (objects too)
    def count(self, name: str, metric: Metric | None, value: object, tags: object) -> None:
        """Counter entry point: ``metric`` is the declared object, or ``None`` to look ``name`` up."""
        try:
            found = self._accept(name, metric, COUNTER, tags)
            if found is None:
                return
            cls = value.__class__
            if (cls is int or cls is float) and 0 <= value <= MAX_MAGNITUDE:  # type: ignore[operator]
                self._store(found, COUNTER, value)  # type: ignore[arg-type]
            else:
                self.reject(Rejected("bad_value", f"{found.metric.name}: {why_not(COUNTER, value)}"))
        except CatalogError:
            raise
        except Exception as exc:  # never break the app
            self._internal(name, exc)

    def observe(self, name: str, metric: Metric | None, value: object, tags: object) -> None:
        """Histogram entry point."""
        self._one(name, metric, HISTOGRAM, value, tags)

    def set_gauge(self, name: str, metric: Metric | None, value: object, tags: object) -> None:
        """Gauge (set) entry point."""
        self._one(name, metric, GAUGE, value, tags)

    def move_gauge(self, name: str, metric: Metric | None, delta: object, tags: object) -> None:
        """Gauge (move) entry point."""
        self._one(name, metric, GAUGE_MOVE, delta, tags)

    def _one(self, name: str, metric: Metric | None, kind: str, value: object, tags: object) -> None:
        try:
            found = self._accept(name, metric, kind, tags)
            if found is None:
                return
            cls = value.__class__
            if (cls is float or cls is int) and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # type: ignore[operator]
                self._store(found, kind, value)  # type: ignore[arg-type]
            else:
                self.reject(Rejected("bad_value", f"{found.metric.name}: {why_not(kind, value)}"))
        except CatalogError:
            raise
        except Exception as exc:  # never break the app
            self._internal(name, exc)

    def resolve(self, metric: Metric, kind: str, tags: object) -> Resolved | None:
        """Resolve ``metric`` with ``tags`` once, for a bound child; ``None`` if refused.

        Counts nothing (each later call is counted on the ordinary path); strict
        mode raises here, so a bad binding fails where it is written.
        """
        found = self._resolver.lookup(metric.name, metric, kind, tags)
        if isinstance(found, Resolved):
            return found
        if self.settings.strict and not found.dropped:
            raise CatalogError(found.error)
        return None

    # ----------------------------------------------------------------- core
    def _accept(self, name: str, metric: Metric | None, kind: str, tags: object) -> Resolved | None:
        try:
            key = (name, kind, tuple(tags.items())) if tags else (name, kind)  # type: ignore[attr-defined]
            found = self._cache.get(key)
            if found is not None and metric is not None and not is_declared(metric):
                found = None  # a look-alike of a declared metric: never from the declared one's cache entry
        except Exception:
            found = None
        if found is None:
            found = self._resolver.lookup(name, metric, kind, tags)
        if found.__class__ is Resolved:
            return found
        self.reject(found)  # type: ignore[arg-type]
        return None

    def _store(self, found: Resolved, kind: str, value: float | list[float]) -> None:
        agg = self._agg
        with agg.lock:
            if kind == COUNTER:
                agg.add_count(found.cid, value)  # type: ignore[arg-type]
            elif kind == HISTOGRAM:
                if value.__class__ is list:
                    agg.add_samples(found.cid, value)
                    agg.accepted += len(value) - 1
                else:
                    agg.add_sample(found.cid, value)  # type: ignore[arg-type]
            elif kind == GAUGE:
                agg.set_gauge(found.cid, value)  # type: ignore[arg-type]
            else:
                agg.move_gauge(found.cid, value)  # type: ignore[arg-type]
            agg.accepted += 1
            if found.bumps:
                self.count_folded(found)
        listener = self._listener
        if listener is not None:
            relative = kind == GAUGE_MOVE
            values = value if isinstance(value, list) else (value,)
            for one in values:
                listener.record(found.metric.name, found.metric.type, one, dict(found.labels), relative)
        if self._life.pid < 0:  # flush thread not started in this process (or we were forked)
            self._life.start(self)

    def count_folded(self, found: Resolved) -> None:
        """Bump the client counters a folded resolution implies (call with the aggregator lock held)."""
        for cid in found.bumps:
            self._agg.bump(cid)
            if self._resolver.contexts[cid][0].name == "client.overflow":
                self._stats["overflowed"] += 1
            else:
                self._stats["unexpected_values"] += 1

    def reject(self, rejected: Rejected) -> None:
        """Count a refused emission (raise it in strict mode; a disabled group never raises)."""
        if rejected.dropped:
            cid = self._resolver.client_context("client.dropped", (("reason", rejected.reason),))
            with self._agg.lock:
                self._agg.bump(cid)
                self._stats["dropped_disabled"] += 1
            return
        if self.settings.strict:
            raise CatalogError(rejected.error)
        cid = self._resolver.client_context("client.rejected", (("reason", rejected.reason),))
        with self._agg.lock:
            self._agg.bump(cid)
            self._stats["rejected"] += 1
        log.debug("netauto_statsd: rejected: %s", rejected.error)

    def count_internal_error(self, what: object, exc: BaseException) -> None:
        """Count a failure inside metric code (never raised into the app) and log it at debug level."""
        with self._agg.lock:
            self._stats["internal_errors"] += 1
        log.debug("netauto_statsd: %s failed: %.200s", what, exc)

    def _internal(self, name: object, exc: Exception) -> None:
        self.count_internal_error(f"emitting {short(name)}", exc)

    # ------------------------------------------------------------------ flush
    def flush(self) -> int:
        """Send everything aggregated so far, now. Returns the number of samples sent.

        Call it before a process ends with ``os._exit`` (RQ work horses,
        ``multiprocessing`` children): ``atexit`` does not run there.
        """
        for hook in tuple(_flush_hooks):  # integrations hand over the figures they batch (add_flush_hook)
            try:
                hook()
            except Exception as exc:  # a hook never stops the flush
                self.count_internal_error("flush hook", exc)
        with self._life.flush_lock:
            agg = self._agg
            window = agg.drain()
            batch = agg.build(window, self._resolver.contexts, self._resolver.client_context)
            sent = len(batch)
            if not sent:
                return 0
            try:
                failed = self._transport.send(batch)
            except Exception as exc:
                failed = 1
                log.debug("netauto_statsd: transport error: %s", exc)
            failures = self._resolver.client_context("client.send_failures") if failed else -1
            with agg.lock:
                self._stats["flushes"] += 1
                self._stats["packets_failed"] += failed
                self._stats["samples_failed"] += samples_failed(failed, batch)
                if failed:
                    agg.bump(failures, failed)
                for cid, value in window.extra.items():
                    if self._resolver.contexts[cid][0].name == "client.dropped":
                        self._stats["dropped_pending"] += int(value)
            if failed:
                log.debug("netauto_statsd: %d packet(s) could not be sent", failed)
            return sent

    def stats(self) -> dict[str, int]:
        """Counts since creation: accepted, rejected, overflowed, flushes, packets_failed, internal_errors...

        ``accepted`` counts emissions through the checked paths (string layer, unbound
        calls, a bound child's first call); a bound child's fast path is not counted
        one by one (that would cost a second store per call).
        """
        with self._agg.lock:
            return {"accepted": self._agg.accepted, **self._stats}

    def close(self) -> None:
        """Flush, stop the flush thread and close the socket. Further emissions are kept but not sent.

        Idempotent: the ``atexit`` hook closes every emitter again, and must not re-send
        the last gauges of one replaced by :func:`configure` long ago.
        """
        if not self._life.stop():
            return
        self.flush()
        self._transport.close()

    # ------------------------------------------------------- process lifecycle
    def ensure_running(self) -> None:
        """Start the flush thread in this process if it is not running."""
        if self._life.pid < 0:
            self._life.start(self)

    def after_fork_in_child(self) -> None:
        """Start clean in a forked child: the parent still owns what it aggregated."""
        self._agg.after_fork_in_child()
        self._resolver.after_fork_in_child()
        self._life.after_fork_in_child()
        # The parent's flush thread may have held the transport's lock (mid-send) at
        # fork time; a fresh transport (lazy: no socket, no I/O here) cannot deadlock
        # and never shares the parent's socket.
        if self._owns_transport:
            self._transport = build_transport(self.settings)
