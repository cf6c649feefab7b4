"""The contract's model: :class:`Tag`, :class:`Metric` and its three kinds, which emit.

A metric object is the app's handle on one declared metric::

    RUNS_CREATED.inc(site="par1", protocol="ssh")
    PUSH_SECONDS.observe(0.25, site="par1")
    SESSIONS.add(1, view="/live")
    created = RUNS_CREATED.bind(site="par1", protocol="ssh")  # hot path: tags resolved once
    created.inc()

Emitting goes to the process-wide emitter (:mod:`netauto_statsd.emitter`). This
module never imports it: the emitter package hands its entry points to
:data:`runtime` when it is imported (``import netauto_statsd`` does that, inertly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from netauto_statsd.emitter.bound import BoundCounter, BoundGauge, BoundHistogram
    from netauto_statsd.instrument import timed

MetricType = Literal["counter", "gauge", "histogram"]

#: Namespace prefixed to every statsd name unless configured otherwise.
DEFAULT_NAMESPACE = "netauto"

#: Value a tag takes when it is not in its allowed set, or when a metric has
#: reached its cap of distinct tag combinations.
OVERFLOW_VALUE = "other"

#: Tags attached to every sample by the emitter (values from configuration).
CONSTANT_TAG_KEYS: tuple[str, ...] = ("env", "service")

#: Tag added by the emitter to per-process gauges (see ``Metric.per_process``).
PROCESS_TAG_KEY = "process"

#: Never valid as tag keys: they crash the exporter, break /metrics, or are
#: rewritten by Prometheus. Keys starting with ``__`` are refused as well.
FORBIDDEN_TAG_KEYS = frozenset({"le", "quantile", "job", "instance", "run_id", "device_id"})


class CatalogError(ValueError):
    """A metric, type or tag the catalog does not declare (strict mode), or a conflicting declaration."""


@dataclass(frozen=True)
class Tag:
    """A tag key a metric accepts.

    Attributes:
        key: the tag key, also the Prometheus label name.
        values: the allowed values; anything else becomes ``OVERFLOW_VALUE``
            (and raises in strict mode). ``None`` means free text, normalised
            and capped by the emitter.
        help: what the value means, for the docs.
        example: a realistic value, used by ``check`` and the docs.
    """

    key: str
    values: tuple[str, ...] | None = None
    help: str = ""
    example: str = ""

    def sample_value(self) -> str:
        """Return a realistic value for this tag (the example or first allowed value)."""
        if self.example:
            return self.example
        return self.values[0] if self.values else "x"


class _Runtime:
    """Where metric objects send: the emitter's entry points, filled in by :mod:`netauto_statsd.emitter`."""

    count: Any
    observe: Any
    set_gauge: Any
    move_gauge: Any
    bind: Any
    install_fast: Any
    timed: Any

    def __getattr__(self, name: str) -> Any:
        # Only reachable if netauto_statsd.emitter was never imported, which importing any
        # netauto_statsd module does (the package's __init__ imports it).
        raise AttributeError(f"metric objects need netauto_statsd.emitter imported first (no {name!r} yet)")


#: The emitter's entry points for metric objects (see :func:`netauto_statsd.emitter.bound.install`).
runtime = _Runtime()
_runtime = runtime
#: Instance attributes that are runtime state, not contract: never compared, hashed or pickled.
_RUNTIME_STATE = frozenset({"_kids", "inc", "observe"})


