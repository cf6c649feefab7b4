"""Keyword calls (``RUNS_CREATED.inc(site=..., protocol=...)``): the generated fast function sends what the call says.

A metric object's first ``inc`` / ``observe`` replaces itself with a function generated
from the declared tag keys (:mod:`netauto_statsd.emitter.fastcall`): a call it
recognises goes to the bound child kept for its tag values; anything else (a missing
or undeclared tag, a value that is not text, a tag set seen for the first time) goes
through the checked path. Each test uses a fresh copy of a built-in metric (equal to
the declared one, so the emitter accepts it, but with nothing generated yet), a real
emitter and a real UDP socket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from netauto_statsd.catalog import Counter, Histogram, Tag, client, throughput
from netauto_statsd.emitter import Emitter, set_emitter
from tests.runtime.core.wire import Line, UdpSink, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]


def _production(sink: UdpSink, make_emitter: MakeEmitter) -> Emitter:
    emitter = make_emitter(sink.port, strict=False)
    set_emitter(emitter)
    return emitter


def _fresh(metric: Any) -> Any:
    copy = dataclasses.replace(metric)
    assert copy == metric and "inc" not in copy.__dict__ and "observe" not in copy.__dict__
    return copy


def _sent(emitter: Emitter, sink: UdpSink) -> list[Line]:
    emitter.flush()
    return [parse_dogstatsd(text) for text in split_lines(sink.drain())]


def _lines_sent(emitter: Emitter, sink: UdpSink) -> list[str]:
    emitter.flush()
    return split_lines(sink.drain())


def _total(lines: list[Line], name: str, **tags: str) -> float:
    return sum(
        sum(line.values) * line.repeat
        for line in lines
        if line.name == f"netauto.{name}" and line.tag_dict.items() >= tags.items()
    )


def test_repeated_keyword_calls_count_exactly_through_the_kept_child(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """The first call is checked; the next ones with the same tags reuse its bound child (not resolved again)."""
    emitter = _production(sink, make_emitter)
    created: Counter = _fresh(throughput.RUNS_CREATED)
    created.inc(site="par1", protocol="ssh")
    generated = created.__dict__["inc"]
    created.inc(site="par1", protocol="ssh")
    created.inc(3, site="par1", protocol="ssh")
    created.inc(site="lon1", protocol="ssh")
    created.inc(protocol="ssh", site="lon1")  # keyword order does not matter
    assert created.__dict__["inc"] is generated
    # resolved: the very first call (it generates the function) and the first generated call of each tag set
    assert emitter.stats()["accepted"] == 3, "a tag set seen before must reuse its child"
    lines = _sent(emitter, sink)
    assert _total(lines, "run.created", site="par1", protocol="ssh") == 5
    assert _total(lines, "run.created", site="lon1", protocol="ssh") == 2


def test_a_one_tag_metric_and_a_histogram_take_the_generated_path(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """One declared key (a one-element tuple) and ``observe(value, ...)`` without a default value."""
    emitter = _production(sink, make_emitter)
    devices: Counter = _fresh(throughput.DEVICE_RUNS)
    output: Histogram = _fresh(throughput.RUN_OUTPUT_BYTES)
    for _ in range(3):
        devices.inc(device="edge-1")
        output.observe(512, site="par1", protocol="ssh")
    output.observe(1024, site="par1", protocol="ssh")
    assert emitter.stats()["accepted"] == 4  # two per metric: the generating call and the first generated one
    lines = _sent(emitter, sink)
    assert _total(lines, "run.device", device="edge-1") == 3
    values = [v for line in lines if line.name == "netauto.run.output_bytes" for v in line.values * line.repeat]
    assert sorted(values) == [512, 512, 512, 1024]


def test_calls_the_generated_function_does_not_recognise_take_the_checked_path(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A missing tag becomes ``other`` (counted), an undeclared one is refused, neither is kept as a child."""
    emitter = _production(sink, make_emitter)
    created: Counter = _fresh(throughput.RUNS_CREATED)
    created.inc(site="par1", protocol="ssh")  # installs the generated function
    for _ in range(2):
        created.inc(site="par1")  # protocol missing
        created.inc(protocol="ssh")  # site missing
        created.inc(site="par1", protocol="ssh", region="eu")  # undeclared tag
    assert emitter.stats()["rejected"] == 2 and emitter.stats()["unexpected_values"] == 4
    lines = _sent(emitter, sink)
    assert _total(lines, "run.created", site="par1", protocol="ssh") == 1
    assert _total(lines, "run.created", site="par1", protocol="other") == 2
    assert _total(lines, "run.created", site="other", protocol="ssh") == 2
    assert _total(lines, "client.rejected", reason="unknown_tag") == 2
    assert _total(lines, "client.unexpected_value", metric="run_created") == 4


