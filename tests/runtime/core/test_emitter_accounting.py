"""What the emitter counts and logs about refused and failed emissions, by reason, on the wire and in stats().

Operators see losses through ``client.rejected{reason}`` and ``stats()``, and debug them
through the ``netauto_statsd`` logger (debug level). These tests pin the reason, the
count and the log line for each way the string layer can refuse or fail, against a
real loopback UDP socket.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping

import pytest

from netauto_statsd.catalog import CatalogError, liveview, runner, throughput
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.testing import Recorder
from tests.runtime.core.wire import Line, UdpSink, parse_dogstatsd, split_lines

RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
MakeEmitter = Callable[..., Emitter]


class HostileTags(Mapping[str, object]):
    """A mapping that breaks when read: a bug in the caller's tag object, not in the metric."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def _sent(emitter: Emitter, sink: UdpSink) -> list[Line]:
    emitter.flush()
    return [parse_dogstatsd(text) for text in split_lines(sink.drain())]


def _rejected(lines: list[Line]) -> dict[str, float]:
    return {line.tag_dict["reason"]: line.values[0] for line in lines if line.name == "netauto.client.rejected"}


def test_histogram_many_refuses_a_non_iterable_as_a_bad_value(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, strict=False)
    emitter.histogram_many("runner.duration", 42, tags=RUN_OK)  # type: ignore[arg-type]
    emitter.histogram_many("runner.duration", [0.5, "x", float("nan"), 2], tags=RUN_OK)  # type: ignore[list-item]
    assert _rejected(_sent(emitter, sink)) == {"bad_value": 2}
    strict = make_emitter(sink.port)
    with pytest.raises(CatalogError, match=r"runner\.duration: values must be an iterable, got 42"):
        strict.histogram_many("runner.duration", 42, tags=RUN_OK)  # type: ignore[arg-type]
    with pytest.raises(CatalogError, match=r"runner\.duration: 2 bad value\(s\), e\.g\. 'x'"):
        strict.histogram_many("runner.duration", [0.5, "x", float("nan")], tags=RUN_OK)  # type: ignore[list-item]


def test_accepted_counts_each_observation_of_a_batch(make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(disabled=True)
    emitter.histogram("runner.duration", 0.4, tags=RUN_OK)
    emitter.histogram_many("runner.duration", [0.1, 0.2, 0.3], tags=RUN_OK)
    emitter.histogram_many("runner.duration", [0.5, 0.6], tags=RUN_OK)
    assert emitter.stats()["accepted"] == 6


def test_the_test_recorder_sees_each_observation_of_a_batch(statsd_recorder: Recorder) -> None:
    get_emitter().histogram_many("runner.duration", [0.1, 0.2, 0.3], tags=RUN_OK)
    assert statsd_recorder.values("runner.duration", **RUN_OK) == [0.1, 0.2, 0.3]


def test_a_strict_refusal_quotes_the_value(make_emitter: MakeEmitter) -> None:
    emitter = make_emitter()
    with pytest.raises(CatalogError, match=r"runner\.duration: value must be a finite int or float, got 'abc'"):
        emitter.histogram("runner.duration", "abc", tags=RUN_OK)  # type: ignore[arg-type]
    with pytest.raises(CatalogError, match=r"liveview\.sessions: value must be a finite int or float, got nan"):
        emitter.gauge_add("liveview.sessions", float("nan"), tags={"view": "/v"})


def test_the_largest_finite_values_are_accepted_on_every_entry_point(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.increment("run.created", MAX_MAGNITUDE, tags=RUN)
    emitter.histogram("runner.duration", MAX_MAGNITUDE, tags=RUN_OK)
    emitter.histogram("runner.duration", -MAX_MAGNITUDE, tags=RUN_OK)
    emitter.gauge("liveview.sessions", -MAX_MAGNITUDE, tags={"view": "/v"})
    assert emitter.stats()["rejected"] == 0 and emitter.stats()["accepted"] == 4
    lines = _sent(emitter, sink)
    durations = [line.values for line in lines if line.name == "netauto.runner.duration"]
    assert durations == [(MAX_MAGNITUDE, -MAX_MAGNITUDE)]


def test_a_look_alike_of_a_declared_metric_is_refused(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Only the declared object emits: a copy that differs (here its help text) is not the contract."""
    emitter = make_emitter(sink.port, strict=False)
    set_emitter(emitter)
    counter = dataclasses.replace(throughput.RUNS_CREATED, help="not the declared one")
    histogram = dataclasses.replace(runner.DURATION, help="not the declared one")
    gauge = dataclasses.replace(liveview.SESSIONS, help="not the declared one")
    counter.inc(site="a1", protocol="ssh")
    counter.bind(site="a2", protocol="ssh").inc()
    emitter.count("run.created", counter, 1, {"site": "a3", "protocol": "ssh"})
    emitter.observe("runner.duration", histogram, 1, {**RUN_OK, "site": "a4"})
    emitter.set_gauge("liveview.sessions", gauge, 1, {"view": "/a5"})
    emitter.move_gauge("liveview.sessions", gauge, 1, {"view": "/a6"})
    assert emitter.resolve(counter, "counter", {"site": "a7", "protocol": "ssh"}) is None
    lines = _sent(emitter, sink)
    assert [line.name for line in lines] == ["netauto.client.rejected"]
    assert _rejected(lines) == {"unknown_metric": 6}


def test_refusals_and_internal_failures_are_logged_at_debug_level(
    sink: UdpSink, make_emitter: MakeEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter(sink.port, strict=False)
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        emitter.increment("no.such.metric")
        emitter.increment("run.created", tags=HostileTags())
        emitter.histogram("runner.duration", 1, tags=HostileTags())
        emitter.histogram_many("runner.duration", [1], tags=HostileTags())
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert "netauto_statsd: rejected: metric 'no.such.metric' is not in the catalog" in messages
    assert messages.count("netauto_statsd: emitting 'run.created' failed: boom") == 1
    assert messages.count("netauto_statsd: emitting 'runner.duration' failed: boom") == 2
    assert emitter.stats()["internal_errors"] == 3 and emitter.stats()["rejected"] == 1


def test_internal_errors_add_up(make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(disabled=True)
    for _ in range(3):
        emitter.count_internal_error("an integration hook", RuntimeError("boom"))
    assert emitter.stats()["internal_errors"] == 3


@pytest.mark.parametrize("declared_first", [True, False], ids=["declared first", "look-alike first"])
def test_a_look_alike_neither_borrows_nor_spoils_the_declared_metrics_cache(
    sink: UdpSink, make_emitter: MakeEmitter, declared_first: bool
) -> None:
    """Before: the resolution cache was keyed by name only, so whichever came first decided for both."""
    emitter = make_emitter(sink.port, strict=False)
    fake = dataclasses.replace(throughput.RUNS_CREATED, help="not the declared one")
    calls = [throughput.RUNS_CREATED, fake] if declared_first else [fake, throughput.RUNS_CREATED]
    for metric in calls * 2:
        emitter.count("run.created", metric, 1, RUN)
    lines = _sent(emitter, sink)
    assert _rejected(lines) == {"unknown_metric": 2}
    assert [line.values for line in lines if line.name == "netauto.run.created"] == [(2,)]
