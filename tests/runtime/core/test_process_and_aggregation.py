"""The process-wide emitter's configuration paths and the aggregator's per-flush sample store.

* ``configure(settings)`` uses the settings given; a bad environment on implicit first
  use keeps the app running and says which variable is wrong, even when a second one
  is wrong too; unknown group names are dropped and every known one still applies.
* The aggregator keeps at most ``capacity`` samples per context and flush, counts every
  observation offered (batches included, however they interleave with single ones),
  and keeps a uniform sample past that (early values do not stay for good).
* ``exact_rate(n)`` is the rate nearest ``1/n`` whose ``int(1 / rate)`` is ``n``: what the
  exporter computes when it expands a sampled value (70 of 1..1000 need the search).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, configure, get_emitter, set_emitter
from netauto_statsd.emitter.aggregate import MAX_REPEAT, exact_rate
from tests.runtime.core.wire import Line, UdpSink, parse_dogstatsd, split_lines

RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
MakeEmitter = Callable[..., Emitter]


def _sent(emitter: Emitter, sink: UdpSink) -> list[Line]:
    emitter.flush()
    return [parse_dogstatsd(text) for text in split_lines(sink.drain())]


def _durations(lines: list[Line]) -> tuple[list[float], int]:
    """(values kept on the wire, observations they stand for)."""
    kept = [line for line in lines if line.name == "netauto.runner.duration"]
    return [v for line in kept for v in line.values], sum(len(line.values) * line.repeat for line in kept)


# --------------------------------------------------------------- process-wide
def test_configure_uses_the_settings_it_is_given(sink: UdpSink) -> None:
    emitter = configure(Settings(namespace="acme", host="127.0.0.1", port=sink.port, flush_interval=60))
    try:
        assert get_emitter() is emitter and emitter.settings.namespace == "acme"
        emitter.histogram("runner.duration", 0.5, tags=RUN_OK)
        emitter.flush()
        assert split_lines(sink.drain())[0].startswith("acme.runner.duration:0.5|h")
    finally:
        set_emitter(None)
        emitter.close()


def test_every_known_group_still_applies_when_unknown_ones_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "db,databse,http")
    assert get_emitter().settings.disabled_groups == ("db", "http")


def test_a_second_bad_variable_is_the_one_reported(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown group names are forgiven; the max packet size is not, and the warning names it."""
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "databse")
    monkeypatch.setenv("NETAUTO_STATSD_MAX_PACKET", "10")
    emitter = get_emitter()
    assert emitter.settings.disabled
    err = capfd.readouterr().err
    assert "NETAUTO_STATSD_MAX_PACKET='10'" in err and "NO metrics will be sent" in err
    assert "netauto_statsd: NETAUTO_STATSD_DISABLE='databse': unknown metric group(s)" in err
    assert any(r.getMessage().startswith("netauto_statsd: NETAUTO_STATSD_DISABLE=") for r in caplog.records)


def test_a_bad_variable_is_named_in_the_warning(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_FLUSH_INTERVAL", "soon")
    get_emitter()
    assert "NETAUTO_STATSD_FLUSH_INTERVAL='soon' is not a number" in capfd.readouterr().err


# ---------------------------------------------------------------- aggregation
@pytest.fixture
def small(sink: UdpSink, make_emitter: MakeEmitter) -> Emitter:
    emitter = make_emitter(sink.port)
    emitter._agg.capacity = 4
    return emitter


def test_single_and_batched_observations_of_one_window_all_count(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.histogram("runner.duration", 0.1, tags=RUN_OK)
    emitter.histogram_many("runner.duration", [0.2, 0.3], tags=RUN_OK)
    emitter.histogram("runner.duration", 0.4, tags=RUN_OK)
    values, count = _durations(_sent(emitter, sink))
    assert sorted(values) == [0.1, 0.2, 0.3, 0.4] and count == 4


def test_a_batch_keeps_at_most_the_capacity(sink: UdpSink, small: Emitter) -> None:
    small.histogram_many("runner.duration", [i / 10 for i in range(10)], tags=RUN_OK)
    values, count = _durations(_sent(small, sink))
    assert len(values) == 4 and count == 10


def test_a_batch_arriving_at_a_full_context_is_offered_in_full(sink: UdpSink, small: Emitter) -> None:
    for i in range(4):
        small.histogram("runner.duration", i, tags=RUN_OK)
    small.histogram_many("runner.duration", [10, 11, 12, 13, 14, 15], tags=RUN_OK)
    values, count = _durations(_sent(small, sink))
    assert len(values) == 4 and count == 10


def test_past_the_capacity_the_kept_sample_is_uniform(sink: UdpSink, small: Emitter) -> None:
    """Reservoir sampling: after 2,000 offers, keeping three of the first four values has odds below 1e-8."""
    small.histogram_many("runner.duration", [float(i) for i in range(2000)], tags=RUN_OK)
    values, count = _durations(_sent(small, sink))
    assert count == 2000 and len(values) == 4
    assert len({0.0, 1.0, 2.0, 3.0} & set(values)) < 3, values


def test_exact_rate_is_the_rate_nearest_1_over_n_the_exporter_expands_to_n() -> None:
    assert exact_rate(1) == 1.0
    for n in range(2, MAX_REPEAT + 2):
        rate = exact_rate(n)
        assert int(1 / rate) == n, n
        assert 0 <= 1 / n - rate <= 4 * math.ulp(1 / n), n  # at most a few floats below 1/n