def test_tag_values_that_are_not_text_are_sent_as_text_every_time(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """``1``, ``1.0`` and ``True`` are equal keys but different text: never served from one kept child."""
    emitter = _production(sink, make_emitter)
    devices: Counter = _fresh(throughput.DEVICE_RUNS)
    devices.inc(device="edge-1")
    devices.inc(device=1)
    devices.inc(device=1.0)
    devices.inc(device=True)
    devices.inc(device=1)
    lines = _sent(emitter, sink)
    assert {device: _total(lines, "run.device", device=device) for device in ("edge-1", "1", "1_0", "True")} == {
        "edge-1": 1,
        "1": 2,
        "1_0": 1,
        "True": 1,
    }


def test_a_first_call_with_a_tag_value_that_cannot_be_hashed_is_sent_never_raised(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    """A list as tag value cannot key a kept child: the call is resolved (value normalised), not an error."""
    emitter = _production(sink, make_emitter)
    created: Counter = _fresh(throughput.RUNS_CREATED)
    output: Histogram = _fresh(throughput.RUN_OUTPUT_BYTES)
    created.inc(2, site=["par1"], protocol="ssh")
    output.observe(512, site=["par1"], protocol="ssh")
    stats = emitter.stats()
    assert (stats["accepted"], stats["rejected"], stats["internal_errors"]) == (2, 0, 0)
    assert sorted(_lines_sent(emitter, sink)) == [
        "netauto.run.created:2|c|#site:__par1__,protocol:ssh,env:dev,service:netauto",
        "netauto.run.output_bytes:512|h|#site:__par1__,protocol:ssh,env:dev,service:netauto",
    ]


def test_a_metric_without_tags_keeps_its_ordinary_inc(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """Nothing is generated for a metric with no tags (there is nothing to bind); its calls still count."""
    emitter = _production(sink, make_emitter)
    failures: Counter = _fresh(client.SEND_FAILURES)
    failures.inc()
    failures.inc(2)
    assert "inc" not in failures.__dict__
    assert _total(_sent(emitter, sink), "client.send_failures") == 3


def test_tag_keys_that_cannot_be_parameters_keep_the_keyword_mapping_path(make_emitter: MakeEmitter) -> None:
    """An app tag named ``value`` or ``class`` cannot be a parameter: such calls go through ``**tags``, never raise."""
    emitter = make_emitter(strict=False, disabled=True)
    set_emitter(emitter)
    for key in ("value", "class", "from"):
        odd: Counter = dataclasses.replace(throughput.DEVICE_RUNS, tags=(Tag(key),))  # not declared: refused
        odd.inc(**{key: "x"})
        odd.inc(**{key: "x"})
        assert "inc" not in odd.__dict__, key
    assert emitter.stats()["rejected"] == 6


def test_observe_without_a_value_is_a_type_error_not_an_observation(make_emitter: MakeEmitter) -> None:
    """The generated ``observe`` has no default value (only ``inc`` defaults to 1)."""
    set_emitter(make_emitter(strict=False, disabled=True))
    output: Histogram = _fresh(throughput.RUN_OUTPUT_BYTES)
    output.observe(512, site="par1", protocol="ssh")
    with pytest.raises(TypeError):
        output.observe(site="par1", protocol="ssh")  # type: ignore[call-arg]
