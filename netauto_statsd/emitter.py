"""The one door every metric goes through: catalog check, tag safety, aggregation, flush.

An :class:`Emitter` checks each call against the catalog, normalises and caps the
tags, and aggregates in memory (counters summed, gauges kept, histogram samples
collected). A daemon thread flushes every ``flush_interval`` seconds through the
transport; ``atexit`` flushes at interpreter exit and :func:`flush` is there for
processes that end with ``os._exit`` (an RQ work horse, a forked child).

Nothing here raises into the caller except :class:`CatalogError` in strict mode:
every other failure is counted in :meth:`Emitter.stats` and logged at debug
level on the ``netauto_statsd`` logger.
"""

from __future__ import annotations

import atexit
import math
import os
import socket
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from netauto_statsd import catalog
from netauto_statsd._log import log
from netauto_statsd.catalog import OVERFLOW_VALUE, CatalogError, MetricType
from netauto_statsd.config import Settings, from_env
from netauto_statsd.tags import CardinalityGuard, is_forbidden_key, normalise_value
from netauto_statsd.wire import Batch, Context, Transport, build_transport

_isfinite = math.isfinite
#: Largest magnitude accepted: anything bigger has no float64 value at the exporter
#: (and an int of 4300+ digits cannot even be turned into text).
_MAX_MAGNITUDE = 1.7976931348623157e308

Tags = Mapping[str, object] | None

#: Raw (name, tag items) keys remembered before the cache is cleared; bounds memory
#: when callers pass unbounded values that are folded into "other".
_CACHE_LIMIT = 20_000
#: Histogram samples kept per context between flushes; beyond it samples are
#: dropped and counted (only reachable if flushing stalls).
_MAX_PENDING = 100_000


class _Rejected:
    __slots__ = ("error", "reason")

    def __init__(self, reason: str, error: str) -> None:
        self.reason = reason
        self.error = error


#: A resolved emission: its context id, and the id of the ``client.overflow``
#: context to bump when the cardinality cap folded its tags (``None`` otherwise).
_Resolved = tuple[int, int | None]


