"""The wire format's base: what one flush hands a transport, and how names and numbers are encoded.

Transports (:mod:`netauto_statsd.wire.dogstatsd`, :mod:`netauto_statsd.wire.plain`) are
leaves: they import this module, never each other. Tooling imports the naming
helpers from here (``plain_pattern``, ``segment_keys``) to render and check the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Protocol

from netauto_statsd.catalog import CONSTANT_TAG_KEYS, PROCESS_TAG_KEY, Metric, wire_name
from netauto_statsd.wire.texts import texts_of

#: One aggregation context: the metric, then (key, value) tag pairs in catalog order.
Context = tuple[Metric, tuple[tuple[str, str], ...]]


#: Counters of a batch in bulk form: context ids (ascending, then any added), their values, and the
#: table the ids index (the emitter's contexts: append-only, so an id names one context for good).
CounterRows = tuple[list[int], list[float], Sequence[Context]]


class Batch:
    """What one flush sends.

    ``sampled`` holds histogram contexts that got more observations than one flush
    carries: groups of ``(rate, values)`` where each value stands for
    ``int(1 / rate)`` observations (rates are exact ``1/n``; statsd_exporter
    repeats each value that many times). A transport sends them with
    ``|@rate``; one that cannot must repeat each value ``int(1 / rate)`` times.

    The emitter hands its counters over as :attr:`counter_rows` (a flush may carry
    10,000, and a dict keyed by context costs a hash of each); :attr:`counters`
    builds that dict on first use, so any transport can read (and change) it.

    >>> from netauto_statsd.catalog import BY_NAME
    >>> batch = Batch()
    >>> batch.set_counter_rows([1], [2], [(BY_NAME["run.created"], ()), (BY_NAME["runner.start"], ())])
    >>> (len(batch), [(m.name, v) for (m, _), v in batch.counters.items()], batch.counter_rows)
    (1, [('runner.start', 2)], None)
    """

    def __init__(
        self,
        counters: dict[Context, float] | None = None,
        gauges: dict[Context, float] | None = None,
        histograms: dict[Context, list[float]] | None = None,
        sampled: dict[Context, list[tuple[float, list[float]]]] | None = None,
    ) -> None:
        self._counters: dict[Context, float] = {} if counters is None else counters
        self._rows: CounterRows | None = None
        self.gauges: dict[Context, float] = {} if gauges is None else gauges
        self.histograms: dict[Context, list[float]] = {} if histograms is None else histograms
        self.sampled: dict[Context, list[tuple[float, list[float]]]] = {} if sampled is None else sampled

    @property
    def counters(self) -> dict[Context, float]:
        """Counter values by context (built from :attr:`counter_rows` on first use)."""
        rows = self._rows
        if rows is not None:
            ids, values, table = rows
            self._counters = dict(zip(map(table.__getitem__, ids), values, strict=True))
            self._rows = None
        return self._counters

    @counters.setter
    def counters(self, counters: dict[Context, float]) -> None:
        self._counters, self._rows = counters, None

    @property
    def counter_rows(self) -> CounterRows | None:
        """The counters in bulk form while nobody has asked for :attr:`counters`, else ``None``."""
        return self._rows

    def set_counter_rows(self, ids: list[int], values: list[float], table: Sequence[Context]) -> None:
        """Replace the counters with ``table[ids[i]]: values[i]`` (no context is hashed until :attr:`counters`)."""
        self._counters, self._rows = {}, (ids, values, table)

    def __len__(self) -> int:
        sampled = sum(len(values) for groups in self.sampled.values() for _, values in groups)
        counters = len(self._rows[0]) if self._rows is not None else len(self._counters)
        return counters + len(self.gauges) + sum(len(v) for v in self.histograms.values()) + sampled

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        mine = (self.counters, self.gauges, self.histograms, self.sampled)
        return mine == (other.counters, other.gauges, other.histograms, other.sampled)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"Batch(counters={self.counters!r}, gauges={self.gauges!r}, "
            f"histograms={self.histograms!r}, sampled={self.sampled!r})"
        )


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

    Every value of every sample passes here at each flush, so the text is built in
    C (``str.join`` over :func:`~netauto_statsd.wire.texts.texts_of`, ``repr``'s texts), then
    integral floats lose their ``.0`` (``3.0`` -> ``3``): the same exact numbers as
    :func:`format_number`. A single value longer than ``room`` (never with our
    sizes) travels alone.

    >>> pack_values([0.5, 3.0, 12, 1e-07], 9)
    ['0.5:3:12', '1e-07']
    """
    text = (":".join(texts_of(values)) + ":").replace(".0:", ":")
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
        #: a counter line's %-template per context, keyed by ``id(context)``: the context itself is kept
        #: alive in ``_kept`` as long as its entry, so no other object can have that id meanwhile
        self._counter_templates: dict[int, str] = {}
        self._kept: list[Context] = []
        #: a counter line's %-template per context id of the emitter's table (``Batch.counter_rows``)
        self._table: Sequence[Context] = ()
        self._by_id: list[str | None] = []

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

    def counter_text(self, batch: Batch) -> str:
        """Every counter line of ``batch``, each followed by a newline: :meth:`lines`' first lines, in bulk.

        A flush may carry 10,000 counters, so the per-line work is done in C: each context's
        line is a cached ``%``-template (``netauto.x:%s|c|#k:v,...``), and one ``%`` fills them all.

        >>> from netauto_statsd.catalog import BY_NAME
        >>> lines = DogStatsdLines("netauto", ["env:dev"], 1432, True)
        >>> lines.counter_text(Batch({(BY_NAME["run.created"], (("site", "a%b"), ("protocol", "ssh"))): 3.0}))
        'netauto.run.created:3|c|#site:a_b,protocol:ssh,env:dev\\n'
        """
        rows = batch.counter_rows
        if rows is not None:
            ids, values, table = rows
            if not ids:
                return ""
            templates = self._templates_by_id(ids, table)
        else:
            counters = batch.counters
            if not counters:
                return ""
            templates = self._templates_of(counters)
            values = list(counters.values())
        if float in set(map(type, values)):  # "%s" would write 3.0 for 3: the exact, shortest text instead
            values = list(map(format_number, values))  # type: ignore[arg-type]
        return ("\n".join(templates) + "\n") % tuple(values)

    def _templates_by_id(self, ids: list[int], table: Sequence[Context]) -> list[str]:
        """Templates of ``table[i]`` for each ``i`` in ``ids``, cached per id (the emitter's table only grows)."""
        if self._table is not table:  # kept alive by the reference: its identity cannot be reused meanwhile
            self._table, self._by_id = table, []
        cache = self._by_id
        if len(cache) < len(table):
            cache.extend([None] * (len(table) - len(cache)))
        found = list(map(cache.__getitem__, ids))
        if None in found:
            for index, cid in enumerate(ids):
                if found[index] is None:
                    found[index] = cache[cid] = self._counter_template(table[cid])
        return found  # type: ignore[return-value]

    def _templates_of(self, counters: dict[Context, float]) -> list[str]:
        """Templates of the contexts of ``counters`` (a batch built by hand), cached per context object."""
        templates = list(map(self._counter_templates.get, map(id, counters)))
        if None in templates:
            for index, context in enumerate(counters):
                if templates[index] is None:
                    templates[index] = template = self._counter_template(context)
                    if len(self._kept) >= self.MAX_CACHED:
                        self._counter_templates.clear()
                        self._kept.clear()
                    self._counter_templates[id(context)] = template
                    self._kept.append(context)
        return templates  # type: ignore[return-value]

    def _counter_template(self, context: Context) -> str:
        metric, pairs = context
        head = f"{self.prefix}{metric.name}:".replace("%", "%%")
        return f"{head}%s" + f"|c{self.tags(pairs)}".replace("%", "%%")

    def lines(self, batch: Batch, counters: bool = True) -> Iterator[tuple[str, int]]:
        """Yield ``(line, samples it carries)`` for every line of ``batch``, in the client's order.

        ``counters=False`` leaves the counter lines out (:meth:`counter_text` writes them in bulk).
        """
        prefix, tags = self.prefix, self.tags
        if counters:
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
