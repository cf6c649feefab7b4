"""Issue 13, emitter side: nothing raised into the app, nothing injected, memory bounded, strict means strict.

Each test fails on the code before the fix (named in its docstring).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from netauto_statsd.catalog import CatalogError, runner, throughput
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.emitter.aggregate import SAMPLES_PER_CONTEXT
from netauto_statsd.instrument import counted, current_run, runner_lifecycle
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines
from tests.support import Exporter

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
FORGED = "1\nnetauto.run.created:1000000|c|#site:injected,protocol:ssh"


def rejected_by_reason(lines: list[Any]) -> dict[str, float]:
    return {x.tag_dict["reason"]: x.values[0] for x in lines if x.name == "netauto.client.rejected"}


@pytest.fixture
def production(sink: UdpSink, make_emitter: MakeEmitter) -> Emitter:
    """A production-mode emitter installed process-wide, sending to the sink."""
    emitter = make_emitter(sink.port, strict=False)
    set_emitter(emitter)
    return emitter


# ----------------------------------------------------------- raised into the app
@pytest.mark.parametrize(
    "make",
    [lambda: None, lambda: (x for x in [0.5, 1.0]), lambda: 42, lambda: "abc"],
    ids=["None", "generator", "int", "str"],
)
def test_histogram_many_never_raises(sink: UdpSink, production: Emitter, make: Callable[[], Any]) -> None:
    """Before: ``len(values)`` on a generator or None raised TypeError into the caller."""
    values = make()  # a fresh generator per run (a parameter's generator is spent after one run)
    production.histogram_many("runner.duration", values, tags=RUN_OK)
    production.flush()
    lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    sent = [v for x in lines if x.name == "netauto.runner.duration" for v in x.values]
    assert sent == ([0.5, 1.0] if values is not None and not isinstance(values, int | str) else [])
    assert production.stats()["internal_errors"] == 0


def test_add_bytes_with_text_never_raises_and_is_counted(sink: UdpSink, production: Emitter) -> None:
    """Before: ``scope.bytes += 'abc'`` raised TypeError out of the app's runner body."""
    with runner_lifecycle(RUN):
        current_run().add_bytes("abc")  # type: ignore[arg-type]
        current_run().add_bytes(10)
    production.flush()
    lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    assert [x.values for x in lines if x.name == "netauto.runner.bytes"] == [(10.0,)]
    assert rejected_by_reason(lines) == {"bad_value": 1}


@pytest.mark.parametrize(
    "helper", [runner_lifecycle, lambda tags: counted("run.created", tags)], ids=["runner", "counted"]
)
def test_tags_given_as_a_list_never_stop_the_body(production: Emitter, helper: Callable[[Any], Any]) -> None:
    """Before: ``dict(['site:par1'])`` raised ValueError before the body ran."""
    ran = []

    @helper(["site:par1", "protocol:ssh"])
    def body() -> str:
        ran.append(1)
        return "result"

    assert body() == "result" and ran == [1]
    with helper(["site:par1"]):
        ran.append(2)
    assert ran == [1, 2] and production.stats()["internal_errors"] == 0


# --------------------------------------------------------------- injected
@pytest.mark.parametrize(
    "values",
    [[0.5, float("nan")], [0.5, "0.25"], [0.5, Decimal("0.25")], [0.5, FORGED], [0.5, True]],
    ids=["nan", "text", "decimal", "forged line", "bool"],  # plain ids: a newline in an id cannot be selected again
)
def test_histogram_lists_are_validated_like_single_values(
    sink: UdpSink, make_emitter: MakeEmitter, values: list[Any]
) -> None:
    """Before: ``histogram(name, [list])`` skipped every check (NaN, text, a forged line reached the wire)."""
    emitter = make_emitter(sink.port, strict=False)
    emitter.histogram("runner.duration", values, tags=RUN_OK)  # type: ignore[arg-type]  # a list is not a value
    emitter.histogram_many("runner.duration", values, tags=RUN_OK)  # here it is: the good ones pass
    emitter.flush()
    datagrams = sink.drain()
    assert b"injected" not in b"".join(datagrams)
    lines = [parse_dogstatsd(text) for text in split_lines(datagrams)]  # every line well formed and finite
    assert [x.values for x in lines if x.name == "netauto.runner.duration"] == [(0.5,)]
    assert rejected_by_reason(lines) == {"bad_value": 2}


