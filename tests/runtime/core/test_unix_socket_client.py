"""The unix-socket path of the DogStatsD transport: how datadog's client is set up and what a failure leaves.

Over ``unix://`` the lines go through datadog's ``DogStatsd`` client. Whatever the
``DD_*`` environment says, the datagrams carry exactly our tags (no ``DATADOG_TAGS``,
``DD_VERSION`` or ``DD_ENTITY_ID`` label, no ``|e:`` external data, no telemetry
datagram); a send that fails half-way never raises, counts its loss and leaves the
client usable; ``close`` releases the socket. Real unix datagram sockets.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import socket
from pathlib import Path

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.test_wire_paths import UnixSink
from tests.runtime.core.wire import UdpSink, split_lines

SITE = (("site", "par1"), ("protocol", "ssh"))
OK = (*SITE, ("status", "ok"))
QUEUE = (("queue", "default"), ("state", "queued"))


def _settings(path: Path, **overrides: object) -> Settings:
    return Settings(**{"socket_path": f"unix://{path}", "env": "dev", "service": "netauto", **overrides})  # type: ignore[arg-type]


def _small() -> Batch:
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 3
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = -2
    batch.histograms[(get("runner.duration"), OK)] = [0.5, 1.25]
    batch.sampled[(get("runner.duration"), OK)] = [(0.25, [2.0])]
    return batch


EXPECTED = [
    "netauto.runner.start:3|c|#site:par1,protocol:ssh,env:dev,service:netauto",
    "netauto.rq.queue.jobs:0|g|#queue:default,state:queued,env:dev,service:netauto",
    "netauto.rq.queue.jobs:-2|g|#queue:default,state:queued,env:dev,service:netauto",
    "netauto.runner.duration:0.5:1.25|h|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto",
    "netauto.runner.duration:2|h|@0.25|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto",
]


def test_unix_socket_lines_carry_only_our_tags_whatever_the_dd_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DATADOG_TAGS``, ``DD_ENV``/``DD_SERVICE``/``DD_VERSION``, ``DD_ENTITY_ID``, ``DD_EXTERNAL_ENV``:
    none reaches the wire."""
    for key, value in {
        "DATADOG_TAGS": "team:x,region:eu",
        "DD_TAGS": "owner:y",
        "DD_ENV": "prod",
        "DD_SERVICE": "other",
        "DD_VERSION": "9.9",
        "DD_ENTITY_ID": "abc-123",
        "DD_EXTERNAL_ENV": "it-false,cn-app,pu-4f2a",
    }.items():
        monkeypatch.setenv(key, value)
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path))
    try:
        result = transport.send(_small())
        again = transport.send(_small())  # a second flush: still no telemetry or extra field
        datagrams = sink.drain()
    finally:
        transport.close()
        sink.sock.close()
    assert split_lines(datagrams) == EXPECTED * 2
    assert len(datagrams) == 2
    assert isinstance(result, SendResult) and isinstance(again, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (0, 0, 1) == (again + 0, again.samples_failed, 1)


def test_unix_socket_without_namespace_sends_bare_names(tmp_path: Path) -> None:
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path, namespace=""))
    try:
        transport.send(_small())
        datagrams = sink.drain()
    finally:
        transport.close()
        sink.sock.close()
    assert split_lines(datagrams) == [line.removeprefix("netauto.") for line in EXPECTED]


def test_unix_socket_send_failing_midway_never_raises_and_leaves_the_client_usable(tmp_path: Path) -> None:
    """A value that cannot be formatted: the send counts one failure and the batch's samples, then the
    next send works (the client's buffer was closed, so its lock is free)."""
    bad = Batch()
    bad.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    bad.counters[(get("runner.start"), SITE)] = 1
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path))
    try:
        failed = transport.send(bad)
        good = transport.send(_small())
        datagrams = sink.drain()
    finally:
        transport.close()
        sink.sock.close()
    assert isinstance(failed, SendResult) and isinstance(good, SendResult)
    assert (failed + 0, failed.samples_failed) == (1, len(bad)) == (1, 2)
    assert (good + 0, good.samples_failed, good.datagrams) == (0, 0, 1)
    # the counter formatted before the failure was flushed by close_buffer; then the good batch
    counter = "netauto.runner.start:1|c|#site:par1,protocol:ssh,env:dev,service:netauto"
    assert split_lines(datagrams) == [counter, *EXPECTED]


def test_unix_socket_empty_batch_sends_nothing(tmp_path: Path) -> None:
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path))
    try:
        result = transport.send(Batch())
        datagrams = sink.drain()
    finally:
        transport.close()
        sink.sock.close()
    assert datagrams == []
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (0, 0, 0)


def test_unix_socket_to_a_full_socket_never_blocks_and_counts_the_losses(tmp_path: Path) -> None:
    """Nobody reads the socket: its short queue fills, the client does not wait (``socket_timeout=0``),
    and every datagram that did not fit is counted with its samples."""
    path = tmp_path / "full.socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as reader:
        reader.bind(str(path))
        batch = Batch()
        batch.histograms[(get("runner.duration"), OK)] = [0.001 * i for i in range(20_000)]
        transport = DogStatsdTransport(_settings(path, max_packet=512))
        try:
            result = transport.send(batch)
        finally:
            transport.close()
        arrived = 0
        reader.setblocking(False)
        samples_arrived = 0
        while True:
            try:
                data = reader.recv(65535)
            except BlockingIOError:
                break
            arrived += 1
            samples_arrived += sum(line.split("|")[0].count(":") for line in split_lines([data]))
    assert isinstance(result, SendResult)
    assert result + 0 > 0
    assert arrived + result == result.datagrams
    assert samples_arrived + result.samples_failed == len(batch)


