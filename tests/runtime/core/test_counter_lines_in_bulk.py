"""Counter lines are written in bulk (one ``%`` over cached templates) and cut into datagrams at newlines.

Whatever the batch (the emitter's bulk rows or a dict built by hand), the datagrams
on the wire must be exactly those of packing :meth:`DogStatsdLines.lines` line by
line: greedily, at most ``max_packet`` bytes, a line longer than that alone, the
counters' last datagram continued by the gauge and histogram lines.
"""

from __future__ import annotations

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, Context, DogStatsdLines, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.wire import UdpSink, split_lines

QUEUE = (("queue", "default"), ("state", "queued"))
DURATION = (("site", "par1"), ("protocol", "ssh"), ("status", "ok"))


def _table(count: int) -> list[Context]:
    """Contexts of varied length, as the emitter's table holds them."""
    return [(get("runner.start"), (("site", "s" * (1 + i % 37) + str(i)), ("protocol", "ssh"))) for i in range(count)]


def _values(count: int) -> list[float]:
    """Integers, integral and fractional floats, one huge float: every form a counter value takes."""
    forms: list[float] = [1, 3.0, 1.5, 7, 1e20, 2]
    return [forms[i % len(forms)] for i in range(count)]


def _greedy(lines: list[str], limit: int) -> list[bytes]:
    """The reference packing, line by line."""
    datagrams: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for text in lines:
        line = text.encode()
        if size and size + len(line) + 1 > limit:
            datagrams.append(b"\n".join(current) + b"\n")
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        datagrams.append(b"\n".join(current) + b"\n")
    return datagrams


def _with_others(batch: Batch) -> Batch:
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = 4
    batch.histograms[(get("runner.duration"), DURATION)] = [0.25, 1.5e-05, 3.0]
    return batch


def _sent(batch: Batch, sink: UdpSink, max_packet: int) -> tuple[list[bytes], SendResult]:
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=sink.port, max_packet=max_packet))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    sink.wait_for(lambda got: len(got) >= result.datagrams)
    return sink.drain(), result


@pytest.mark.parametrize("max_packet", [1432, 300, 64])  # 64: every counter line is longer, and travels alone
@pytest.mark.parametrize("form", ["rows", "dict"])
def test_counter_datagrams_are_those_of_packing_line_by_line(sink: UdpSink, max_packet: int, form: str) -> None:
    table, values = _table(600), _values(600)
    ids = [*range(0, 600, 2), 7]  # ascending, then one added after the others (a client counter)
    batch = Batch()
    if form == "rows":
        batch.set_counter_rows(ids, [values[i] for i in ids], table)
    else:
        batch.counters = {table[i]: values[i] for i in ids}
    _with_others(batch)
    expected_lines = [
        line
        for line, _ in DogStatsdLines("netauto", ["env:dev", "service:netauto"], max_packet, True).lines(
            _with_others(Batch({table[i]: values[i] for i in ids}))
        )
    ]
    assert len(expected_lines) == len(ids) + 2
    got, result = _sent(batch, sink, max_packet)
    assert got == _greedy(expected_lines, max_packet)
    assert (result + 0, result.samples_failed, result.datagrams) == (0, 0, len(got))
    assert len(split_lines(got)) == len(expected_lines)
    lines = split_lines(got)
    assert lines[2].startswith("netauto.runner.start:1e+20|c|#")  # a huge float keeps its exact text
    assert lines[1].startswith("netauto.runner.start:1.5|c|#")
    assert lines[len(ids) - 1].startswith("netauto.runner.start:3|c|#site:ssssssss7,")  # an integral float: no ".0"
    assert max(map(len, got)) <= max_packet or max_packet == 64


def test_the_same_contexts_flush_after_flush_reuse_their_templates(sink: UdpSink) -> None:
    """Templates are cached per context id of the table; a context added to the table later gets its own."""
    table = _table(3)
    transport = DogStatsdTransport(Settings(host="127.0.0.1", port=sink.port))
    try:
        first = Batch()
        first.set_counter_rows([0, 2], [1, 2], table)
        transport.send(first)
        table.append((get("runner.start"), (("site", "late"), ("protocol", "telnet"))))
        second = Batch()
        second.set_counter_rows([2, 3], [5, 6], table)
        transport.send(second)
    finally:
        transport.close()
    sink.wait_for(lambda got: len(got) >= 2)
    assert split_lines(sink.drain()) == [
        "netauto.runner.start:1|c|#site:s0,protocol:ssh,env:dev,service:netauto",
        "netauto.runner.start:2|c|#site:sss2,protocol:ssh,env:dev,service:netauto",
        "netauto.runner.start:5|c|#site:sss2,protocol:ssh,env:dev,service:netauto",
        "netauto.runner.start:6|c|#site:late,protocol:telnet,env:dev,service:netauto",
    ]


def test_every_datagram_size_limit_packs_like_line_by_line(sink: UdpSink) -> None:
    """Every limit from 64 to 700 bytes: exact fits, one byte over, and the counters' last datagram
    continued by the gauge and histogram lines exactly as far as they fit."""
    table, values = _table(12), _values(12)
    ids = list(range(12))
    for max_packet in range(64, 701):
        batch = Batch()
        batch.set_counter_rows(ids, [values[i] for i in ids], table)
        reference = _with_others(Batch({table[i]: values[i] for i in ids}))
        serialiser = DogStatsdLines("netauto", ["env:dev", "service:netauto"], max_packet, True)
        expected = _greedy([line for line, _ in serialiser.lines(reference)], max_packet)
        got, result = _sent(_with_others(batch), sink, max_packet)
        assert got == expected, max_packet
        assert result.datagrams == len(expected)