def test_a_counter_never_becomes_infinite(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Before: two accepted 1e308 increments sent ``inf``; the exporter's counter stayed +Inf for good."""
    emitter = make_emitter(sink.port, strict=False)
    sent: list[tuple[float, ...]] = []
    overflows: list[float] = []

    def flush() -> None:
        emitter.flush()
        lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
        sent.extend(x.values for x in lines if x.name == "netauto.run.created")
        overflows.extend(x.values[0] for x in lines if x.tag_dict.get("reason") == "counter_overflow")

    emitter.increment("run.created", 1e308, tags=RUN)
    emitter.increment("run.created", 1e308, tags=RUN)  # this window's sum leaves float64: refused, counted
    flush()
    emitter.increment("run.created", 1e308, tags=RUN)
    flush()
    emitter.increment("run.created", 1e308, tags=RUN)  # the lifetime sum would leave float64: refused, counted
    flush()
    assert sent == [(1e308,)] and overflows == [1, 1]


# ----------------------------------------------------------------- memory
@pytest.mark.parametrize("where", ["name", "tag value"])
def test_huge_distinct_keys_do_not_pile_up_in_memory(make_emitter: MakeEmitter, where: str) -> None:
    """Before: the resolution cache kept 20,000 raw keys: 200 x 1 MB names kept ~200 MB alive."""
    emitter = make_emitter(strict=False)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            huge = f"{i}" + "x" * 1_000_000
            if where == "name":
                emitter.increment(huge, tags=RUN)
            else:
                emitter.increment("run.device", tags={"device": huge})
            del huge
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 5_000_000, f"{retained:,} bytes retained"


# ------------------------------------------------------------ strict is strict
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.increment("x" * 1_000_000, tags=RUN), "not in the catalog"),
        (lambda e: e.increment("run.created", tags={**RUN, "k" * 1_000_000: 1}), "is not declared"),
        (lambda e: e.increment("run.created", tags={"site": "s", "protocol": "p" * 1_000_000}), "must be one of"),
        (lambda e: e.histogram("runner.duration", "9" * 1_000_000, tags=RUN_OK), "finite int or float"),
        (lambda e: e.increment("run.created", 10**5000, tags=RUN), "finite int or float"),
        (lambda e: e.histogram_many("runner.duration", ["x" * 1_000_000], tags=RUN_OK), "bad value"),
    ],
    ids=["name", "tag key", "tag value", "value", "huge int", "many"],
)
def test_strict_messages_stay_short(make_emitter: MakeEmitter, call: Callable[[Emitter], None], message: str) -> None:
    """Before: a 1 MB name gave a 1,000,031-character exception message."""
    with pytest.raises(CatalogError, match=message) as raised:
        call(make_emitter())
    assert len(str(raised.value)) < 300


def test_counters_cannot_go_down_says_so(make_emitter: MakeEmitter) -> None:
    """Before: ``-1`` on a counter said "must be a finite number"."""
    with pytest.raises(CatalogError, match="counters cannot go down"):
        make_emitter().increment("run.created", -1, tags=RUN)


def test_runner_lifecycle_with_an_undeclared_tag_raises_in_strict_mode(statsd_recorder: Any) -> None:
    """Before: runner_lifecycle silently dropped ``region`` while ``counted`` raised for it."""
    with (
        pytest.raises(CatalogError, match=r"tag 'region' is not declared for 'runner\.start'"),
        runner_lifecycle({**RUN, "region": "eu"}),
    ):
        pass
    assert statsd_recorder.samples == []


def test_a_value_outside_the_allowed_set_raises_in_strict_mode(make_emitter: MakeEmitter) -> None:
    """Before: ``protocol="SSH"`` silently became ``other``, counted nowhere."""
    with pytest.raises(CatalogError, match=r"tag 'protocol' of 'run\.created' must be one of ssh"):
        make_emitter().increment("run.created", tags={"site": "par1", "protocol": "SSH"})


def test_a_value_outside_the_allowed_set_is_counted_in_production(sink: UdpSink, production: Emitter) -> None:
    throughput.RUNS_CREATED.inc(site="par1", protocol="SSH")
    production.flush()
    lines = {x.name: x for x in (parse_dogstatsd(text) for text in split_lines(sink.drain()))}
    assert lines["netauto.run.created"].tag_dict["protocol"] == "other"
    assert lines["netauto.client.unexpected_value"].tag_dict["metric"] == "run_created"


def test_a_failing_tag_function_reports_its_own_error(statsd_recorder: Any) -> None:
    """Before: strict mode said "needs tag 'site'" instead of the function's own error."""

    def tags_of(device: str) -> dict[str, object]:
        raise KeyError(f"no site for {device}")

    @runner_lifecycle(tags_of)
    def run(device: str) -> None:
        pass

    with pytest.raises(CatalogError, match=r"tag function .*tags_of raised KeyError: 'no site for edge-1'"):
        run("edge-1")


# ------------------------------------------------------- high-rate histograms
@pytest.mark.exporter
def test_a_high_rate_histogram_keeps_exact_counts_at_the_real_exporter(exporter: Exporter, emitter_for: Any) -> None:
    """Before: past 100,000 pending samples a context dropped the rest (counted only in stats())."""
    emitter = emitter_for(exporter, flush_interval=60)  # one window: a loaded machine's loop outlasts 0.5 s
    offered = SAMPLES_PER_CONTEXT * 5 + 1234  # 5.3 per kept value: rates 1/5 and 1/6
    bound = runner.DURATION.bind(**RUN_OK)
    for i in range(offered):
        bound.observe(0.25 if i % 2 else 2.0)
    emitter.flush()
    exporter.wait_value("netauto_runner_duration_seconds_count", offered, site="par1", status="ok")
    total = exporter.value("netauto_runner_duration_seconds_sum", site="par1", status="ok")
    assert abs(total - offered * 1.125) < offered * 1.125 * 0.05  # a uniform sample: the sum is estimated
    exporter.wait_value("netauto_client_sampled_total", offered - SAMPLES_PER_CONTEXT, metric="runner_duration")


def test_samples_beyond_what_rates_can_carry_are_dropped_and_counted(sink: UdpSink) -> None:
    from netauto_statsd.emitter.aggregate import MAX_REPEAT

    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, flush_interval=60))
    emitter._agg.capacity = 2  # tiny per-flush capacity, so the cap on repetition is reachable
    try:
        values = [0.5] * (2 * MAX_REPEAT + 3)
        emitter.histogram_many("runner.duration", values, tags=RUN_OK)
        emitter.flush()
        lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    finally:
        emitter.close()
    durations = [x for x in lines if x.name == "netauto.runner.duration"]
    assert sum(len(x.values) * x.repeat for x in durations) == 2 * MAX_REPEAT
    dropped = {x.tag_dict["reason"]: x.values[0] for x in lines if x.name == "netauto.client.dropped"}
    assert dropped == {"pending_overflow": 3} and emitter.stats()["dropped_pending"] == 3
