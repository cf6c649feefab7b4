"""Histogram values sent again and again: the kept texts (``wire/kept._ReprCache``) and the C-level check
of a batch (``emitter/values.all_numbers``) send exactly what ``repr`` and the per-value check did.

The integrations send whole microseconds, the same few hundred values flush after
flush: a float's ``repr`` is computed once and kept. A kept text must never stand
for a number of another type or sign that is equal but written otherwise
(``-0.0`` and ``0.0``; ``10**17`` and ``1e17``), and must survive the cache
being emptied at its bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.values import all_numbers, is_number
from netauto_statsd.wire import texts as kept
from netauto_statsd.wire.base import pack_values
from tests.runtime.core.wire import UdpSink, flushed, split_lines, values_of

MakeEmitter = Callable[..., Emitter]
RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
#: Equal numbers whose texts differ, each kind first in one order and then in the other.
TWINS = [0.0, -0.0, 0.0, 3.0, 3, 1e17, 10**17, 1e17, 1e16, 10**16, -1e16, -(10**16), 2.5e-05, 0.1 + 0.2, -7.25, -7.25]


def reference(values: list[float], room: int) -> list[str]:
    """``pack_values`` as it was before texts were kept: ``repr`` of every value."""
    text = (":".join(map(repr, values)) + ":").replace(".0:", ":")
    chunks, start, end = [], 0, len(text) - 1
    while end - start > room:
        cut = text.rfind(":", start, start + room + 1)
        if cut < start:
            cut = text.find(":", start)
        chunks.append(text[start:cut])
        start = cut + 1
    if start < end:
        chunks.append(text[start:end])
    return chunks


NUMBERS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20)


@given(st.lists(NUMBERS, max_size=60), st.integers(24, 400))
@example(TWINS, 400)
@example(TWINS[::-1], 400)
def test_kept_texts_are_the_texts_repr_writes_in_any_order(values: list[float], room: int) -> None:
    """Twice (the second time from the kept texts), and reversed: always what ``repr`` writes."""
    for ordered in (values, values, values[::-1]):
        assert pack_values(ordered, room) == reference(ordered, room)


def test_the_kept_texts_stay_within_their_bound_and_stay_right_after_it() -> None:
    limit = kept._ReprCache.LIMIT
    values = [n / 1e6 for n in range(1, 2 * limit + 2)]
    assert pack_values(values, 10**9) == reference(values, 10**9)
    assert 0 < len(kept._reprs) <= limit
    assert pack_values(values[::-1], 10**9) == reference(values[::-1], 10**9)
    assert len(kept._reprs) <= limit


def test_the_text_one_past_the_bound_empties_the_kept_texts_first() -> None:
    """From empty, ``LIMIT`` texts are kept; the next one empties them, then is kept alone."""
    limit = kept._ReprCache.LIMIT
    kept._reprs.clear()
    values = [n / 1e6 for n in range(1, limit + 2)]
    assert pack_values(values[:limit], 10**9) == reference(values[:limit], 10**9)
    assert len(kept._reprs) == limit
    assert pack_values(values, 10**9) == reference(values, 10**9)
    assert len(kept._reprs) == 1


def test_repeated_durations_arrive_as_repr_writes_them_flush_after_flush(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """Through a real UDP socket: the same values in three flushes, each flush's text the same exact numbers."""
    emitter = make_emitter(sink.port)
    durations = [n / 1e6 for n in (23, 23, 41, 23, 17, 41)] + TWINS
    for _ in range(3):
        emitter.histogram_many("runner.duration", durations, tags=RUN_OK)
        emitter.flush()
        texts = split_lines(sink.drain())
        (line,) = [t for t in texts if t.startswith("netauto.runner.duration:")]
        sent = line.split("|", 1)[0].split(":", 1)[1]
        assert sent == reference(durations, 10**9)[0]
        assert [float(v) for v in sent.split(":")] == [float(v) for v in durations]
    assert "-0:" in sent and ":0:" in sent and "100000000000000000" in sent and "1e+17" in sent


def test_a_batch_with_a_bad_value_is_still_checked_value_by_value(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """The C-level check only ever says "all good": one bad value sends the good ones and counts the bad one."""
    emitter = make_emitter(sink.port, strict=False)
    emitter.histogram_many("runner.duration", [0.5, float("nan"), 2, True, 1e308, 1e308, 10**400], tags=RUN_OK)
    lines = flushed(emitter, sink)
    assert sorted(values_of(lines, "runner.duration")) == [0.5, 2.0, 1e308, 1e308]
    assert emitter.stats()["rejected"] == 1  # one call refused in part: counted once, as before


@given(st.lists(NUMBERS | st.just(math.nan) | st.just(math.inf) | st.booleans() | st.just(10**400), max_size=20))
@example([1e308, 1e308])
@example([True])
@example([-0.0])
def test_all_numbers_says_yes_only_when_every_value_is_a_number(values: list[object]) -> None:
    if all_numbers(values):
        assert all(is_number(v) for v in values)
    if all(is_number(v) for v in values) and all(abs(v) < 1e300 for v in values):  # type: ignore[arg-type]
        assert all_numbers(values)


def test_full_precision_values_are_written_by_repr_and_never_kept() -> None:
    """Nanoseconds / 1e9 (the runner's durations) seldom repeat: keeping them would only push the
    repeating texts out. A batch that starts with a short text keeps only its short texts."""
    kept._reprs.clear()
    full = [n / 1e9 for n in range(12_345, 12_345_678, 4_111)] + [n / 3e9 for n in range(1, 1000)]
    assert pack_values(full, 10**9) == reference(full, 10**9)
    assert len(kept._reprs) == 0
    mixed = [2.5e-05, *full[:50], 0.000123]
    assert pack_values(mixed, 10**9) == reference(mixed, 10**9)
    assert {2.5e-05, 0.000123} <= set(kept._reprs)
    assert all(len(repr(v)) <= kept._SHORT for v in kept._reprs)
    assert len(kept._reprs) < 20  # of 52 texts: the nanosecond ones written by repr only


def test_a_text_of_exactly_nine_characters_is_kept_and_one_of_ten_is_not() -> None:
    """The bound is inclusive: ``0.0001234`` (9 characters) is kept, ``0.00012345`` (10) is not."""
    kept._reprs.clear()
    assert pack_values([0.0001234, 0.0001234], 100) == ["0.0001234:0.0001234"]
    assert pack_values([2.5, 0.00012345], 100) == ["2.5:0.00012345"]
    assert set(kept._reprs) == {0.0001234, 2.5}
