"""What a flush sends for histogram contexts past their capacity: the repetition cap, and its client counters.

Past ``capacity`` samples a context sends what it kept with sample rates the exporter
expands (``int(1 / rate)`` repeats each value), never asking more than ``MAX_REPEAT``
repeats of a value; what that cannot carry is dropped whole and counted as
``client.dropped{reason="pending_overflow"}``, and every sample carried by a rate counts
in ``client.sampled{metric}``. These counts are what the runner dashboard's "sampled"
and "dropped" panels read, so they must add up over every context of a flush, and add
to what the window already holds. Real emitter, real loopback UDP socket.
"""

from __future__ import annotations

from collections.abc import Callable

from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.aggregate import MAX_REPEAT
from tests.runtime.core.wire import Line, UdpSink
from tests.runtime.core.wire import flushed as _flushed
from tests.runtime.core.wire import installed as _installed
from tests.runtime.core.wire import values_of as _values

RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
RUN_ERROR = {**RUN_OK, "status": "error"}
MakeEmitter = Callable[..., Emitter]


def _durations(lines: list[Line], **tags: str) -> list[Line]:
    return [line for line in lines if line.name == "netauto.runner.duration" and tags.items() <= line.tag_dict.items()]


def test_a_context_one_repeat_past_the_cap_sends_no_value_for_more_than_the_cap(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """4 kept of 4,003 offered: every kept value stands for exactly ``MAX_REPEAT``, the 3 left over are dropped."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 4
    emitter.histogram_many("runner.duration", [0.5] * (4 * MAX_REPEAT + 3), tags=RUN_OK)
    lines = _flushed(emitter, sink)
    kept = _durations(lines)
    assert {line.repeat for line in kept} == {MAX_REPEAT}
    assert sum(len(line.values) for line in kept) == 4
    assert _values(lines, "client.dropped", reason="pending_overflow") == [3]
    assert _values(lines, "client.sampled", metric="runner_duration") == [4 * MAX_REPEAT - 4]
    assert emitter.stats()["dropped_pending"] == 3


def test_drops_and_sampled_counts_of_several_contexts_in_one_flush_add_up(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """Two contexts of one metric, each 3 past what rates can carry: 6 dropped, 2 x 999 sampled."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 1
    emitter.histogram_many("runner.duration", [0.5] * (MAX_REPEAT + 3), tags=RUN_OK)
    emitter.histogram_many("runner.duration", [2.0] * (MAX_REPEAT + 3), tags=RUN_ERROR)
    lines = _flushed(emitter, sink)
    assert len(_values(lines, "runner.duration", **RUN_OK)) == MAX_REPEAT
    assert len(_values(lines, "runner.duration", **RUN_ERROR)) == MAX_REPEAT
    assert _values(lines, "client.dropped", reason="pending_overflow") == [6]
    assert _values(lines, "client.sampled", metric="runner_duration") == [2 * (MAX_REPEAT - 1)]
    assert emitter.stats()["dropped_pending"] == 6


def test_the_flushs_sampled_count_is_added_to_the_windows_own_after_a_new_drop_row(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """The window holds only ``client.sampled`` (emitted by the app, its context the newest); the flush adds a
    ``client.dropped`` row first (an older context, not in the window), then its own sampled count: one
    ``client.sampled`` line with both, none lost."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 1
    emitter.histogram_many("runner.duration", [0.5] * (MAX_REPEAT + 2), tags=RUN_OK)
    first = _flushed(emitter, sink)  # makes the dropped context, then the sampled one
    assert _values(first, "client.dropped", reason="pending_overflow") == [2]
    emitter.increment("client.sampled", 5, tags={"metric": "runner_duration"})
    emitter.histogram_many("runner.duration", [0.5] * (MAX_REPEAT + 2), tags=RUN_OK)
    lines = _flushed(emitter, sink)
    assert _values(lines, "client.sampled", metric="runner_duration") == [5 + MAX_REPEAT - 1]
    assert _values(lines, "client.dropped", reason="pending_overflow") == [2]
