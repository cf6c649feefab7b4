"""The texts of histogram values sent again and again, kept: ``repr`` of a float costs ~2,700 instructions.

Every value of every histogram sample is written as text at each flush
(:func:`netauto_statsd.wire.base.pack_values`); the integrations' durations are
whole microseconds that repeat flush after flush, so their texts are computed once.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["texts_of"]

#: Texts at most this long are kept: values of a few significant digits, the kind that repeats
#: (whole microseconds under 100 s: ``0.000123``, ``2.3e-05``, ``12.345678``), not nanoseconds
#: (``0.001234567``, ``1.2345e-05``) nor 17-digit values, which seldom repeat.
_SHORT = 9


class _ReprCache(dict[float, str]):
    """``repr`` of the floats histograms send again and again, kept: ``cache[value]`` is ``repr(value)``.

    A float's shortest ``repr`` costs ~2,700 instructions (CPython's ``dtoa``), a
    dict hit ~150: the durations the integrations send are whole microseconds, a
    few hundred distinct values per series, sent flush after flush. A miss computes
    the text in :meth:`__missing__` (called by ``dict.__getitem__`` in C, so a hit
    runs no Python code) and keeps it if it is short (:data:`_SHORT`) and the value
    a float whose text no equal number of another type shares: not ``0.0`` (equal
    to ``-0.0``, whose text differs) and below ``1e16`` (an int equal to a larger
    float has another text), so an int key finds the float's text only where the
    two agree once ``.0`` is dropped (``wire.base.pack_values``). Emptied at :attr:`LIMIT` texts.
    """

    LIMIT = 8192

    def __missing__(self, value: float) -> str:
        text = repr(value)
        if len(text) <= _SHORT and value.__class__ is float and value and -1e16 < value < 1e16:
            if len(self) >= self.LIMIT:
                self.clear()
            self[value] = text
        return text


_reprs = _ReprCache()


def texts_of(values: list[float]) -> Iterator[str]:
    """``map(repr, values)``, from the kept texts unless the first value's text is too long to be kept
    (full-precision values, e.g. nanoseconds / 1e9: each would miss, and pay a Python call for it)."""
    if values:
        first = values[0]
        if first not in _reprs and len(repr(first)) > _SHORT:
            return map(repr, values)
    return map(_reprs.__getitem__, values)