class Emitter:
    """Checks, aggregates and flushes metrics. Thread-safe and fork-aware.

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
        self.recorder: Any = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], _Resolved | _Rejected] = {}
        self._guards: dict[str, CardinalityGuard] = {}
        # Aggregation is keyed by a small int per distinct context: hashing the
        # (Metric, tags) context itself on every call costs more than the rest of
        # the hot path. Contexts are only looked up by id at flush time.
        self._contexts: list[Context] = []
        self._context_ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._ids_lock = threading.Lock()
        self._counters: dict[int, float] = {}
        self._histograms: dict[int, list[float]] = {}
        self._gauges: dict[int, float] = {}
        self._stats = dict.fromkeys(
            ("accepted", "rejected", "overflowed", "dropped_pending", "flushes", "packets_failed", "internal_errors"),
            0,
        )
        self._pid = -1  # pid that owns the flush thread; -1 = not started
        self._wake = threading.Event()
        self._closed = False
        self._process_tag = ""

    # ----------------------------------------------------------------- emit API
    def increment(self, name: str, value: float = 1, tags: Tags = None) -> None:
        """Add ``value`` (>= 0) to counter ``name``."""
        self._emit(name, "counter", value, tags)

    def histogram(self, name: str, value: float, tags: Tags = None) -> None:
        """Record one observation of histogram ``name`` (seconds or bytes, per catalog)."""
        self._emit(name, "histogram", value, tags)

    def histogram_many(self, name: str, values: Sequence[float], tags: Tags = None) -> None:
        """Record several observations of histogram ``name`` at once: one catalog check, one lock.

        For integrations that gather observations on a hot path (every websocket
        send) and hand them over in batches. Non-finite values are dropped and
        counted as rejected.
        """
        good = [v for v in values if (v.__class__ is float and _isfinite(v)) or v.__class__ is int]
        if len(good) != len(values):
            self._reject(_Rejected("bad_value", f"{name}: {len(values) - len(good)} non-finite value(s)"))
        if good:
            self._emit(name, "histogram", good, tags)  # type: ignore[arg-type]

    def gauge(self, name: str, value: float, tags: Tags = None) -> None:
        """Set gauge ``name`` to ``value`` for this process."""
        self._emit(name, "gauge", value, tags)

    def gauge_add(self, name: str, delta: float, tags: Tags = None) -> None:
        """Move this process's value of gauge ``name`` by ``delta`` (e.g. +1 / -1 sessions)."""
        self._emit(name, "gauge+", delta, tags)

    def _emit(self, name: str, kind: str, value: float, tags: Tags) -> None:
        try:
            try:
                key: tuple[Any, ...] = (name, kind, tuple(tags.items()) if tags else ())
                found = self._cache.get(key)
            except TypeError:  # unhashable tag value
                key, found = (), None
            if found is None:
                found = self._resolve(name, kind, tags)
                # Only text values are cached: 1, 1.0 and True are equal keys but render differently.
                if key and (not tags or all(isinstance(v, str | bytes) for v in tags.values())):
                    if len(self._cache) >= _CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[key] = found
            if found.__class__ is _Rejected:
                self._reject(found)
                return
            # finite int or float, bools excluded (inlined: this runs on every call)
            cls: Any = value.__class__
            if cls is list:  # histogram_many, values already checked
                usable = kind == "histogram"
            elif cls is float:
                usable = _isfinite(value)
            elif cls is int:
                usable = -_MAX_MAGNITUDE <= value <= _MAX_MAGNITUDE
            else:
                usable = False
            if not usable or (kind == "counter" and value < 0):
                self._reject(_Rejected("bad_value", f"{name}: value must be a finite number, got {value!r}"))
                return
            cid, overflow = found  # type: ignore[misc]
            if self.recorder is not None:
                metric, pairs = self._contexts[cid]
                for one in value if cls is list else (value,):  # type: ignore[union-attr]
                    self.recorder.record(name, metric.type, one, dict(pairs), kind == "gauge+")
            with self._lock:
                if kind == "counter":
                    counters = self._counters
                    counters[cid] = counters.get(cid, 0) + value
                elif kind == "histogram":
                    samples = self._histograms.get(cid)
                    if samples is None:
                        samples = self._histograms[cid] = []
                    room = _MAX_PENDING - len(samples)
                    if cls is list:
                        samples.extend(value[:room])  # type: ignore[index]
                        self._stats["dropped_pending"] += max(0, len(value) - room)  # type: ignore[arg-type]
                        self._stats["accepted"] += len(value) - 1  # type: ignore[arg-type]
                    elif room > 0:
                        samples.append(value)
                    else:
                        self._stats["dropped_pending"] += 1
                elif kind == "gauge":
                    self._gauges[cid] = value
                else:
                    self._gauges[cid] = self._gauges.get(cid, 0) + value
                self._stats["accepted"] += 1
                if overflow is not None:
                    self._stats["overflowed"] += 1
                    self._counters[overflow] = self._counters.get(overflow, 0) + 1
            if self._pid < 0:  # flush thread not started in this process (or we were forked)
                self._start()
        except CatalogError:
            raise
        except Exception as exc:  # never break the app
            self._stats["internal_errors"] += 1
            log.debug("netauto_statsd: dropped %s: %s", name, exc)

    # ------------------------------------------------------------- resolution
    def _resolve(self, name: str, kind: str, tags: Tags) -> _Resolved | _Rejected:
        metric = catalog.BY_NAME.get(name)
        if metric is None:
            return _Rejected("unknown_metric", f"metric {name!r} is not in the catalog")
        wanted: MetricType = "gauge" if kind == "gauge+" else kind  # type: ignore[assignment]
        if metric.type != wanted:
            return _Rejected("unknown_metric", f"metric {name!r} is a {metric.type}, not a {wanted}")
        given = dict(tags) if tags else {}
        for key in given:
            if key not in metric.tag_keys:
                why = "forbidden" if is_forbidden_key(str(key)) else "not declared"
                return _Rejected(
                    "unknown_tag", f"tag {key!r} is {why} for {name!r}; allowed: {', '.join(metric.tag_keys)}"
                )
        values = []
        for spec in metric.tags:
            if spec.key not in given:
                if self.settings.strict:
                    return _Rejected("unknown_tag", f"{name!r} needs tag {spec.key!r}")
                values.append(OVERFLOW_VALUE)
                continue
            value = normalise_value(given[spec.key])
            if spec.values is not None and value not in spec.values:
                value = OVERFLOW_VALUE
            values.append(value)
        guard = self._guards.get(name)
        if guard is None:
            guard = self._guards.setdefault(name, CardinalityGuard(metric))
        admitted, overflowed = guard.admit(tuple(values))
        pairs = tuple(zip(metric.tag_keys, admitted, strict=False))
        if metric.per_process:
            pairs += (("process", self._process_value()),)
        # the metric name is normalised like every tag value: a '.' would add a plain-StatsD name segment
        overflow = self._client_context("client.overflow", (("metric", normalise_value(name)),)) if overflowed else None
        return self._context_id(metric, pairs), overflow

    def _context_id(self, metric: catalog.Metric, pairs: tuple[tuple[str, str], ...]) -> int:
        key = (metric.name, pairs)
        cid = self._context_ids.get(key)
        if cid is None:
            with self._ids_lock:
                cid = self._context_ids.get(key)
                if cid is None:
                    cid = len(self._contexts)
                    self._contexts.append((metric, pairs))
                    self._context_ids[key] = cid
        return cid

    def _client_context(self, name: str, pairs: tuple[tuple[str, str], ...]) -> int:
        return self._context_id(catalog.BY_NAME[name], pairs)

    def _process_value(self) -> str:
        if not self._process_tag:
            self._process_tag = normalise_value(f"{socket.gethostname()}-{os.getpid()}")
        return self._process_tag

    def _reject(self, rejected: _Rejected) -> None:
        if self.settings.strict:
            raise CatalogError(rejected.error)
        with self._lock:
            self._stats["rejected"] += 1
            rc = self._client_context("client.rejected", (("reason", rejected.reason),))
            self._counters[rc] = self._counters.get(rc, 0) + 1
        log.debug("netauto_statsd: rejected: %s", rejected.error)

    # ------------------------------------------------------------------ flush
    def flush(self) -> int:
        """Send everything aggregated so far, now. Returns the number of samples sent.

        Call it before a process ends with ``os._exit`` (RQ work horses,
        ``multiprocessing`` children): ``atexit`` does not run there.
        """
        for hook in _flush_hooks:  # integrations hand over the figures they batch (see add_flush_hook)
            try:
                hook()
            except Exception as exc:  # a hook never stops the flush
                self._stats["internal_errors"] += 1
                log.debug("netauto_statsd: flush hook failed: %s", exc)
        with self._flush_lock:
            with self._lock:
                counters, gauges, histograms = self._counters, dict(self._gauges), self._histograms
                self._counters, self._histograms = {}, {}
            contexts = self._contexts
            batch = Batch(
                {contexts[cid]: value for cid, value in counters.items()},
                {contexts[cid]: value for cid, value in gauges.items()},
                {contexts[cid]: values for cid, values in histograms.items()},
            )
            if not len(batch):
                return 0
            try:
                failed = self._transport.send(batch)
            except Exception as exc:
                failed = 1
                log.debug("netauto_statsd: transport error: %s", exc)
            with self._lock:
                self._stats["flushes"] += 1
                self._stats["packets_failed"] += failed
            if failed:
                log.debug("netauto_statsd: %d packet(s) could not be sent", failed)
            return len(batch)

    def stats(self) -> dict[str, int]:
        """Counts since creation: accepted, rejected, overflowed, flushes, packets_failed, internal_errors."""
        with self._lock:
            return dict(self._stats)

    def close(self) -> None:
        """Flush, stop the flush thread and close the socket. Further emissions are kept but not sent.

        Idempotent: the ``atexit`` hook closes every emitter again, and must not re-send
        the last gauges of one replaced by :func:`configure` long ago.
        """
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self.flush()
        self._transport.close()

    # ------------------------------------------------------- thread and fork
    def _start(self) -> None:
        with self._flush_lock:
            if self._pid == os.getpid() or self._closed:
                return
            if self._pid == -1:  # first start: hooks before _pid, so a fork in between still resets us
                _register_process_hooks(self)
            self._pid = os.getpid()
        thread = threading.Thread(target=self._run, name="netauto-statsd-flush", daemon=True)
        thread.start()

    def _run(self) -> None:
        pid = os.getpid()
        while not self._closed and self._pid == pid:
            self._wake.wait(self.settings.flush_interval)
            if self._pid != pid or self._closed:  # close() does the last flush itself
                return
            try:
                self.flush()
            except Exception as exc:  # pragma: no cover - flush already guards
                log.debug("netauto_statsd: flush thread error: %s", exc)

    def _after_fork_in_child(self) -> None:
        # The parent still owns (and will send) what it had aggregated: start empty,
        # with fresh locks (another thread may have held them at fork time) and a
        # new process tag. The flush thread restarts on the first emission.
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._wake = threading.Event()
        self._counters, self._histograms = {}, {}
        self._gauges = {}
        self._cache = {}
        self._process_tag = ""
        self._pid = -2
        for guard in self._guards.values():
            guard._lock = threading.Lock()
        # The parent's flush thread may have held the transport's lock (mid-send) at
        # fork time; a fresh transport (lazy: no socket, no I/O here) cannot deadlock
        # and never shares the parent's socket.
        if self._owns_transport:
            self._transport = build_transport(self.settings)


