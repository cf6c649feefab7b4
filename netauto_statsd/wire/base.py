"""The wire format's base: what one flush hands a transport, and how names and numbers are encoded.

Transports (:mod:`netauto_statsd.wire.dogstatsd`, :mod:`netauto_statsd.wire.plain`) are
leaves: they import this module, never each other. Tooling imports the naming
helpers from here (``plain_pattern``, ``segment_keys``) to render and check the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from netauto_statsd.catalog import CONSTANT_TAG_KEYS, PROCESS_TAG_KEY, Metric, wire_name

#: One aggregation context: the metric, then (key, value) tag pairs in catalog order.
Context = tuple[Metric, tuple[tuple[str, str], ...]]


@dataclass
class Batch:
    """What one flush sends.

    ``sampled`` holds histogram contexts that got more observations than one flush
    carries: groups of ``(rate, values)`` where each value stands for
    ``int(1 / rate)`` observations (rates are exact ``1/n``; statsd_exporter
    repeats each value that many times). A transport sends them with
    ``|@rate``; one that cannot must repeat each value ``int(1 / rate)`` times.
    """

    counters: dict[Context, float] = field(default_factory=dict)
    gauges: dict[Context, float] = field(default_factory=dict)
    histograms: dict[Context, list[float]] = field(default_factory=dict)
    sampled: dict[Context, list[tuple[float, list[float]]]] = field(default_factory=dict)

    def __len__(self) -> int:
        sampled = sum(len(values) for groups in self.sampled.values() for _, values in groups)
        return len(self.counters) + len(self.gauges) + sum(len(v) for v in self.histograms.values()) + sampled


class SendResult(int):
    """What :meth:`Transport.send` returns: the packets that could not be sent (the ``int``).

    An ``int``, so ``failed = transport.send(batch)`` keeps working; transports that
    know more also say how many samples those packets carried (``samples_failed``)
    and how many datagrams they sent in all (``datagrams``).

    >>> r = SendResult(2, samples_failed=7, datagrams=5)
    >>> (r + 0, r.samples_failed, r.datagrams)
    (2, 7, 5)
    """

    samples_failed: int
    datagrams: int

    def __new__(cls, packets_failed: int = 0, samples_failed: int = 0, datagrams: int = 0) -> SendResult:
        result = super().__new__(cls, packets_failed)
        result.samples_failed = samples_failed
        result.datagrams = datagrams
        return result


def samples_failed(result: int, batch: Batch) -> int:
    """Samples lost in a send that returned ``result``: exact from a :class:`SendResult`; otherwise
    (a plain ``int`` from a third-party transport) the whole batch if any packet failed."""
    if isinstance(result, SendResult):
        return result.samples_failed
    return len(batch) if result else 0


class Transport(Protocol):
    """Sends batches. Must never raise and never block."""

    def send(self, batch: Batch) -> int:
        """Send ``batch``; return the number of packets that could not be sent (may be a :class:`SendResult`)."""

    def close(self) -> None:
        """Release the socket (safe to call twice)."""


class NullTransport:
    """Sends nothing (``DD_DOGSTATSD_DISABLE``, the test recorder)."""

    def send(self, batch: Batch) -> int:
        """Discard ``batch``."""
        return 0

    def close(self) -> None:
        """Nothing to release."""


class UnusableTransport:
    """Stands in when the configuration cannot be used: sends nothing, counts everything as failed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, batch: Batch) -> int:
        """Count ``batch`` as lost (one failed packet, all its samples)."""
        size = len(batch)
        return SendResult(1 if size else 0, size)

    def close(self) -> None:
        """Nothing to release."""