def test_unix_socket_close_releases_the_socket(tmp_path: Path) -> None:
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path))
    try:
        before = len(os.listdir("/proc/self/fd"))
        transport.send(_small())
        opened = len(os.listdir("/proc/self/fd"))
        transport.close()
        closed = len(os.listdir("/proc/self/fd"))
        transport.close()  # twice is fine
        datagrams = sink.drain()
    finally:
        sink.sock.close()
    assert split_lines(datagrams) == EXPECTED
    assert opened > before
    assert closed < opened


def _many_small_lines(kind: str, count: int = 120) -> Batch:
    batch = Batch()
    for i in range(count):
        site = (("site", f"s{i}"), ("protocol", "ssh"))
        if kind == "counters":
            batch.counters[(get("runner.start"), site)] = i
        elif kind == "gauges":
            batch.gauges[(get("rq.queue.jobs"), (("queue", f"q{i}"), ("state", "queued")))] = i - count // 2  # 0 too
        else:
            batch.sampled[(get("runner.duration"), (*site, ("status", "ok")))] = [(0.25, [0.5]), (0.1, [i / 8])]
    return batch


@pytest.mark.parametrize("namespace", ["netauto", ""])
@pytest.mark.parametrize("kind", ["counters", "gauges", "sampled"])
def test_unix_socket_sends_many_short_lines_in_full_datagrams_each_counted(
    sink: UdpSink, tmp_path: Path, kind: str, namespace: str
) -> None:
    """Many short lines: counters, gauges around zero (a zero gauge is one line, a negative one two),
    sampled lines with ``|@rate``. The unix socket gets the UDP path's lines, in datagrams of at most
    ``max_packet`` bytes that the client never flushed on its own (the count reported is the count that
    arrived), each one full, at most one more than the UDP path sends (the size estimate errs by two
    bytes a line on the safe side)."""
    unix_sink = UnixSink(tmp_path / "dsd.socket")
    base = Settings(namespace=namespace, max_packet=1000, env="dev", service="netauto")
    udp = DogStatsdTransport(dataclasses.replace(base, host="127.0.0.1", port=sink.port))
    unix = DogStatsdTransport(dataclasses.replace(base, socket_path=f"unix://{unix_sink.path}"))
    try:  # 30 contexts: fewer datagrams than a unix socket's queue holds (10), whatever the reader's pace
        sent_udp, sent_unix = udp.send(_many_small_lines(kind, 30)), unix.send(_many_small_lines(kind, 30))
        by_unix = unix_sink.drain()
        by_udp = sink.drain()
    finally:
        udp.close()
        unix.close()
        unix_sink.sock.close()
    assert isinstance(sent_udp, SendResult) and isinstance(sent_unix, SendResult)
    assert (sent_unix + 0, sent_unix.samples_failed) == (0, 0)
    lines = split_lines(by_unix)
    assert lines == split_lines(by_udp)
    assert sent_unix.datagrams == len(by_unix) and sent_udp.datagrams == len(by_udp) >= 2
    assert len(by_udp) <= len(by_unix) <= len(by_udp) + 1
    assert max(len(d) for d in by_unix) <= 1000
    # each datagram is full: the next line would not have fitted (within the estimate's few bytes a line)
    assert all(len(a) + len(b.split(b"\n", 1)[0]) + 1 > 1000 - 32 for a, b in itertools.pairwise(by_unix))
    if kind == "gauges":
        zero = f"{namespace}.rq.queue.jobs:0|g".lstrip(".")
        assert sum(line.startswith(zero) for line in lines) == 16  # 15 negative gauges and the zero one


def test_unix_socket_failing_after_several_datagrams_counts_what_was_not_flushed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Flushed datagrams are delivered and not counted; the failure costs the samples never flushed by then."""
    batch = _many_small_lines("counters", 40)  # 7 datagrams: the socket's queue holds 10
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(_settings(sink.path, max_packet=512))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            result = transport.send(batch)
        datagrams = sink.drain()
    finally:
        transport.close()
        sink.sock.close()
    assert isinstance(result, SendResult)
    flushed = len(split_lines(datagrams[:-1]))  # the last datagram left the buffer only at close_buffer
    assert len(split_lines(datagrams)) == 40 and len(datagrams) == result.datagrams + 1 > 3
    assert (result + 0, result.samples_failed) == (1, len(batch) - flushed)
    assert any(r.getMessage().startswith("netauto_statsd: send failed: '<' not supported") for r in caplog.records)


def test_unix_socket_missing_and_failing_after_several_datagrams_counts_every_datagram_and_sample(
    tmp_path: Path,
) -> None:
    """Nobody listens and the send fails half-way: each flushed datagram failed, plus the failure itself."""
    batch = _many_small_lines("counters")
    batch.gauges[(get("rq.queue.jobs"), QUEUE)] = "not a number"  # type: ignore[assignment]
    transport = DogStatsdTransport(_settings(tmp_path / "no-such.socket", max_packet=512))
    try:
        result = transport.send(batch)
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert result.datagrams > 5
    assert (result + 0, result.samples_failed) == (result.datagrams + 1, len(batch))


def test_unix_socket_missing_logs_what_was_not_delivered_and_no_send_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused flush is counted and logged as such ("1 of 1 datagram(s) not delivered"), not as a failed send."""
    transport = DogStatsdTransport(_settings(tmp_path / "no-such.socket"))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            result = transport.send(_small())
    finally:
        transport.close()
    assert isinstance(result, SendResult)
    assert (result + 0, result.samples_failed, result.datagrams) == (1, len(_small()), 1) == (1, 5, 1)
    assert [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"] == [
        "netauto_statsd: 1 of 1 datagram(s) not delivered (5 samples)"
    ]