_hooked: weakref.WeakSet[Emitter] = weakref.WeakSet()


def _register_process_hooks(emitter: Emitter) -> None:
    _hooked.add(emitter)
    atexit.register(_flush_weak, weakref.ref(emitter))
    if hasattr(os, "register_at_fork"):
        ref = weakref.ref(emitter)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork_in_child"))


def _flush_weak(ref: weakref.ref[Emitter]) -> None:
    _call(ref, "close")


def _call(ref: weakref.ref[Emitter], method: str) -> None:
    target = ref()
    if target is not None:
        try:
            getattr(target, method)()
        except Exception as exc:  # pragma: no cover
            log.debug("netauto_statsd: %s failed: %s", method, exc)


# --------------------------------------------------------------- process-wide
_default: Emitter | None = None
_default_lock = threading.Lock()


_flush_hooks: list[Callable[[], None]] = []


def add_flush_hook(hook: Callable[[], None]) -> None:
    """Call ``hook()`` at the start of every :meth:`Emitter.flush` (idempotent).

    For integrations that batch figures on their hot path: the flush thread,
    :func:`flush` and the exit flush then send what they gathered too.
    """
    if hook not in _flush_hooks:
        _flush_hooks.append(hook)


def get_emitter() -> Emitter:
    """Return the process-wide emitter, creating it from the environment on first use.

    A bad environment never breaks the app: the error is logged and a disabled
    emitter is used instead (call :func:`configure` to see the error raised).
    """
    global _default
    emitter = _default
    if emitter is None:
        with _default_lock:
            if _default is None:
                try:
                    _default = Emitter(from_env())
                except ValueError as exc:
                    log.error("netauto_statsd: bad configuration, metrics disabled: %s", exc)
                    _default = Emitter(Settings(disabled=True))
            emitter = _default
    return emitter


def set_emitter(emitter: Emitter | None) -> Emitter | None:
    """Install ``emitter`` as the process-wide one (``None``: recreate on next use); return the previous."""
    global _default
    with _default_lock:
        previous, _default = _default, emitter
    return previous


def configure(settings: Settings | None = None, **overrides: Any) -> Emitter:
    """Create the process-wide emitter now, from ``settings`` or the environment plus ``overrides``.

    Raises:
        ConfigError: a setting is unusable (unlike implicit first use, which only logs).

    Example:
        >>> configure(host="127.0.0.1", port=9125, env="prod")  # doctest: +SKIP
    """
    import dataclasses

    base = settings if settings is not None else from_env()
    emitter = Emitter(dataclasses.replace(base, **overrides))
    previous = set_emitter(emitter)
    if previous is not None:
        previous.close()
    return emitter


def flush() -> int:
    """Flush the process-wide emitter now (see :meth:`Emitter.flush`)."""
    return get_emitter().flush()


def stats() -> dict[str, int]:
    """Counters of the process-wide emitter (see :meth:`Emitter.stats`)."""
    return get_emitter().stats()