def format_number(value: float) -> str:
    """Shortest exact text for ``value``; integers without a decimal point (``repr`` writes ``1e+16``
    and above with an exponent, so up to there an integral float loses its ``.0``)."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


def pack_values(values: list[float], room: int) -> list[str]:
    """Join histogram values with ``:`` into chunks of at most ``room`` characters.

    Every value of every sample passes here at each flush, so the text is built by
    ``repr`` and ``str.join`` in C, then integral floats lose their ``.0`` (``3.0`` ->
    ``3``): the same exact numbers as :func:`format_number`. A single value longer
    than ``room`` (never with our sizes) travels alone.

    >>> pack_values([0.5, 3.0, 12, 1e-07], 9)
    ['0.5:3:12', '1e-07']
    """
    text = (":".join(map(repr, values)) + ":").replace(".0:", ":")
    chunks: list[str] = []
    start, end = 0, len(text) - 1  # text[end] is the trailing ':'
    while end - start > room:
        cut = text.rfind(":", start, start + room + 1)
        if cut < start:
            cut = text.find(":", start)
        chunks.append(text[start:cut])
        start = cut + 1
    if start < end:
        chunks.append(text[start:end])
    return chunks


def segment_keys(metric: Metric) -> tuple[str, ...]:
    """Tag keys in the order they appear as name segments."""
    extra = (PROCESS_TAG_KEY,) if metric.per_process else ()
    return metric.tag_keys + extra + CONSTANT_TAG_KEYS


def plain_pattern(metric: Metric, namespace: str = "netauto") -> str:
    """The plain-format name pattern, e.g. ``netauto.run.created.<site>.<protocol>.<env>.<service>``."""
    return ".".join([wire_name(metric, namespace), *(f"<{k}>" for k in segment_keys(metric))])


def plain_name(metric: Metric, pairs: tuple[tuple[str, str], ...], constant: tuple[str, ...]) -> str:
    """The plain-format name for one context (without namespace; pystatsd adds the prefix)."""
    return ".".join([metric.name, *(v for _, v in pairs), *constant])


def tag_list(pairs: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"{k}:{v}" for k, v in pairs]


#: Characters a DogStatsD client replaces with ``_`` in a tag (datadog's ``normalize_tags``);
#: our tags never contain them, but the text must match the client's in every case.
_TAG_UNSAFE = re.compile(r"[^\w\d_\-:/\.]", re.UNICODE)


class DogStatsdLines:
    """Serialises a :class:`Batch` into DogStatsD lines, byte for byte what datadog's client writes.

    A line is ``<namespace>.<name>:<value(s)>|<c|g|h>[|@<rate>]|#<tags>,<constant tags>``
    (the metric's tags first, then the constant ones, as the client's ``_serialize_metric``
    appends them). The ``|#...`` text of a context is built once and kept (contexts
    repeat from flush to flush; the cache is emptied past :attr:`MAX_CACHED`).
    """

    MAX_CACHED = 65_536

    def __init__(self, namespace: str, constant_tags: list[str], max_packet: int, multi_value: bool) -> None:
        self.prefix = f"{namespace}." if namespace else ""
        self.constant = ",".join(_TAG_UNSAFE.sub("_", t) for t in constant_tags)
        self.max_packet = max_packet
        self.multi_value = multi_value
        # What a histogram line adds to its values and tags (sizes its chunks, as the unix-socket
        # path does, so the lines are the same): prefix, constant tags and the 6 bytes of ":",
        # "|h", "|#" and the datagram's "\n" (each tag adds its length and a ","): a full chunk
        # fills its datagram to the byte.
        self.overhead = len(self.prefix) + len(",".join(constant_tags)) + 6
        self._tags: dict[tuple[tuple[str, str], ...], str] = {}

    def tags(self, pairs: tuple[tuple[str, str], ...]) -> str:
        """The ``|#...`` suffix of a context (empty with no tags at all)."""
        text = self._tags.get(pairs)
        if text is None:
            own = ",".join(_TAG_UNSAFE.sub("_", f"{k}:{v}") for k, v in pairs)
            both = f"{own},{self.constant}" if own and self.constant else own or self.constant
            text = f"|#{both}" if both else ""
            if len(self._tags) >= self.MAX_CACHED:
                self._tags.clear()
            self._tags[pairs] = text
        return text

    def lines(self, batch: Batch) -> Iterator[tuple[str, int]]:
        """Yield ``(line, samples it carries)`` for every line of ``batch``, in the client's order."""
        prefix, tags = self.prefix, self.tags
        for (metric, pairs), value in batch.counters.items():
            yield f"{prefix}{metric.name}:{format_number(value)}|c{tags(pairs)}", 1
        for (metric, pairs), value in batch.gauges.items():
            suffix = tags(pairs)
            if value < 0:  # a leading '-' is a relative change: set 0 first, then move down
                yield f"{prefix}{metric.name}:0|g{suffix}", 0
            yield f"{prefix}{metric.name}:{format_number(value)}|g{suffix}", 1
        for (metric, pairs), values in batch.histograms.items():
            yield from self._histogram(metric.name, pairs, values, "|h")
        for (metric, pairs), groups in batch.sampled.items():
            for rate, values in groups:
                yield from self._histogram(metric.name, pairs, values, f"|h|@{rate}")

    def _histogram(
        self, name: str, pairs: tuple[tuple[str, str], ...], values: list[float], kind: str
    ) -> Iterator[tuple[str, int]]:
        head, tail = f"{self.prefix}{name}:", kind + self.tags(pairs)
        if not self.multi_value:  # exporters older than v0.27.1 reject multi-value lines
            for value in values:
                yield f"{head}{format_number(value)}{tail}", 1
            return
        room = self.max_packet - self.overhead - len(name) - sum(len(k) + len(v) + 2 for k, v in pairs)
        room -= len(kind) - 2  # the "|@rate" of a sampled group
        for chunk in pack_values(values, max(32, room)):
            yield f"{head}{chunk}{tail}", chunk.count(":") + 1
