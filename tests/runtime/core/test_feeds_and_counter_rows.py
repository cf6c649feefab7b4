"""What a flush takes from the runner's lock-free feeds, and the counter rows it hands the transport.

* Feeds are kept per context for the life of the aggregator: two decorated runners
  with the same tags append to the same feeds, and a flush takes each item once
  (the next flush sends only what came after it).
* A flush's counters go out as rows (context ids ascending, with their window values):
  an explicit 0 is sent beside the others; a context whose lifetime sum would leave
  float64 is refused and counted while the others of its flush still go out; the
  client's own counters the flush implies are added to a row already there.
"""

from __future__ import annotations

from collections.abc import Callable

from netauto_statsd.emitter import Emitter
from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.instrument import current_run, runner_lifecycle
from tests.runtime.core.wire import Line, UdpSink
from tests.runtime.core.wire import flushed as _flushed
from tests.runtime.core.wire import installed as _installed
from tests.runtime.core.wire import values_of as _values

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
MakeEmitter = Callable[..., Emitter]


def _kept(lines: list[Line], name: str, **tags: str) -> list[float]:
    """The values of ``name`` as they are on the wire (a sampled value once)."""
    return [
        value
        for line in lines
        if line.name == f"netauto.{name}" and tags.items() <= line.tag_dict.items()
        for value in line.values
    ]


