"""The wire base: dense histogram packing, a value longer than the room, names, the null transport.

Written for mutants that survived the suite (docs/testing.md): chunks were
allowed to be needlessly short (one value per line would have passed), a value
longer than the room was never exercised, and the plain-format name pattern was
only ever rendered with the default namespace.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from netauto_statsd.catalog import METRICS
from netauto_statsd.wire.base import format_number, pack_values, plain_pattern

VALUES = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(0, 10**6), max_size=300)


@given(VALUES, st.integers(24, 400))
def test_every_chunk_but_the_last_is_full(values: list[float], room: int) -> None:
    """Density: a chunk ends only where the next value would not fit (fewer lines, fewer datagrams)."""
    chunks = pack_values(values, room)
    for chunk, following in itertools.pairwise(chunks):
        next_value = following.split(":", 1)[0]
        assert len(chunk) + 1 + len(next_value) > room, (chunk, next_value, room)


def test_a_value_longer_than_the_room_travels_alone_between_others() -> None:
    assert pack_values([1.5, 123456.789, 2.5], 4) == ["1.5", "123456.789", "2.5"]
    assert pack_values([123456.789], 4) == ["123456.789"]


def test_a_text_that_fits_exactly_is_one_chunk() -> None:
    assert pack_values([0.5, 3.0, 12], 8) == ["0.5:3:12"]


def test_plain_pattern_uses_the_configured_namespace() -> None:
    metric = next(m for m in METRICS if m.name == "run.created")
    assert plain_pattern(metric, "acme") == "acme.run.created.<site>.<protocol>.<env>.<service>"


def test_a_disabled_emitter_counts_no_failed_packet() -> None:
    """DD_DOGSTATSD_DISABLE: nothing is sent, and nothing is reported as lost either."""
    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter

    emitter = Emitter(Settings(disabled=True, strict=True, flush_interval=60))
    try:
        emitter.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
        emitter.histogram("runner.duration", 0.5, tags={"site": "par1", "protocol": "ssh", "status": "ok"})
        assert emitter.flush() == 2
        assert emitter.stats()["packets_failed"] == 0
    finally:
        emitter.close()


def test_an_unusable_configuration_keeps_its_reason_and_counts_every_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that is not a number: the process-wide emitter stands on an UnusableTransport that says why
    (for whoever inspects it) and counts each batch as one failed packet with all its samples."""
    from netauto_statsd.catalog import get
    from netauto_statsd.emitter import get_emitter
    from netauto_statsd.wire.base import Batch, SendResult, UnusableTransport

    monkeypatch.setenv("DD_DOGSTATSD_PORT", "eighty")
    transport = get_emitter()._transport
    assert isinstance(transport, UnusableTransport)
    assert "DD_DOGSTATSD_PORT" in transport.reason and "'eighty'" in transport.reason
    batch = Batch()
    batch.counters[(get("runner.start"), (("site", "par1"), ("protocol", "ssh")))] = 2
    batch.histograms[(get("runner.duration"), (("site", "par1"), ("protocol", "ssh"), ("status", "ok")))] = [1.0, 2.0]
    result, empty = transport.send(batch), transport.send(Batch())
    assert isinstance(result, SendResult) and isinstance(empty, SendResult)
    assert [(r + 0, r.samples_failed) for r in (result, empty)] == [(1, 3), (0, 0)]


@example(1e15)
@example(-1e15)
@example(999_999_999_999_999.0)
@example(1e16)
@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not (v == 0 and math.copysign(1, v) < 0)))
def test_a_single_value_and_a_packed_value_are_the_same_text(value: float) -> None:
    """``format_number`` (counters, gauges, one value a line) and ``pack_values`` (multi-value lines)
    write a value the same way: ``repr`` without a trailing ``.0`` (``-0.0`` aside: ``0`` / ``-0``).
    Before this test, ``format_number`` wrote ``1e15`` as ``1000000000000000.0`` (its integer cut-off
    was ``1e15``; ``repr`` switches to ``1e+16`` only at ``1e16``)."""
    text = repr(value)
    assert format_number(value) == pack_values([value], 10_000)[0] == text.removesuffix(".0")


def test_a_transport_returning_a_plain_int_loses_the_whole_batch_or_nothing() -> None:
    """A third-party transport that only says how many packets failed (a plain ``int``): a failed send
    costs every sample of its batch, a good one none."""
    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter
    from netauto_statsd.wire.base import Batch

    class Answering:
        def __init__(self) -> None:
            self.answers = [1, 0]

        def send(self, batch: Batch) -> int:
            return self.answers.pop(0)

        def close(self) -> None:
            pass

    emitter = Emitter(Settings(strict=True, flush_interval=60), transport=Answering())
    try:
        site = {"site": "par1", "protocol": "ssh"}
        emitter.increment("run.created", tags=site)
        for value in (0.5, 1.5):
            emitter.histogram("runner.duration", value, tags={**site, "status": "ok"})
        emitter.flush()
        first = emitter.stats()
        emitter.increment("run.created", tags=site)
        emitter.flush()
        second = emitter.stats()
    finally:
        emitter.close()
    assert (first["packets_failed"], first["samples_failed"]) == (1, 3)
    assert (second["packets_failed"], second["samples_failed"]) == (1, 3)
