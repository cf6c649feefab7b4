"""How the unix-socket path sets up datadog's client, and what happens when the client cannot be built.

Set up for the exporter: no thread of the client's own, a socket that never blocks,
no telemetry, no warning per line (seen from outside the client: threads, the
socket's timeout, its telemetry counters, the log).

When it cannot be built, the unix-socket path sends nothing, counts everything, warns once.

The client is built at the first send over ``unix://``. A real configuration that
makes datadog's ``DogStatsd()`` raise: ``DD_TELEMETRY_HOST`` with a
``DD_TELEMETRY_PORT`` that is not a number (the client reads both from the
environment, whatever its arguments say, and converts the port with ``int``). Set
after datadog was imported (as in an application that imported it before the
variables changed), the constructor fails and the transport's setup-failure branch
runs: no exception reaches the caller, every sample of every batch is counted as
lost, and the warning is logged once, not at every flush.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from netauto_statsd.catalog import get
from netauto_statsd.config import Settings
from netauto_statsd.wire.base import Batch, SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.test_wire_paths import UnixSink
from tests.runtime.core.wire import split_lines

SITE = (("site", "par1"), ("protocol", "ssh"))


def _batch() -> Batch:
    batch = Batch()
    batch.counters[(get("runner.start"), SITE)] = 3
    batch.histograms[(get("runner.duration"), (*SITE, ("status", "ok")))] = [0.5, 1.25]
    return batch


def test_a_client_datadog_refuses_to_build_costs_every_sample_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(Settings(socket_path=f"unix://{sink.path}"))  # imports datadog
    monkeypatch.setenv("DD_TELEMETRY_HOST", "localhost")
    monkeypatch.setenv("DD_TELEMETRY_PORT", "eight")
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            first = transport.send(_batch())
            empty = transport.send(Batch())
            monkeypatch.delenv("DD_TELEMETRY_PORT")  # fixed now: a failed setup is not retried
            second = transport.send(_batch())
    finally:
        transport.close()
        datagrams = sink.drain()
        sink.sock.close()
    assert datagrams == []
    assert all(isinstance(r, SendResult) for r in (first, empty, second))
    assert [(r + 0, r.samples_failed, r.datagrams) for r in (first, empty, second)] == [(1, 3, 0), (0, 0, 0), (1, 3, 0)]  # type: ignore[attr-defined]
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "netauto_statsd"]
    assert records == [
        (
            "WARNING",
            "netauto_statsd: cannot set up the DogStatsD client, sending nothing: "
            "invalid literal for int() with base 10: 'eight'",
        )
    ]


def test_the_client_is_built_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built at the first send and kept: a telemetry port broken later changes nothing."""
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(Settings(socket_path=f"unix://{sink.path}", env="dev", service="netauto"))
    try:
        first = transport.send(_batch())
        monkeypatch.setenv("DD_TELEMETRY_HOST", "localhost")
        monkeypatch.setenv("DD_TELEMETRY_PORT", "eight")
        second = transport.send(_batch())
    finally:
        transport.close()
        datagrams = sink.drain()
        sink.sock.close()
    assert first == second == 0
    assert len(split_lines(datagrams)) == 4


def test_the_client_starts_no_thread_never_blocks_counts_no_telemetry_and_warns_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """How datadog's client is set up, seen from outside it: no flush or sender thread of its own (buffering
    and aggregation off: we batch and aggregate), a socket that never blocks the flush thread
    (``socket_timeout=0``), no telemetry (its counters stay at zero; its datagram would follow after 10 s)
    and no warning at any line (``cardinality=None``; an empty one is refused with a warning per line)."""
    sink = UnixSink(tmp_path / "dsd.socket")
    transport = DogStatsdTransport(Settings(socket_path=f"unix://{sink.path}", env="dev", service="netauto"))
    threads = set(threading.enumerate())
    try:
        with caplog.at_level(logging.DEBUG):
            result = transport.send(_batch())
            again = transport.send(_batch())
        client = transport._client
        started = set(threading.enumerate()) - threads
        timeout = client.socket.gettimeout()
        telemetry = (client.metrics_count, client.packets_sent, client.bytes_sent)
    finally:
        transport.close()
        datagrams = sink.drain()
        sink.sock.close()
    assert result == again == 0
    assert len(datagrams) == 2
    assert started == set()
    assert timeout == 0.0
    assert telemetry == (0, 0, 0)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
