"""DogStatsD to a unix socket (``DD_DOGSTATSD_URL=unix://``): same datagrams as UDP, every loss counted.

To a unix socket the lines go through datadog's client, but the transport sizes the
datagrams itself and flushes each one explicitly, so that it knows what each flush
carried. These tests hold it to that: the datagrams are byte for byte the ones the
UDP path sends (same boundaries, not only the same lines), the count it reports is
the count that arrived, and to a socket nobody listens on every datagram and every
sample is counted as lost. Real sockets on both sides.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from netauto_statsd.config import Settings
from netauto_statsd.wire.base import SendResult
from netauto_statsd.wire.dogstatsd import DogStatsdTransport
from tests.runtime.core.test_wire_paths import UnixSink, _batch
from tests.runtime.core.wire import UdpSink

CASES = [("netauto", "", 150), ("", "", 150), ("netauto", "0.26", 6)]


@pytest.mark.parametrize(("namespace", "compat", "repeat"), CASES)
def test_the_unix_socket_gets_the_udp_datagrams_byte_for_byte(
    sink: UdpSink, tmp_path: Path, namespace: str, compat: str, repeat: int
) -> None:
    """Same datagram boundaries: the transport's own sizing, not the client's buffer, cuts the datagrams."""
    unix_sink = UnixSink(tmp_path / "dsd.socket")
    base = Settings(namespace=namespace, exporter_compat=compat, max_packet=512)
    udp = DogStatsdTransport(dataclasses.replace(base, host="127.0.0.1", port=sink.port))
    unix = DogStatsdTransport(dataclasses.replace(base, socket_path=f"unix://{unix_sink.path}"))
    try:
        sent_udp, sent_unix = udp.send(_batch(repeat)), unix.send(_batch(repeat))
        by_unix = unix_sink.drain()
        by_udp = sink.drain()
    finally:
        udp.close()
        unix.close()
        unix_sink.sock.close()
    assert isinstance(sent_unix, SendResult)
    assert by_unix == by_udp
    assert sent_unix.datagrams == len(by_unix) == sent_udp.datagrams > 1
    assert (sent_unix + 0, sent_unix.samples_failed) == (0, 0)


@pytest.mark.parametrize(("namespace", "compat", "repeat"), CASES)
def test_every_datagram_to_a_missing_unix_socket_is_counted_with_its_samples(
    sink: UdpSink, tmp_path: Path, namespace: str, compat: str, repeat: int
) -> None:
    """Nobody listens: each datagram fails, and together they carried the whole batch."""
    base = Settings(namespace=namespace, exporter_compat=compat, max_packet=512)
    udp = DogStatsdTransport(dataclasses.replace(base, host="127.0.0.1", port=sink.port))
    missing = DogStatsdTransport(dataclasses.replace(base, socket_path=f"unix://{tmp_path}/no-such.socket"))
    try:
        expected = udp.send(_batch(repeat)).datagrams  # type: ignore[attr-defined]
        result = missing.send(_batch(repeat))
        again = missing.send(_batch(repeat))  # the next flush fails the same way (no stale state)
    finally:
        udp.close()
        missing.close()
    assert isinstance(result, SendResult) and isinstance(again, SendResult)
    samples = len(_batch(repeat))
    assert (result + 0, result.samples_failed, result.datagrams) == (expected, samples, expected)
    assert (again + 0, again.samples_failed, again.datagrams) == (expected, samples, expected)
