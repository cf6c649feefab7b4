"""Property: whatever the app passes to the public emit API, production mode never raises and never
puts a line on the wire that a strict DogStatsD grammar rejects; strict mode raises a short error.

Arbitrary names, values and tags (any Python objects, including ones whose ``str``,
``repr``, ``hash`` or ``==`` raise) go through every entry point: the string layer
(``increment``, ``histogram``, ``histogram_many``, ``gauge``, ``gauge_add``) and the
metric objects (``inc``, ``observe``, ``set``, ``add``, ``bind``). Datagrams are read
from a real loopback UDP socket and parsed by :func:`tests.runtime.core.wire.parse_dogstatsd`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netauto_statsd import catalog
from netauto_statsd.catalog import CatalogError
from netauto_statsd.config import ConfigError, Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.tags import is_forbidden_key
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

MESSAGE_LIMIT = 300


class Hostile:
    """Everything about it raises: str, hash, equality, float conversion (repr works: hypothesis prints it)."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "Hostile()"

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __float__(self) -> float:
        raise RuntimeError("no float")


anything = st.deferred(
    lambda: st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**320),
        st.floats(),
        st.decimals(allow_nan=True),
        st.text(max_size=40),
        st.text(alphabet="|:#,@\n\r \x00=.", max_size=10),
        st.builds(lambda s: s * 50_000, st.text(min_size=1, max_size=3)),  # huge
        st.binary(max_size=20),
        st.builds(Hostile),
        st.lists(st.floats() | st.integers() | st.text(max_size=5), max_size=4),
    )
)
names = st.one_of(st.sampled_from([m.name for m in catalog.METRICS]), anything)
tag_keys = st.one_of(
    st.sampled_from(sorted({k for m in catalog.METRICS for k in m.tag_keys} | {"le", "__name__", "job", ""})),
    st.text(max_size=10),
)
good_values = st.sampled_from(["par1", "ssh", "ok", "GET", "2xx", "select", "default", "/v", "queued", "sent"])
tag_maps = st.dictionaries(tag_keys, good_values | anything, max_size=4)
odd_keys = st.one_of(st.integers(), st.none(), st.floats(), st.binary(max_size=5), st.text(max_size=5))
tags = st.one_of(st.none(), tag_maps, st.dictionaries(odd_keys, anything, max_size=2), anything)
values = st.one_of(st.integers(0, 1000), st.floats(0, 1e6), anything)
STRING_CALLS = ["increment", "histogram", "histogram_many", "gauge", "gauge_add"]
OBJECT_CALLS = ["inc", "observe", "set", "add", "bind"]
calls = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(STRING_CALLS), names, values, tags),
        st.tuples(
            st.sampled_from(OBJECT_CALLS), st.sampled_from(list(catalog.METRICS)), values, tag_maps.map(
                lambda d: {k: v for k, v in d.items() if isinstance(k, str)})),
    ),
    min_size=1,
    max_size=6,
)  # fmt: skip


def call(emitter: Emitter, how: str, target: Any, value: Any, given_tags: Any) -> None:
    if how in STRING_CALLS:
        getattr(emitter, how)(target, value, tags=given_tags)
        return
    if how == "bind":
        bound = target.bind(**given_tags)
        method = {"counter": "inc", "histogram": "observe", "gauge": "set"}[target.type]
        getattr(bound, method)(value)
        return
    method = getattr(target, how, None)
    if method is not None:  # inc on a histogram does not exist: a typo is an AttributeError, not our concern
        method(value, **given_tags)


def assert_strict_grammar(datagrams: list[bytes]) -> None:
    for text in split_lines(datagrams):
        line = parse_dogstatsd(text)  # name, finite values, type, rate, tag syntax and safe values
        metric = catalog.BY_NAME[line.name.removeprefix("netauto.")]
        allowed = set(metric.label_names())
        for key, _value in line.tags:
            assert key in allowed and not is_forbidden_key(key), text
        assert all(math.isfinite(v) for v in line.values)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(calls)
def test_production_mode_never_raises_and_never_sends_a_bad_line(batch: list[tuple[Any, ...]]) -> None:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, strict=False, flush_interval=60))
    previous = set_emitter(emitter)
    try:
        for how, target, value, given_tags in batch:
            call(emitter, how, target, value, given_tags)
        emitter.flush()
        datagrams = sink.drain()
    finally:
        set_emitter(previous)
        emitter.close()
        sink.close()
    assert_strict_grammar(datagrams)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(calls)
def test_strict_mode_raises_short_catalog_errors(batch: list[tuple[Any, ...]]) -> None:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, strict=True, flush_interval=60))
    previous = set_emitter(emitter)
    try:
        for how, target, value, given_tags in batch:
            try:
                call(emitter, how, target, value, given_tags)
            except (CatalogError, ConfigError) as exc:
                assert len(str(exc)) < MESSAGE_LIMIT, str(exc)[:500]
        emitter.flush()
        datagrams = sink.drain()
    finally:
        set_emitter(previous)
        emitter.close()
        sink.close()
    assert_strict_grammar(datagrams)


@pytest.mark.parametrize("value", [Decimal("1.5"), float("nan"), "1\nnetauto.x:1|c", Hostile(), [1.0], 10**400])
def test_strict_mode_names_the_bad_value_in_a_short_message(value: object) -> None:
    emitter = Emitter(Settings(strict=True, disabled=True))
    with pytest.raises(CatalogError, match="finite int or float") as raised:
        emitter.histogram("runner.duration", value, tags={"site": "s", "protocol": "ssh", "status": "ok"})  # type: ignore[arg-type]
    assert len(str(raised.value)) < MESSAGE_LIMIT
