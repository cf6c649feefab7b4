"""Which values may become a sample, and short texts for error messages about the rest."""

from __future__ import annotations

from collections.abc import Sequence
from math import fsum, isfinite

#: Largest magnitude accepted: anything bigger has no float64 value at the exporter
#: (and an int of 4300+ digits cannot even be turned into text).
MAX_MAGNITUDE = 1.7976931348623157e308
#: Longest piece of caller input quoted in an error message.
QUOTE_LIMIT = 60


def short(value: object) -> str:
    """``repr(value)`` cut to :data:`QUOTE_LIMIT` characters (never fails, never huge)."""
    if value.__class__ is str or value.__class__ is bytes:
        text = repr(value[:QUOTE_LIMIT])
    else:
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


def is_number(value: object) -> bool:
    """A finite int or float of float64 range; bools, text, Decimal, NaN and inf are not."""
    cls = value.__class__
    if cls is float or cls is int:
        return -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE  # type: ignore[operator]  # NaN fails both
    return False


_NUMBER_TYPES = frozenset((float, int))


def all_numbers(values: Sequence[object]) -> bool:
    """True only if :func:`is_number` holds for every one of ``values``, checked in C (False: check one by one).

    A batch from an integration is all floats: ``fsum`` (exact, so finite unless a
    value is not, or the values are too large to add up, which also says "check one
    by one") and the set of the values' types replace a Python call per value.

    >>> all_numbers([0.5, 3, 1e-07]), all_numbers([0.5, float("nan")]), all_numbers([True])
    (True, False, False)
    """
    try:
        return _NUMBER_TYPES.issuperset(map(type, values)) and isfinite(fsum(values))  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float64, or an intermediate sum beyond it
        return False


def why_not(kind: str, value: object) -> str:
    """The message for a value :func:`is_number` (or a counter's sign) refused."""
    if kind == "counter" and is_number(value) and value < 0:  # type: ignore[operator]
        return f"counters cannot go down (got {short(value)}): use a gauge for values that decrease"
    return f"value must be a finite int or float, got {short(value)}"
