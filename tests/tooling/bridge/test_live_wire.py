"""The live proof sends what the client really sends (issue 17.1), read on a real UDP socket.

A proof that sent one sample per metric never sent a multi-value line, so an
exporter that rejects them got "check OK". These tests pin every wire feature
the proof must exercise: multi-value histogram lines, sample-rated lines (the
client's answer to a burst), per-process gauges with their ``process`` tag,
several increments per counter.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netauto_statsd.catalog import all_metrics
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from netauto_statsd.tooling.live_check import BURST, observations, send_traffic
from tests.runtime.core.wire import UdpSink, split_lines


@pytest.fixture
def lines() -> Iterator[list[str]]:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, strict=True, flush_interval=60))
    try:
        expected = send_traffic(emitter, all_metrics())
        assert expected, "the proof sent nothing"
        yield split_lines(sink.drain())
    finally:
        emitter.close()
        sink.close()


def test_histograms_travel_as_multi_value_lines(lines: list[str]) -> None:
    multi = [line for line in lines if line.split("|", 1)[0].count(":") > 1 and "|h" in line]
    assert multi, "no multi-value histogram line: an exporter before v0.27.1 would pass the proof"


def test_a_burst_travels_as_sample_rated_lines_whose_expansion_is_exact(lines: list[str]) -> None:
    rated = [line for line in lines if "|@" in line]
    assert rated, "no sample-rated line: the exporter's expansion of |@rate is never proved"
    metric = next(m for m in all_metrics() if m.type == "histogram")
    burst_value = observations(metric)[2]
    represented = 0
    for line in lines:
        if not line.startswith(f"netauto.{metric.name}:") or "|h" not in line:
            continue
        rate = float(line.split("|@", 1)[1].split("|", 1)[0]) if "|@" in line else 1.0
        values = [float(v) for v in line.split("|", 1)[0].split(":")[1:]]
        # what statsd_exporter counts: each value int(1/rate) times
        represented += sum(int(1 / rate) for v in values if v == burst_value)
    # the burst, plus the one ordinary observation of that value in the first window
    assert represented == BURST + 1
    assert any("client.sampled" in line for line in lines), "the client did not count its sampling"


def test_per_process_gauges_carry_their_process_tag(lines: list[str]) -> None:
    per_process = [m for m in all_metrics() if m.per_process]
    for metric in per_process:
        mine = [line for line in lines if f".{metric.name}:" in line and "|g" in line]
        assert mine and all("process:" in line for line in mine), metric.name
