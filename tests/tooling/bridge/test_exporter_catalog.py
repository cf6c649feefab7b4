"""Every catalog metric, sent through our emitter over real UDP, as the real statsd_exporter exposes it."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netauto_statsd.catalog import METRICS, Metric
from netauto_statsd.tags import normalise_value
from netauto_statsd.tooling.live_check import sample_tags
from tests.support import Exporter, wait_until

TRANSPORTS = ("dogstatsd", "statsd")
_RUNS = itertools.count()


def _labels(metric: Metric, env: str) -> dict[str, str]:
    labels = {k: normalise_value(v) for k, v in sample_tags(metric).items()}
    return {**labels, "env": env, "service": "netauto"}


COUNTER_TOTAL, GAUGE_VALUE = 3, 7


def _observation(metric: Metric) -> float:
    return 0.25 if metric.unit == "seconds" else 1024.0


@pytest.fixture(scope="module", params=TRANSPORTS)
def landed(request: pytest.FixtureRequest, shared_exporter: Exporter) -> tuple[Exporter, str]:
    """One sample of every catalog metric sent in one transport; returns (exporter, env label)."""
    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter

    transport = request.param
    env = f"every-{transport}"
    emitter = Emitter(
        Settings(host="127.0.0.1", port=shared_exporter.udp_port, strict=True, env=env, transport=transport)
    )
    for metric in METRICS:
        tags = sample_tags(metric)
        if metric.type == "counter":
            emitter.increment(metric.name, 2, tags)
            emitter.increment(metric.name, 1, tags)
        elif metric.type == "gauge":
            emitter.gauge(metric.name, GAUGE_VALUE, tags)
        else:
            emitter.histogram(metric.name, _observation(metric), tags)
    emitter.close()
    last = METRICS[-1]
    shared_exporter.wait_value(last.prometheus_name, COUNTER_TOTAL, env=env)
    return shared_exporter, env


@pytest.mark.parametrize("metric", METRICS, ids=[m.name for m in METRICS])
def test_every_metric_lands_as_declared(metric: Metric, landed: tuple[Exporter, str]) -> None:
    exporter, env = landed
    labels = _labels(metric, env)
    families = exporter.families()
    if metric.type == "counter":
        exporter.wait_value(metric.prometheus_name, COUNTER_TOTAL, **labels)
        assert families[metric.prometheus_name.removesuffix("_total")].type == "counter"
    elif metric.type == "gauge":
        exporter.wait_value(metric.prometheus_name, GAUGE_VALUE, **labels)
        assert families[metric.prometheus_name].type == "gauge"
    else:
        value = _observation(metric)
        base = metric.prometheus_name
        exporter.wait_value(f"{base}_count", 1, **labels)
        assert families[base].type == "histogram"
        assert exporter.value(f"{base}_sum", **labels) == pytest.approx(value)
        buckets = {
            float(lab["le"]): v
            for n, lab, v in exporter.samples(f"{base}_bucket")
            if {k: lab.get(k) for k in labels} == labels
        }
        assert sorted(b for b in buckets if b != float("inf")) == list(metric.buckets)
        for bound, count in buckets.items():
            assert count == (1 if bound >= value else 0), f"bucket le={bound} has {count}"
    # the label set is exactly the catalog's: nothing more (no container_id, version...)
    mine = [(n, lab) for n, lab, _ in exporter.samples(metric.prometheus_name) if lab.get("env") == env]
    assert mine
    for name, lab in mine:
        assert set(lab) - {"le"} == set(metric.label_names()), (name, lab)


def test_250ms_arrives_as_seconds(exporter: Exporter, emitter_for) -> None:
    emitter = emitter_for(exporter)
    tags = {"site": "par1", "protocol": "ssh", "status": "ok"}
    emitter.histogram("runner.duration", 0.250, tags)
    emitter.flush()
    exporter.wait_value("netauto_runner_duration_seconds_count", 1)
    assert exporter.value("netauto_runner_duration_seconds_sum") == pytest.approx(0.25)
    assert exporter.value("netauto_runner_duration_seconds_bucket", le="0.1") == 0
    assert exporter.value("netauto_runner_duration_seconds_bucket", le="0.25") == 1


def test_runner_decorator_duration_is_in_seconds(exporter: Exporter, emitter_for) -> None:
    """A real 250 ms run through the decorator lands in the 0.25-0.5 s bucket, not 1000x off."""
    import time

    from netauto_statsd import runner_lifecycle

    emitter = emitter_for(exporter)

    @runner_lifecycle({"site": "par1", "protocol": "ssh"})
    def run() -> None:
        time.sleep(0.25)  # the work being measured, not a wait for something

    run()
    emitter.flush()
    exporter.wait_value("netauto_runner_duration_seconds_count", 1, status="ok")
    total = exporter.value("netauto_runner_duration_seconds_sum")
    assert 0.25 <= total < 0.5
    assert exporter.value("netauto_runner_duration_seconds_bucket", le="0.25") == 0
    assert exporter.value("netauto_runner_duration_seconds_bucket", le="0.5") == 1


HOSTILE = st.one_of(
    st.text(min_size=0, max_size=200),
    st.text(alphabet=string.punctuation + " \t\r\n\x00\x7f|,#:.@=", max_size=40),
    st.binary(max_size=60),
    st.sampled_from(["le", "a|b", "a,b:c", "#x", "x\ny", "\u00e9\u00e8", "\ud800", "a" * 500, "", " "]),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(HOSTILE, min_size=1, max_size=6))
def test_hostile_tag_values_never_break_the_exporter(values: list[object], exporter: Exporter, emitter_for) -> None:
    """No sample error, no tag error (checked by the fixture), no neighbour corrupted."""
    env = f"h{next(_RUNS)}"
    emitter = emitter_for(exporter, env=env)
    expected: dict[str, float] = {}
    for i, value in enumerate(values):
        emitter.increment("run.created", i + 1, {"site": value, "protocol": "ssh"})
        site = normalise_value(value)
        expected[site] = expected.get(site, 0) + i + 1
        emitter.histogram("runner.bytes", 100, {"site": value, "protocol": "ssh", "status": "ok"})
    emitter.flush()

    def landed() -> dict[str, float]:
        return {lab["site"]: v for n, lab, v in exporter.samples("netauto_runs_created_total") if lab["env"] == env}

    wait_until(lambda: landed() == expected, 10, f"sites {expected}")
    assert landed() == expected
    assert exporter.value("netauto_runner_processed_bytes_count", env=env) == len(values)
    errors = {k: v for k, v in exporter.self_errors().items() if v}
    assert not errors
