"""Datagram sizing, to the byte, on both DogStatsD paths (UDP and a unix socket).

Written for mutants that moved a size by a byte or two and went unnoticed: the
histogram chunk room, the unix-socket path's line-length estimate and the "is the
datagram full" comparisons. The rules held here:

* a datagram is never longer than ``max_packet`` (its trailing newline included);
* a datagram of short lines ends only where the next line would not fit: uniform
  lines of ``n`` bytes (newline included) travel ``max_packet // n`` to a datagram;
* a histogram chunk ends only where one more value would not fit its datagram
  (a line of a full chunk fills its datagram to the byte when the values allow);
* the unix socket gets the UDP path's datagrams byte for byte, and the count the
  transport reports is the count that arrived - also with ``max_packet`` above
  datadog's own default (1,432 bytes), which its client used to apply to our
  first datagram and to the one after a failed send.

Real sockets on both sides; ``max_packet`` is swept over consecutive values so that
some boundary falls exactly on the limit.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.test_wire_paths import UnixSink
from tests.runtime.core.wire import UdpSink, split_lines

OK = (("site", "par1"), ("protocol", "ssh"), ("status", "ok"))


def _both(
    sink: UdpSink, tmp_path: Path, settings: Settings, *batches: Batch
) -> tuple[list[bytes], list[bytes], list[SendResult], list[SendResult]]:
    """Send ``batches`` over UDP and to a unix socket; return what arrived each way and the results."""
    tmp_path.mkdir(exist_ok=True)
    unix_sink = UnixSink(tmp_path / "dsd.socket")
    udp = DogStatsdTransport(dataclasses.replace(settings, host="127.0.0.1", port=sink.port))
    unix = DogStatsdTransport(dataclasses.replace(settings, socket_path=f"unix://{unix_sink.path}"))
    try:
        by_udp = [udp.send(batch) for batch in batches]
        by_unix = [unix.send(batch) for batch in batches]
        unix_datagrams = unix_sink.drain()
        udp_datagrams = sink.drain()
    finally:
        udp.close()
        unix.close()
        unix_sink.sock.close()
    assert all(isinstance(r, SendResult) for r in by_udp + by_unix)
    return udp_datagrams, unix_datagrams, by_udp, by_unix  # type: ignore[return-value]


def _histograms() -> Batch:
    """Values all 5 characters long (``0.125``...), so a chunk of ``k`` values is ``6k - 1`` characters."""
    batch = Batch()
    batch.histograms[(get("runner.duration"), OK)] = [0.125, 0.375, 0.625, 0.875] * 100
    batch.sampled[(get("runner.duration"), OK)] = [(0.25, [1.125, 2.375] * 100), (0.125, [3.625] * 150)]
    return batch


@pytest.mark.parametrize("namespace", ["netauto", ""])
@pytest.mark.parametrize("max_packet", range(600, 606))
def test_a_full_histogram_chunk_is_the_longest_that_fits_its_datagram(
    sink: UdpSink, tmp_path: Path, namespace: str, max_packet: int
) -> None:
    settings = Settings(namespace=namespace, max_packet=max_packet, env="dev", service="netauto")
    by_udp, by_unix, (sent_udp,), (sent_unix,) = _both(sink, tmp_path, settings, _histograms())
    assert by_unix == by_udp
    assert sent_unix.datagrams == sent_udp.datagrams == len(by_udp)
    assert (sent_unix + 0, sent_unix.samples_failed) == (0, 0) == (sent_udp + 0, sent_udp.samples_failed)
    assert all(len(d) <= max_packet for d in by_udp)
    lines = split_lines(by_udp)
    # every value arrives once, in order, under its own rate
    for kind, expected in [("|h|#", [0.125, 0.375, 0.625, 0.875] * 100), ("|h|@0.25|#", [1.125, 2.375] * 100)]:
        got = [float(v) for line in lines if kind in line for v in line.split("|")[0].split(":")[1:]]
        assert got == expected
    assert sum(line.split("|")[0].count(":") for line in lines if "|@0.125|" in line) == 150
    # each chunk but a context's last is full: one more value (":" and 5 characters) would not fit
    for kind in ("|h|#", "|h|@0.25|#", "|h|@0.125|#"):
        chunks = [line for line in lines if kind in line]
        assert len(chunks) > 1
        for line in chunks[:-1]:
            assert len(line) + 1 <= max_packet < len(line) + 1 + 6, (kind, len(line), max_packet)


def test_a_histogram_line_longer_than_a_datagram_carries_at_most_32_characters_of_values(
    sink: UdpSink, tmp_path: Path
) -> None:
    """Name and tags leave no room in a 64-byte datagram: chunks of at most 32 characters of values,
    each the longest that fits them (16 one-digit values, 11 two-digit ones); such a line travels alone."""
    par2 = (("site", "par2"), *OK[1:])
    batch = Batch()
    batch.histograms[(get("runner.duration"), OK)] = [7] * 20
    batch.histograms[(get("runner.duration"), par2)] = [42] * 15
    batch.sampled[(get("runner.duration"), OK)] = [(0.25, [5] * 20)]
    batch.sampled[(get("runner.duration"), par2)] = [(0.25, [63] * 15)]
    settings = Settings(max_packet=64, env="dev", service="netauto")
    by_udp, by_unix, (sent_udp,), (sent_unix,) = _both(sink, tmp_path, settings, batch)
    assert by_unix == by_udp
    lines = split_lines(by_udp)
    assert len(by_udp) == len(lines) == sent_udp.datagrams == sent_unix.datagrams == 8
    chunks = [line.split("|")[0].split(":", 1)[1] for line in lines]
    one, two = [":".join(["7"] * n) for n in (16, 4)], [":".join(["42"] * n) for n in (11, 4)]
    five, six = [":".join(["5"] * n) for n in (16, 4)], [":".join(["63"] * n) for n in (11, 4)]
    assert chunks == one + two + five + six
    assert {len(chunk) for chunk in chunks} == {31, 32, 7, 11}


def _short_lines(kind: str) -> Batch:
    """24 lines of one length (at most 8 datagrams: a unix socket's queue holds 10): counters of
    three-digit sites, or sampled values at one rate."""
    batch = Batch()
    for i in range(100, 124):
        site = (("site", f"s{i}"), ("protocol", "ssh"))
        if kind == "counters":
            batch.counters[(get("runner.start"), site)] = 7
        else:
            batch.sampled[(get("runner.duration"), (*site, ("status", "ok")))] = [(0.25, [0.5])]
    return batch


@pytest.mark.parametrize("offset", [-1, 0, 1])
@pytest.mark.parametrize("namespace", ["netauto", ""])
@pytest.mark.parametrize("kind", ["counters", "sampled"])
def test_short_lines_fill_each_datagram_to_the_byte_on_both_paths(
    sink: UdpSink, tmp_path: Path, kind: str, namespace: str, offset: int
) -> None:
    """Four lines fit exactly (``offset`` 0), or one byte more or less: ``max_packet // n`` lines a datagram."""
    probe = Settings(namespace=namespace, env="dev", service="netauto")
    (sample,) = {len(line) + 1 for line in split_lines(_both(sink, tmp_path / "a", probe, _short_lines(kind))[0])}
    max_packet = 4 * sample + offset
    settings = dataclasses.replace(probe, max_packet=max_packet)
    by_udp, by_unix, (sent_udp,), (sent_unix,) = _both(sink, tmp_path / "b", settings, _short_lines(kind))
    per_datagram = max_packet // sample
    assert by_unix == by_udp
    assert [len(split_lines([d])) for d in by_udp] == [per_datagram] * (24 // per_datagram) + (
        [24 % per_datagram] if 24 % per_datagram else []
    )
    assert (sent_unix + 0, sent_unix.samples_failed) == (0, 0)
    assert sent_unix.datagrams == sent_udp.datagrams == len(by_udp)
    assert max(len(d) for d in by_udp) <= max_packet


def _many_counters() -> Batch:
    batch = Batch()
    for i in range(150):
        batch.counters[(get("runner.start"), (("site", f"s{i}"), ("protocol", "ssh")))] = i
    return batch


def test_a_unix_socket_datagram_larger_than_the_clients_default_is_sent_whole(sink: UdpSink, tmp_path: Path) -> None:
    """``max_packet=4000`` (above datadog's 1,432): before this was fixed, the first flush's first datagram
    left in two pieces (the client's own limit until its socket connected), one of them not counted."""
    settings = Settings(max_packet=4000, env="dev", service="netauto")
    by_udp, by_unix, sent_udp, sent_unix = _both(sink, tmp_path, settings, _many_counters(), _many_counters())
    assert by_unix == by_udp
    assert [r.datagrams for r in sent_unix] == [r.datagrams for r in sent_udp] == [3, 3]
    assert len(by_unix) == 6
    assert max(len(d) for d in by_unix) > 1432


def test_after_a_refused_unix_datagram_the_next_ones_are_sent_whole(sink: UdpSink, tmp_path: Path) -> None:
    """The receiver went away and came back at the same path between two flushes: the first datagram
    goes to the old, closed peer and is refused (counted with its samples); the client reconnects
    and the rest arrive whole - the client's fallback limit after the failure does not cut them."""
    settings = Settings(max_packet=4000, env="dev", service="netauto")
    udp = DogStatsdTransport(dataclasses.replace(settings, host="127.0.0.1", port=sink.port))
    try:
        udp.send(_many_counters())
        expected = sink.drain()
    finally:
        udp.close()
    path = tmp_path / "dsd.socket"
    first = UnixSink(path)
    unix = DogStatsdTransport(dataclasses.replace(settings, socket_path=f"unix://{path}"))
    try:
        assert unix.send(_many_counters()) == 0
        assert first.drain() == expected
        first.sock.close()
        os.unlink(path)
        second = UnixSink(path)
        try:
            result = unix.send(_many_counters())
            arrived = second.drain()
        finally:
            second.sock.close()
    finally:
        unix.close()
    assert isinstance(result, SendResult)
    lost = len(split_lines(expected[:1]))
    assert (result + 0, result.samples_failed, result.datagrams) == (1, lost, 3)
    assert arrived == expected[1:]


def test_a_unix_socket_the_sender_cannot_reach_counts_each_planned_datagram(tmp_path: Path) -> None:
    """A path that is a directory: every datagram is refused, the count is the UDP path's."""
    (tmp_path / "a-directory").mkdir()
    settings = Settings(max_packet=4000, socket_path=f"unix://{tmp_path / 'a-directory'}")
    transport = DogStatsdTransport(settings)
    try:
        result = transport.send(_many_counters())
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (3, 150, 3)
