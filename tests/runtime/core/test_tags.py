"""Tag safety, property-based: whatever a tag value is, the wire stays well formed.

The end-to-end property sends several contexts with hostile tag values in one
flush to a real loopback UDP socket, parses every line back and compares it with
the contexts we expect from the documented rule (ASCII letters, digits, ``_``,
``-`` and ``/`` kept, anything else ``_``, 64 characters at most, never empty,
bytes decoded as UTF-8 with replacement; enumerated tags outside their set read
``other``). The rule is re-stated here independently rather than imported.
"""

from __future__ import annotations

import string
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netauto_statsd import catalog
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter
from netauto_statsd.tags import MAX_VALUE_LENGTH, CardinalityGuard, is_forbidden_key, normalise_value
from tests.runtime.core.wire import SAFE_VALUE, UdpSink, parse_dogstatsd, split_lines

SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "_-/")
WIRE_HOSTILE = "|,#:.@= \n\r\t\x00\x7f\\'\"{}[]\u00e9\u20ac\u2028\U0001f600"


def expected_value(value: object) -> str:
    """The documented normalisation, written independently of netauto_statsd.tags."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    return "".join(c if c in SAFE_CHARS else "_" for c in text[:64]) or "none"


hostile_text = st.text(alphabet=st.sampled_from(WIRE_HOSTILE) | st.characters(), max_size=80)
tag_values = st.one_of(
    st.text(),
    hostile_text,
    st.binary(max_size=80),  # includes invalid UTF-8
    st.builds(lambda s, n: s * n, hostile_text.filter(bool), st.integers(20, 3000)),  # huge
    st.builds(chr, st.integers(0xD800, 0xDFFF)),  # lone surrogate
    st.sampled_from(["ssh", "netconf", "ok", "error", "par1", "", "other", "none"]),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),  # unhashable
)


# ------------------------------------------------------------ normalise_value
@given(tag_values)
def test_normalised_value_is_always_a_safe_bounded_token(value: object) -> None:
    out = normalise_value(value)
    assert SAFE_VALUE.fullmatch(out), out
    assert out == expected_value(value)
    assert normalise_value(out) == out  # idempotent


@given(st.text(alphabet=sorted(SAFE_CHARS), min_size=1, max_size=MAX_VALUE_LENGTH))
def test_safe_values_pass_unchanged(value: str) -> None:
    assert normalise_value(value) == value


def test_normalise_examples() -> None:
    assert normalise_value("a|b,c#d\n") == "a_b_c_d_"
    assert normalise_value(b"\xff\xfeok") == "__ok"
    assert normalise_value("") == "none"
    assert normalise_value("x" * 1000) == "x" * 64
    assert normalise_value(1.5) == "1_5"


# --------------------------------------------------------------- forbidden keys
def test_forbidden_keys() -> None:
    for key in ("le", "quantile", "job", "instance", "run_id", "device_id", "__name__", "__x", "a"):
        assert is_forbidden_key(key), key
    for key in ("site", "protocol", "status", "device", "os", "az"):  # one character is too short, two are fine
        assert not is_forbidden_key(key), key
    # no catalog metric declares a forbidden key
    assert not [t for m in catalog.METRICS for t in m.tag_keys if is_forbidden_key(t)]


# ----------------------------------------------------------- cardinality guard
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.sampled_from(["ssh", "telnet"]))))
def test_cardinality_guard_caps_distinct_combinations(combos: list[tuple[str, str]]) -> None:
    metric = catalog.Metric(
        "t.x",
        "counter",
        (catalog.Tag("site"), catalog.Tag("protocol", ("ssh", "telnet"))),
        "1",
        "",
        "t_x",
        max_combinations=3,
    )
    guard = CardinalityGuard(metric)
    admitted: set[tuple[str, ...]] = set()
    for combo in combos:
        sent, overflowed = guard.admit(combo)
        if overflowed:
            assert sent == ("other", combo[1])  # free text folded, enumerated value kept
        else:
            assert sent == combo
            admitted.add(combo)
    assert len(admitted) <= 3
    # admitted combinations stay admitted
    assert all(guard.admit(combo) == (combo, False) for combo in admitted)


# ------------------------------------------------------------- end to end, UDP
#: (metric, tag keys) with free-text and enumerated tags, counters and a histogram
SHAPES = [
    ("runner.error", ("site", "protocol", "error")),
    ("run.created", ("site", "protocol")),
    ("run.device", ("device",)),
    ("runner.duration", ("site", "protocol", "status")),
]

samples = st.lists(
    st.tuples(
        st.sampled_from(SHAPES),
        st.tuples(tag_values, tag_values, tag_values),
        st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False) | st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=12,
)


def expected_context(name: str, keys: tuple[str, ...], raw: tuple[Any, ...]) -> tuple[str, tuple[tuple[str, str], ...]]:
    metric = catalog.BY_NAME[name]
    pairs = []
    for spec, value in zip(metric.tags, raw, strict=False):
        text = expected_value(value)
        if spec.values is not None and text not in spec.values:
            text = "other"
        pairs.append((spec.key, text))
    pairs += [("env", "dev"), ("service", "netauto")]
    return f"netauto.{name}", tuple(pairs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, st.sampled_from([512, 1432]))
def test_hostile_tag_values_never_corrupt_any_line(batch: list[Any], max_packet: int) -> None:
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
    sink = UdpSink()
    # production mode: a value outside an allowed set is sent as 'other' (strict mode raises for it)
    production = Settings(host="127.0.0.1", port=sink.port, strict=False, flush_interval=60, max_packet=max_packet)
    emitter = Emitter(production)
    try:
        for (name, keys), raw, value in batch:
            tags = dict(zip(keys, raw, strict=False))
            context = expected_context(name, keys, raw)
            if catalog.BY_NAME[name].type == "histogram":
                emitter.histogram(name, value, tags=tags)
                histograms[context].append(float(value))
            else:
                emitter.increment(name, value, tags=tags)
                counters[context] += value
        emitter.flush()
        datagrams = sink.drain()
    finally:
        emitter.close()
        sink.close()

    assert emitter.stats()["rejected"] == emitter.stats()["internal_errors"] == 0
    assert all(len(d) <= max_packet for d in datagrams)
    got_counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    got_histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
    for text in split_lines(datagrams):
        line = parse_dogstatsd(text)  # fails on any malformed line
        if line.name.startswith("netauto.client."):
            continue  # values outside an allowed set are counted there
        key = (line.name, line.tags)
        if line.type == "c":
            assert key not in got_counters, f"counter context sent twice: {text!r}"
            (got_counters[key],) = line.values
        else:
            assert line.type == "h", text
            got_histograms[key].extend(line.values)
    assert got_counters == counters
    assert got_histograms == histograms


def test_equal_values_of_different_types_are_different_contexts() -> None:
    """1, True and 1.0 are equal dict keys but different tag values: no cache may conflate them."""
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, strict=True, flush_interval=60))
    try:
        for value in (1, True, 1.0, "1", b"1", 1, True):
            emitter.increment("run.device", tags={"device": value})
        emitter.flush()
        lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    finally:
        emitter.close()
        sink.close()
    assert {line.tag_dict["device"]: line.values[0] for line in lines} == {"1": 4, "True": 2, "1_0": 1}
