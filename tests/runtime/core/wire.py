"""A real UDP socket on loopback that collects datagrams, and parsers for what arrives.

Every wire test reads what the emitter really sent: no mock socket, no patched
send. ``UdpSink.drain`` proves a negative without sleeping: it sends a
sentinel datagram and collects until the sentinel arrives. The emitter's flush is
synchronous and loopback delivery happens inside ``send``, so anything a flush
sent is queued before the sentinel.
"""

from __future__ import annotations

import math
import re
import select
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netauto_statsd.emitter import Emitter, set_emitter

#: Allowed characters of a tag value on the wire (see netauto_statsd.tags).
SAFE_VALUE = re.compile(r"[A-Za-z0-9_\-/]{1,64}")

#: One DogStatsD line as we send it: a sample rate only on histograms, no timestamp, and none
#: of the ``|c:`` / ``|e:`` / ``|card:`` fields that make statsd_exporter drop or relabel.
DOGSTATSD_LINE = re.compile(
    r"(?P<name>[A-Za-z0-9_.]+):(?P<values>-?[0-9.e+-]+(?::-?[0-9.e+-]+)*)\|(?P<type>c|g|h)"
    r"(?:\|@(?P<rate>0\.[0-9]+(?:e-[0-9]+)?|[0-9]\.[0-9]+e-[0-9]+))?\|#(?P<tags>[^|#\s]+)"
)
#: One plain StatsD line: dotted name, one value, no tags.
PLAIN_LINE = re.compile(r"(?P<name>[A-Za-z0-9_.\-/]+):(?P<value>-?[0-9.]+)\|(?P<type>c|g|ms)")


@dataclass(frozen=True)
class Line:
    """A parsed DogStatsD line."""

    name: str
    type: str
    values: tuple[float, ...]
    tags: tuple[tuple[str, str], ...]
    rate: float = 1.0

    @property
    def repeat(self) -> int:
        """How many observations each value stands for at statsd_exporter (``int(1 / rate)``)."""
        return int(1 / self.rate)

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


def parse_dogstatsd(text: str) -> Line:
    """Parse one line, failing the test if it is not exactly our well-formed shape."""
    match = DOGSTATSD_LINE.fullmatch(text)
    assert match, f"malformed DogStatsD line: {text!r}"
    tags = []
    for item in match["tags"].split(","):
        key, sep, value = item.partition(":")
        assert sep and key and SAFE_VALUE.fullmatch(value), f"malformed tag {item!r} in {text!r}"
        tags.append((key, value))
    assert len({k for k, _ in tags}) == len(tags), f"duplicate tag key in {text!r}"
    rate = float(match["rate"]) if match["rate"] else 1.0
    assert rate == 1.0 or (match["type"] == "h" and 0 < rate < 1), f"bad sample rate in {text!r}"
    values = tuple(float(v) for v in match["values"].split(":"))
    assert all(math.isfinite(v) for v in values), f"non-finite value in {text!r}"
    return Line(match["name"], match["type"], values, tuple(tags), rate)


def split_lines(datagrams: list[bytes]) -> list[str]:
    """Every line of every datagram (DogStatsD datagrams end with a newline; plain ones do not)."""
    lines: list[str] = []
    for datagram in datagrams:
        text = datagram.decode("ascii")  # anything else is already a failure
        lines.extend(line for line in text.split("\n") if line)
    return lines


class UdpSink:
    """A UDP socket bound on 127.0.0.1 with a large receive buffer; collects what arrives."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", port))
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []

    def _read_ready(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        while ready:
            self.datagrams.append(self.sock.recv(65535))
            ready, _, _ = select.select([self.sock], [], [], 0)

    def wait_for(self, done: Callable[[list[bytes]], bool], timeout: float = 5.0, what: str = "datagrams") -> None:
        """Collect until ``done(self.datagrams)`` or fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.datagrams):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; got {self.datagrams[-5:]!r}")
            self._read_ready(min(remaining, 0.05))

    def wait_lines(self, count: int, timeout: float = 5.0) -> list[str]:
        """Collect until at least ``count`` lines arrived; return every line so far."""
        self.wait_for(lambda d: len(split_lines(d)) >= count, timeout, f"{count} lines")
        return split_lines(self.datagrams)

    def drain(self) -> list[bytes]:
        """Return (and forget) every datagram that arrived before a sentinel sent now."""
        marker = f"#sentinel-{uuid.uuid4().hex}".encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(marker, ("127.0.0.1", self.port))
        self.wait_for(lambda d: marker in d, what="the sentinel")
        index = self.datagrams.index(marker)
        before, self.datagrams = self.datagrams[:index], self.datagrams[index + 1 :]
        return before

    def close(self) -> None:
        self.sock.close()


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installed(sink: UdpSink, make_emitter: Callable[..., Emitter], **overrides: Any) -> Emitter:
    """An emitter sending to ``sink``, made the process-wide one (what bound metric objects use)."""
    emitter = make_emitter(sink.port, **overrides)
    set_emitter(emitter)
    return emitter


def flushed(emitter: Emitter, sink: UdpSink) -> list[Line]:
    """Flush ``emitter`` and parse every DogStatsD line ``sink`` received."""
    emitter.flush()
    return [parse_dogstatsd(text) for text in split_lines(sink.drain())]


def values_of(lines: list[Line], name: str, **tags: str) -> list[float]:
    """Every value of ``name`` with these tags, each repeated as the exporter expands it."""
    return [
        value
        for line in lines
        if line.name == f"netauto.{name}" and tags.items() <= line.tag_dict.items()
        for value in line.values * line.repeat
    ]
