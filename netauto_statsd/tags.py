"""Tag safety: value normalisation, forbidden keys and the per-metric cardinality cap.

Every tag value leaves the process through :func:`normalise_value`, so a value
can never break or inject into a line (DogStatsD ``|``, ``,``, ``#``, newlines)
nor add a segment to a plain-StatsD name (``.``, ``:``). The allowed character
set (ASCII letters, digits, ``_``, ``-``, ``/``) is a subset of datadog's own tag
normaliser's and of what pystatsd can encode, so neither library rewrites what we
hand it and both wire formats carry identical label values.
"""

from __future__ import annotations

import re
import threading

from netauto_statsd.catalog import FORBIDDEN_TAG_KEYS, OVERFLOW_VALUE, Metric

#: Longest tag value sent; longer values are cut (Prometheus labels stay readable).
MAX_VALUE_LENGTH = 64
#: Value sent for an empty tag value (the exporter rejects empty values).
EMPTY_VALUE = "none"

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-/]")


def normalise_value(value: object) -> str:
    """Return ``value`` as a safe tag value.

    Anything outside ASCII letters, digits, ``_``, ``-`` and ``/`` becomes ``_``;
    the result is at most :data:`MAX_VALUE_LENGTH` characters and never empty.
    Bytes are decoded as UTF-8 with replacement first.

    >>> normalise_value("a|b,c#d\\n")
    'a_b_c_d_'
    """
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    return _UNSAFE.sub("_", text[:MAX_VALUE_LENGTH]) or EMPTY_VALUE


def is_forbidden_key(key: str) -> bool:
    """True for keys that must never be sent (``le``, ``job``, ``__x``, identifiers...)."""
    return key in FORBIDDEN_TAG_KEYS or key.startswith("__") or len(key) < 2


class CardinalityGuard:
    """Caps the distinct tag combinations one metric sends from this process.

    The first ``metric.max_combinations`` combinations pass; later new ones have
    every free-text value replaced by ``OVERFLOW_VALUE`` (enumerated values are
    already bounded and kept). Thread-safe.
    """

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self._free = tuple(tag.values is None for tag in metric.tags)

    def admit(self, values: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
        """Return ``(values_to_send, overflowed)`` for one combination."""
        with self._lock:
            if values in self._seen:
                return values, False
            if len(self._seen) < self.metric.max_combinations:
                self._seen.add(values)
                return values, False
        folded = tuple(OVERFLOW_VALUE if free else v for free, v in zip(self._free, values, strict=False))
        return folded, True

    def after_fork(self) -> None:
        """Replace the lock in a forked child (another thread may have held it at fork time)."""
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every combination seen (used after fork and by tests)."""
        with self._lock:
            self._seen.clear()
