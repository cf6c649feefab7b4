"""Resolution: from (metric, tags) as the caller gave them to a context id, checked against the catalog.

A resolution checks the metric is declared with that type, every tag key is
declared, values are normalised, bounded by their allowed set and by the
metric's cardinality cap, and the metric's group is not disabled. Results are
cached by the raw call (name, kind, tag items) so a repeated call costs one
dict lookup; the cache is bounded by entries *and* by key size (a key over
:data:`CACHE_KEY_CHARS` characters is resolved every time, never kept).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Hashable, Mapping

from netauto_statsd import catalog
from netauto_statsd.catalog import OVERFLOW_VALUE, PROCESS_TAG_KEY, Metric
from netauto_statsd.config import Settings
from netauto_statsd.emitter.values import short
from netauto_statsd.tags import CardinalityGuard, is_forbidden_key, normalise_value
from netauto_statsd.wire import Context

#: Raw call keys remembered before the cache is cleared.
CACHE_LIMIT = 20_000
#: Longest raw call (name plus every tag key and value, in characters) that is cached.
CACHE_KEY_CHARS = 512

#: Kinds of emission; ``gauge+`` is a gauge move (relative).
COUNTER, HISTOGRAM, GAUGE, GAUGE_MOVE = "counter", "histogram", "gauge", "gauge+"


class Resolved:
    """A checked emission: its context id, plus client counters to bump once per emission."""

    __slots__ = ("bumps", "cid", "labels", "metric")

    def __init__(self, cid: int, metric: Metric, labels: dict[str, str], bumps: tuple[int, ...]) -> None:
        self.cid = cid
        self.metric = metric
        self.labels = labels
        self.bumps = bumps


class Rejected:
    """A refused emission: ``reason`` is the ``client.rejected`` (or ``client.dropped`` if ``dropped``) value."""

    __slots__ = ("dropped", "error", "reason")

    def __init__(self, reason: str, error: str, dropped: bool = False) -> None:
        self.reason = reason
        self.error = error
        self.dropped = dropped


class Resolver:
    """Catalog check, tag safety, cardinality and context ids for one emitter."""

    def __init__(self, settings: Settings) -> None:
        self.strict = settings.strict
        self.disabled_groups = frozenset(getattr(settings, "disabled_groups", ()))
        self.cache: dict[Hashable, Resolved | Rejected] = {}
        self.contexts: list[Context] = []
        self._ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._ids_lock = threading.Lock()
        self._guards: dict[str, CardinalityGuard] = {}
        self._process_tag = ""

    # ------------------------------------------------------------------ lookup
    def lookup(self, name: str, metric: Metric | None, kind: str, tags: object) -> Resolved | Rejected:
        """Resolve one call, from the cache when it has been seen before.

        The cache is keyed by name: a metric object that is not the declared one (a
        look-alike under a declared name) is resolved every time and never cached, so it
        can neither borrow nor spoil the declared metric's entries.
        """
        if metric is not None and not is_declared(metric):
            return self.resolve(name, metric, kind, tags)
        try:
            key: Hashable = (name, kind, tuple(tags.items())) if tags else (name, kind)  # type: ignore[attr-defined]
            found = self.cache.get(key)
        except Exception:  # unhashable value, tags that are not a mapping
            key, found = None, None
        if found is None:
            found = self.resolve(name, metric, kind, tags)
            if key is not None and cacheable(name, tags):
                if len(self.cache) >= CACHE_LIMIT:
                    self.cache.clear()
                self.cache[key] = found
        return found

    def resolve(self, name: str, metric: Metric | None, kind: str, tags: object) -> Resolved | Rejected:
        """Check one call against the catalog (uncached)."""
        if metric is None:
            metric = catalog.BY_NAME.get(name) if name.__class__ is str else None
            if metric is None:
                return Rejected("unknown_metric", f"metric {short(name)} is not in the catalog")
        elif catalog.BY_NAME.get(metric.name) != metric:
            return Rejected("unknown_metric", f"metric {short(metric.name)} is not declared (use counter()/...)")
        if metric.area in self.disabled_groups:
            return Rejected("disabled_group", f"group {metric.area!r} is disabled", dropped=True)
        wanted = GAUGE if kind == GAUGE_MOVE else kind
        if metric.type != wanted:
            return Rejected("unknown_metric", f"metric {metric.name!r} is a {metric.type}, not a {wanted}")
        if tags is None:
            given: Mapping[object, object] = {}
        elif isinstance(tags, Mapping):
            given = tags
        else:
            return Rejected("unknown_tag", f"tags of {metric.name!r} must be a mapping, got {short(tags)}")
        for key in given:
            if key.__class__ is not str or key not in metric.tag_keys:
                why = "forbidden" if key.__class__ is str and is_forbidden_key(key) else "not declared"
                allowed = ", ".join(metric.tag_keys) or "none"
                return Rejected("unknown_tag", f"tag {short(key)} is {why} for {metric.name!r}; allowed: {allowed}")
        values: list[str] = []
        unexpected = False
        for spec in metric.tags:
            if spec.key not in given:
                if self.strict:
                    return Rejected("unknown_tag", f"{metric.name!r} needs tag {spec.key!r}")
                values.append(OVERFLOW_VALUE)
                unexpected = True
                continue
            raw = given[spec.key]
            try:
                value = normalise_value(raw)
            except Exception as exc:
                return Rejected("bad_value", f"tag {spec.key!r} value {short(raw)} has no text: {type(exc).__name__}")
            if spec.values is not None and value not in spec.values:
                if self.strict:
                    allowed = ", ".join(spec.values)
                    return Rejected(
                        "unknown_tag", f"tag {spec.key!r} of {metric.name!r} must be one of {allowed}; got {short(raw)}"
                    )
                value = OVERFLOW_VALUE
                unexpected = True
            values.append(value)
        return self._admit(metric, tuple(values), unexpected)

    def _admit(self, metric: Metric, values: tuple[str, ...], unexpected: bool) -> Resolved:
        guard = self._guards.get(metric.name)
        if guard is None:
            guard = self._guards.setdefault(metric.name, CardinalityGuard(metric))
        admitted, overflowed = guard.admit(values)
        pairs = tuple(zip(metric.tag_keys, admitted, strict=False))
        if metric.per_process:
            pairs += ((PROCESS_TAG_KEY, self.process_value()),)
        bumps: tuple[int, ...] = ()
        # the metric name is normalised like every tag value: a '.' would add a plain-StatsD name segment
        if overflowed:
            bumps += (self.client_context("client.overflow", (("metric", normalise_value(metric.name)),)),)
        if unexpected:
            bumps += (self.client_context("client.unexpected_value", (("metric", normalise_value(metric.name)),)),)
        return Resolved(self.context_id(metric, pairs), metric, dict(pairs), bumps)

    # ---------------------------------------------------------------- contexts
    def context_id(self, metric: Metric, pairs: tuple[tuple[str, str], ...]) -> int:
        """The small int that stands for (metric, pairs) in the aggregation stores."""
        key = (metric.name, pairs)
        cid = self._ids.get(key)
        if cid is None:
            with self._ids_lock:
                cid = self._ids.get(key)
                if cid is None:
                    cid = len(self.contexts)
                    self.contexts.append((metric, pairs))
                    self._ids[key] = cid
        return cid

    def client_context(self, name: str, pairs: tuple[tuple[str, str], ...] = ()) -> int:
        """Context id of one of the client's own counters (never disabled, never capped)."""
        return self.context_id(catalog.BY_NAME[name], pairs)

    def process_value(self) -> str:
        """The ``process`` tag of per-process gauges: host-pid, normalised."""
        if not self._process_tag:
            self._process_tag = normalise_value(f"{socket.gethostname()}-{os.getpid()}")
        return self._process_tag

    def after_fork_in_child(self) -> None:
        """Fresh locks, an empty cache and a new process tag (contexts stay valid)."""
        self._ids_lock = threading.Lock()
        self.cache.clear()
        self._process_tag = ""
        for guard in self._guards.values():
            guard.after_fork()


def is_declared(metric: Metric) -> bool:
    """True for the declared object of its name (or an equal copy, e.g. one unpickled in a worker)."""
    registered = catalog.BY_NAME.get(metric.name)
    return registered is metric or registered == metric


def cacheable(name: str, tags: object) -> bool:
    """Only small, all-text calls are cached: 1, 1.0 and True are equal keys but render differently."""
    size = len(name)
    if tags:
        for key, value in tags.items():  # type: ignore[attr-defined]
            if value.__class__ is not str and value.__class__ is not bytes:
                return False
            size += len(key) + len(value)
    return size <= CACHE_KEY_CHARS