@dataclass(frozen=True)
class Metric:
    """One declared metric (the contract); :class:`Counter`, :class:`Histogram` and :class:`Gauge` emit.

    Attributes:
        name: statsd name without namespace, e.g. ``runner.start``.
        type: ``counter``, ``gauge`` or ``histogram`` (sent as DogStatsD ``|h``).
        tags: the tag keys the metric accepts, in a fixed order.
        unit: ``seconds``, ``bytes`` or ``1`` (a count).
        help: one line for Prometheus HELP and the docs.
        prometheus_name: the series the mapping must produce (base name for
            histograms; ``_bucket``/``_sum``/``_count`` are added by Prometheus).
        buckets: histogram buckets in ``unit``.
        max_combinations: cap on distinct tag-value combinations this process
            sends; the excess is folded into ``OVERFLOW_VALUE`` and counted.
        per_process: gauges only. The value is absolute per process and tagged
            with ``process`` (host-pid); the exporter expires it after ``ttl``
            and dashboards ``sum`` it. Re-sent at every flush while it lives.
        ttl: gauge expiry in the mapping (e.g. ``2m``); ``""`` for none.
        area: the family (metric group): docs and dashboards group by it, and
            ``NETAUTO_STATSD_DISABLE`` turns whole families off.
        module: dotted name of the declaring module (the owner a contract finding points at).
    """

    name: str
    type: MetricType
    tags: tuple[Tag, ...]
    unit: str
    help: str
    prometheus_name: str
    buckets: tuple[float, ...] = ()
    max_combinations: int = 500
    per_process: bool = False
    ttl: str = ""
    area: str = "core"
    module: str = "netauto_statsd.catalog"
    tag_keys: tuple[str, ...] = field(init=False)
    if TYPE_CHECKING:  # runtime state, not a field: see __post_init__
        _kids: ClassVar[dict[tuple[tuple[str, object], ...], Any]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag_keys", tuple(t.key for t in self.tags))
        # Bound children for repeated unbound calls, keyed by the call's tag items (runtime state,
        # not part of the contract: excluded from equality, hashing and pickling).
        object.__setattr__(self, "_kids", {})

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in _RUNTIME_STATE}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state, _kids={})

    # Equal metrics have equal names: hashing the name (cached by str) keeps contexts
    # cheap as dict keys, instead of hashing every field at every flush.
    def __hash__(self) -> int:
        return hash(self.name)

    def label_names(self) -> tuple[str, ...]:
        """All Prometheus label names of the series, constant and process tags included."""
        extra = (PROCESS_TAG_KEY,) if self.per_process else ()
        return tuple(sorted(self.tag_keys + CONSTANT_TAG_KEYS + extra))


@dataclass(frozen=True, eq=True)
class Counter(Metric):
    """A declared counter: only goes up, summed across processes."""

    __hash__ = Metric.__hash__

    def inc(self, value: float = 1, /, **tags: object) -> None:
        """Add ``value`` (>= 0) for these tags.

        >>> RUNS_CREATED.inc(site="par1", protocol="ssh")  # doctest: +SKIP
        """
        try:
            child = self._kids.get(tuple(tags.items()))
        except Exception:  # an unhashable (or hostile) tag value: resolved on every call
            child = None
        if child is None:
            _runtime.count(self, value, tags)
            if "inc" not in self.__dict__:  # from now on, a generated keyword function (emitter.fastcall)
                _runtime.install_fast(self, "inc", _runtime.count)
        else:
            child.inc(value)

    def bind(self, **tags: object) -> BoundCounter:
        """A child with these tags fixed: its ``inc()`` skips all per-call resolution."""
        bound: BoundCounter = _runtime.bind(self, tags)
        return bound


@dataclass(frozen=True, eq=True)
class Histogram(Metric):
    """A declared histogram: observations in seconds or bytes, bucketed by the exporter."""

    __hash__ = Metric.__hash__

    def observe(self, value: float, /, **tags: object) -> None:
        """Record one observation for these tags."""
        try:
            child = self._kids.get(tuple(tags.items()))
        except Exception:
            child = None
        if child is None:
            _runtime.observe(self, value, tags)
            if "observe" not in self.__dict__:
                _runtime.install_fast(self, "observe", _runtime.observe)
        else:
            child.observe(value)

    def bind(self, **tags: object) -> BoundHistogram:
        """A child with these tags fixed: its ``observe()`` skips all per-call resolution."""
        bound: BoundHistogram = _runtime.bind(self, tags)
        return bound

    def time(self, **tags: object) -> timed:
        """Decorator / context manager recording the elapsed seconds (``status`` added if declared).

        >>> @PUSH_SECONDS.time(site="par1")  # doctest: +SKIP
        ... def push(): ...
        """
        made: timed = _runtime.timed(self, dict(tags))
        return made


@dataclass(frozen=True, eq=True)
class Gauge(Metric):
    """A declared gauge: set to a value, or moved by a delta."""

    __hash__ = Metric.__hash__

    def set(self, value: float, /, **tags: object) -> None:
        """Set this process's value for these tags."""
        _runtime.set_gauge(self, value, tags)

    def add(self, delta: float, /, **tags: object) -> None:
        """Move this process's value for these tags by ``delta`` (e.g. +1 / -1)."""
        _runtime.move_gauge(self, delta, tags)

    def bind(self, **tags: object) -> BoundGauge:
        """A child with these tags fixed: ``set()`` / ``add()`` skip all per-call resolution."""
        bound: BoundGauge = _runtime.bind(self, tags)
        return bound


#: The emitting class of each metric type.
KINDS: dict[str, type[Metric]] = {"counter": Counter, "histogram": Histogram, "gauge": Gauge}