# ------------------------------------------------------------------ feeds
def test_two_runners_with_the_same_tags_share_their_feeds_and_both_count(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    emitter = _installed(sink, make_emitter)

    @runner_lifecycle(RUN)
    def first() -> None:
        current_run().add_bytes(1)

    @runner_lifecycle(RUN)
    def second() -> None:
        current_run().add_bytes(2)

    for _ in range(3):
        first()
        second()
    first()
    assert emitter.stats()["accepted"] == 0, "both runners must be on their fast path"
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [7]
    assert _values(lines, "runner.stop", **RUN_OK) == [7]
    assert sorted(_values(lines, "runner.bytes", **RUN_OK)) == [1, 1, 1, 1, 2, 2, 2]
    assert len(_values(lines, "runner.duration", **RUN_OK)) == 7


def test_a_flush_takes_each_fed_run_once_and_the_next_sends_only_newer_runs(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    emitter = _installed(sink, make_emitter)
    size = [0]

    @runner_lifecycle(RUN)
    def execute() -> None:
        size[0] += 1
        current_run().add_bytes(size[0])

    for _ in range(3):
        execute()
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [3]
    assert sorted(_values(lines, "runner.bytes", **RUN_OK)) == [1, 2, 3]
    for _ in range(2):
        execute()
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [2]
    assert _values(lines, "runner.stop", **RUN_OK) == [2]
    assert sorted(_values(lines, "runner.bytes", **RUN_OK)) == [4, 5]
    assert len(_values(lines, "runner.duration", **RUN_OK)) == 2
    assert _flushed(emitter, sink) == [], "nothing new: nothing sent"


def test_runs_past_the_feeds_capacity_are_all_counted_and_the_rest_sampled(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """Capacity 4: four runs fill the feeds, six more take the locked path (which fills the store);
    at flush the fed values meet a full store, so they are sampled in: 10 offered, 4 kept."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 4

    @runner_lifecycle(RUN)
    def execute() -> None:
        current_run().add_bytes(7)

    for _ in range(10):
        execute()
    lines = _flushed(emitter, sink)
    assert _values(lines, "runner.start", **RUN) == [10]
    assert _values(lines, "runner.stop", **RUN_OK) == [10]
    assert _kept(lines, "runner.bytes", **RUN_OK) == [7, 7, 7, 7]
    assert _values(lines, "runner.bytes", **RUN_OK) == [7] * 10
    assert len(_kept(lines, "runner.duration", **RUN_OK)) == 4
    assert len(_values(lines, "runner.duration", **RUN_OK)) == 10
    assert _values(lines, "client.sampled", metric="runner_bytes") == [6]
    assert _values(lines, "client.sampled", metric="runner_duration") == [6]


# ----------------------------------------------------------- counter rows
def test_zero_and_nonzero_counters_of_one_flush_are_all_sent_with_their_own_values(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    emitter = _installed(sink, make_emitter)
    emitter.increment("run.created", 0, tags={"site": "par1", "protocol": "ssh"})
    emitter.increment("run.created", 2, tags={"site": "lon1", "protocol": "ssh"})
    emitter.increment("run.created", 0, tags={"site": "ams1", "protocol": "ssh"})
    emitter.increment("run.created", 3, tags={"site": "lon1", "protocol": "ssh"})
    lines = _flushed(emitter, sink)
    sent = {line.tag_dict["site"]: line.values for line in lines if line.name == "netauto.run.created"}
    assert sent == {"par1": (0,), "lon1": (5,), "ams1": (0,)}
    emitter.increment("run.created", 1, tags={"site": "ams1", "protocol": "ssh"})
    lines = _flushed(emitter, sink)
    sent = {line.tag_dict["site"]: line.values for line in lines if line.name == "netauto.run.created"}
    assert sent == {"ams1": (1,)}, "a zero is sent in its own flush only"


def test_a_counter_leaving_float64_is_refused_and_counted_and_the_others_still_go_out(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    emitter = _installed(sink, make_emitter, strict=False)
    big = {"site": "par1", "protocol": "ssh"}
    emitter.increment("run.created", MAX_MAGNITUDE, tags=big)
    assert _values(_flushed(emitter, sink), "run.created", **big) == [MAX_MAGNITUDE]
    emitter.increment("run.created", 1, tags={"site": "ams1", "protocol": "ssh"})
    emitter.increment("run.created", MAX_MAGNITUDE, tags=big)  # lifetime sum 2 * MAX: +Inf at the exporter
    emitter.increment("run.created", 0, tags={"site": "lon1", "protocol": "ssh"})
    lines = _flushed(emitter, sink)
    sent = {line.tag_dict["site"]: line.values for line in lines if line.name == "netauto.run.created"}
    assert sent == {"ams1": (1,), "lon1": (0,)}
    assert _values(lines, "client.rejected", reason="counter_overflow") == [1]
    emitter.increment("run.created", 1, tags=big)  # sent: the refused sum was never added to the total
    emitter.increment("run.created", 2, tags={"site": "ams1", "protocol": "ssh"})
    lines = _flushed(emitter, sink)
    sent = {line.tag_dict["site"]: line.values for line in lines if line.name == "netauto.run.created"}
    assert sent == {"par1": (1,), "ams1": (2,)}
    assert _values(lines, "client.rejected", reason="counter_overflow") == []


def test_the_client_counters_a_flush_implies_are_added_to_the_same_rows_of_its_window(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """``client.sampled`` already counted in the window (emitted by the app) gets the flush's own count added."""
    emitter = _installed(sink, make_emitter)
    emitter._agg.capacity = 2
    emitter.increment("client.sampled", 2, tags={"metric": "runner_duration"})
    emitter.increment("client.sampled", 4, tags={"metric": "runner_bytes"})
    emitter.histogram_many("runner.duration", [1, 2, 3, 4, 5], tags=RUN_OK)  # 5 offered, 2 kept: 3 sampled
    lines = _flushed(emitter, sink)
    assert _values(lines, "client.sampled", metric="runner_duration") == [5]
    assert _values(lines, "client.sampled", metric="runner_bytes") == [4]
    assert len(_values(lines, "runner.duration", **RUN_OK)) == 5


def test_every_counter_leaving_float64_in_one_flush_is_counted_and_one_reaching_the_largest_float_is_sent(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    emitter = _installed(sink, make_emitter, strict=False)
    sites = ("par1", "lon1", "ams1")
    for site in sites[:2]:
        emitter.increment("run.created", MAX_MAGNITUDE, tags={"site": site, "protocol": "ssh"})
    assert len(_values(_flushed(emitter, sink), "run.created")) == 2
    for site in sites:  # par1 and lon1 leave float64; ams1 reaches the largest float exactly, which is fine
        emitter.increment("run.created", MAX_MAGNITUDE, tags={"site": site, "protocol": "ssh"})
    lines = _flushed(emitter, sink)
    sent = {line.tag_dict["site"]: line.values for line in lines if line.name == "netauto.run.created"}
    assert sent == {"ams1": (MAX_MAGNITUDE,)}
    assert _values(lines, "client.rejected", reason="counter_overflow") == [2]
    assert emitter.stats()["internal_errors"] == 0
