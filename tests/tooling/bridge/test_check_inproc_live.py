"""The live proof's comparison in-process: each way the exporter's view can differ from what was sent.

`compare` reads metric families as prometheus_client parses the exporter's
``/metrics``; the texts below are what statsd_exporter would expose for a
mapping that gets the series wrong. The end-to-end cases (a real exporter, the
old v0.26 exporter rejecting packed lines) run `run_check` itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd.catalog import all_metrics
from netauto_statsd.tooling.check import CheckOptions, run_check
from netauto_statsd.tooling.exporter import parse_families
from netauto_statsd.tooling.findings import EXIT_FAILED, EXIT_OK
from netauto_statsd.tooling.live_check import (
    HISTOGRAM_BYTES,
    HISTOGRAM_SECONDS,
    Expected,
    _settings_env,
    _wire_fix,
    arrived,
    compare,
    observations,
    sample_tags,
    send_traffic,
)
from tests.support import MAPPING, ROOT
from tests.tooling.bridge.appmetrics import HITS, LATENCY, LEVEL, SESSIONS, SIZE
from tests.versions import EXPORTERS

ENV = "check-dogstatsd"
N = len(all_metrics())
LABELS = f'env="{ENV}",service="netauto",view="x"'


def families(text: str) -> dict[str, object]:
    return parse_families(text)


def counter(value: float = 6, labels: str = LABELS, kind: str = "counter") -> str:
    return f"# TYPE app_hits_total {kind}\napp_hits_total{{{labels}}} {value}\n"


def histogram(count: float, total: float, labels: str = LABELS, kind: str = "histogram") -> str:
    if kind == "summary":
        lines = [f'app_latency_seconds{{{labels},quantile="0.5"}} 0.1']
    else:
        lines = [f'app_latency_seconds_bucket{{{labels},le="+Inf"}} {count}']
    lines += [f"app_latency_seconds_sum{{{labels}}} {total}", f"app_latency_seconds_count{{{labels}}} {count}"]
    return f"# TYPE app_latency_seconds {kind}\n" + "\n".join(lines) + "\n"


# ------------------------------------------------------------------ what is sent
def test_the_tags_and_values_sent() -> None:
    assert sample_tags(HITS) == {"view": "x"}
    assert observations(LATENCY) == HISTOGRAM_SECONDS and observations(SIZE) == HISTOGRAM_BYTES


# ------------------------------------------------------------------ compare
def test_what_was_sent_arrived() -> None:
    assert compare(Expected(HITS, value=6), families(counter()), ENV) == []
    assert compare(Expected(LEVEL, value=7), families(f"# TYPE app_level gauge\napp_level{{{LABELS}}} 7\n"), ENV) == []
    assert compare(Expected(LATENCY, count=5, total=1.995), families(histogram(5, 1.9950002)), ENV) == []


def test_a_series_that_did_not_arrive_or_arrived_for_another_env() -> None:
    assert compare(Expected(HITS, value=6), {}, ENV) == ["`app.hits` did not produce `app_hits_total`"]
    other = counter(labels=LABELS.replace(ENV, "check-statsd"))
    assert compare(Expected(HITS, value=6), families(other), ENV) == ["`app.hits` did not produce `app_hits_total`"]


def test_a_series_of_another_type() -> None:
    gauge_named_like_the_counter = "# TYPE app_hits gauge\napp_hits{" + LABELS + "} 6\n"
    assert compare(Expected(HITS, value=6), families(gauge_named_like_the_counter), ENV) == [
        "`app_hits_total` is a gauge, the catalog declares a counter"
    ]
    as_counter = families(counter().replace("app_hits", "app_latency_seconds"))
    assert compare(Expected(LATENCY, count=5, total=1.0), as_counter, ENV) == [
        "`app_latency_seconds` is a counter, the catalog declares a histogram"
    ]


def test_a_summary_stands_for_a_histogram_but_not_for_a_counter() -> None:
    assert compare(Expected(LATENCY, count=5, total=1.0), families(histogram(5, 1.0, kind="summary")), ENV) == []
    assert compare(Expected(LATENCY, count=4, total=1.0), families(histogram(5, 1.0, kind="summary")), ENV) == [
        "`app_latency_seconds` counted 5 observation(s) summing to 1; sent 4 summing to 1"
    ]


def test_labels_other_than_declared_are_reported_once() -> None:
    extra = LABELS + ',zone="a"'
    text = counter(labels=extra) + f"app_hits_total{{{extra.replace('x', 'y')}}} 1\n"
    assert compare(Expected(HITS, value=6), families(text), ENV) == [
        "`app_hits_total` has labels ['env', 'service', 'view', 'zone'], "
        "the catalog declares ['env', 'service', 'view']"
    ]


def test_the_context_sent_must_arrive_with_its_label_values() -> None:
    text = counter(labels=LABELS.replace('view="x"', 'view="y"'))
    assert compare(Expected(HITS, value=6), families(text), ENV) == [
        "`app_hits_total` arrived with label values {'view': 'y'}, sent {'view': 'x'}"
    ]


def test_other_contexts_of_the_env_are_left_out_of_the_sums() -> None:
    text = counter(6) + f"app_hits_total{{{LABELS.replace('x', 'other')}}} 100\n"
    assert compare(Expected(HITS, value=6), families(text), ENV) == []
    assert compare(Expected(HITS, value=7), families(text), ENV) == ["`app_hits_total` reads 6, sent 7"]


def test_a_per_process_gauge_without_its_process_label_value() -> None:
    labels = LABELS + ',process="h-1"'
    sessions = "# TYPE app_sessions gauge\napp_sessions{" + labels + "} 7\n"
    assert compare(Expected(SESSIONS, value=7), families(sessions), ENV) == []
    empty = sessions.replace('process="h-1"', 'process=""')
    assert compare(Expected(SESSIONS, value=7), families(empty), ENV) == [
        "`app_sessions` arrived without its `process` label"
    ]


def test_histogram_counts_and_sums_must_match() -> None:
    want = Expected(LATENCY, count=5, total=1.995)
    assert compare(want, families(histogram(4, 1.995)), ENV) == [
        "`app_latency_seconds` counted 4 observation(s) summing to 1.995; sent 5 summing to 1.995"
    ]
    assert compare(want, families(histogram(5, 1995)), ENV) == [
        "`app_latency_seconds` counted 5 observation(s) summing to 1995; sent 5 summing to 1.995"
    ]
    assert compare(want, families(histogram(5, 1.996)), ENV) != []  # relative tolerance 1e-6, not 1e-3


def test_counter_and_gauge_values_must_match() -> None:
    assert compare(Expected(HITS, value=6), families(counter(12)), ENV) == ["`app_hits_total` reads 12, sent 6"]
    level = f"# TYPE app_level gauge\napp_level{{{LABELS}}} 7.5\n"
    assert compare(Expected(LEVEL, value=7), families(level), ENV) == ["`app_level` reads 7.5, sent 7"]


# ------------------------------------------------------------------ arrived
def test_arrived_waits_for_every_histogram_observation() -> None:
    want = Expected(LATENCY, count=5, total=1.0)
    assert arrived(want, families(histogram(5, 1.0)), ENV)
    assert arrived(want, families(histogram(6, 1.0)), ENV)
    assert not arrived(want, families(histogram(4, 1.0)), ENV)
    assert not arrived(want, {}, ENV)
    assert not arrived(want, families(histogram(5, 1.0, labels=LABELS.replace(ENV, "x"))), ENV)


def test_arrived_for_counters_and_gauges_is_any_sample_of_the_context() -> None:
    assert arrived(Expected(HITS, value=6), families(counter(1)), ENV)
    assert not arrived(Expected(HITS, value=6), families(counter(1, labels=LABELS.replace('"x"', '"y"'))), ENV)
    assert not arrived(Expected(HITS, value=6), {}, ENV)


# ------------------------------------------------------------------ the wire fixes
def test_a_rejected_multi_value_line_names_the_version_and_the_setting() -> None:
    problem, fix = _wire_fix("malformed_value", "v0.26.1")
    assert problem == (
        "the exporter rejected lines (malformed_value): it does not accept the DogStatsD multi-value lines "
        "(`name:v1:v2:...|h`) the client packs histogram samples into, accepted since v0.27.1 (this one is v0.26.1); "
        "every packed duration and size is lost"
    )
    assert fix == (
        "upgrade statsd_exporter to v0.30.0 (>= v0.27.1), or set NETAUTO_STATSD_EXPORTER_COMPAT=0.26 in the app's "
        "environment (one value per line)"
    )
    assert _wire_fix("malformed_line", "")[0].startswith("the exporter rejected lines (malformed_line): it does not")
    assert "(this one is" not in _wire_fix("malformed_line", "")[0]


def test_another_rejection_points_at_the_pinned_exporter() -> None:
    assert _wire_fix("illegal_tag", "v0.29.0") == (
        "the exporter rejected samples (illegal_tag) (this one is v0.29.0)",
        "run the exporter the repo pins (v0.30.0); see docs/stack.md for the versions and settings",
    )
    assert _wire_fix("illegal_tag", "")[0] == "the exporter rejected samples (illegal_tag)"


# ------------------------------------------------------------------ end to end, with real exporters
def old_exporter() -> str:
    return next(e for e in EXPORTERS if e.version == "v0.26.1").binary()


@pytest.mark.exporter
def test_an_exporter_older_than_v0_27_1_loses_every_packed_histogram(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = old_exporter()
    monkeypatch.delenv("NETAUTO_STATSD_EXPORTER_COMPAT", raising=False)
    options = CheckOptions(
        mapping=str(MAPPING), dashboards=str(ROOT / "grafana" / "dashboards"), rules=str(ROOT / "bridge" / "rules"),
        exporter=binary, plain=False,
    )  # fmt: skip
    capsys.readouterr()
    assert run_check(options) == EXIT_FAILED
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        f"{MAPPING}:0: {binary} is statsd_exporter v0.26.1: before v0.27.1 it rejects the multi-value lines the "
        "client packs histogram samples into",
        "    fix: upgrade the exporter, or set NETAUTO_STATSD_EXPORTER_COMPAT=0.26 in the app's environment (and here)",
    ]
    problem, fix = _wire_fix("malformed_value", "v0.26.1")
    assert lines[2] == (
        f"{MAPPING}:0: {problem} (12 histogram context(s) lost: dogstatsd:runner.duration, dogstatsd:runner.bytes, "
        "dogstatsd:run.output_bytes, dogstatsd:liveview.handshake, ...)"
    )
    assert lines[3:] == [
        f"    fix: {fix}",
        f"note: live proof against {binary} v0.26.1: {N} metrics x 1 wire format(s), {N} contexts compared sample "
        "for sample",
        "check FAILED: 2 problem(s), 0 warning(s)",
    ]
    # with the setting, it passes: tests/tooling/bridge/test_matrix.py (the CLI as users run it)


def test_a_gauge_whose_name_ends_in_total_keeps_it() -> None:
    """prometheus_client strips `_total` from counter families only."""
    from dataclasses import replace

    gauge = replace(LEVEL, prometheus_name="app_open_total")
    text = f"# TYPE app_open_total gauge\napp_open_total{{{LABELS}}} 7\n"
    assert compare(Expected(gauge, value=7), families(text), ENV) == []


def test_only_the_compatibility_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live proof sends the client's wire; an operator's NETAUTO_STATSD_DISABLE must not hide families from it."""
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "runner")
    monkeypatch.setenv("NETAUTO_STATSD_EXPORTER_COMPAT", "0.26")
    assert _settings_env() == {"NETAUTO_STATSD_EXPORTER_COMPAT": "0.26"}


@pytest.mark.exporter
def test_the_live_proof_ignores_the_operators_other_client_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, exporter_binary: str
) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "runner,http")
    options = CheckOptions(
        mapping=str(MAPPING), dashboards=str(ROOT / "grafana" / "dashboards"), rules=str(ROOT / "bridge" / "rules"),
        exporter=exporter_binary, plain=False,
    )  # fmt: skip
    capsys.readouterr()
    assert run_check(options) == EXIT_OK, capsys.readouterr().out


@pytest.mark.exporter
def test_traffic_without_a_histogram_sends_no_burst(exporter_binary: str, tmp_path: Path) -> None:
    """send_traffic picks the burst's histogram among the metrics given; with none there is no burst."""
    from netauto_statsd.catalog import find
    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter
    from tests.support import Exporter

    exporter = Exporter(exporter_binary, tmp_path)
    emitter = Emitter(Settings(host="127.0.0.1", port=exporter.udp_port, strict=True, env="burst"))
    try:
        metric = find("run.created")
        assert metric is not None
        assert send_traffic(emitter, [metric]) == [Expected(metric, value=6.0)]
        exporter.wait_value("netauto_runs_created_total", 6, env="burst")
    finally:
        emitter.close()
        exporter.stop()


@pytest.mark.exporter
def test_the_live_proof_sends_under_the_namespace_it_is_given(exporter_binary: str) -> None:
    """Under another namespace the repo's mapping drops every line: nothing arrives, and the proof says so."""
    from netauto_statsd.catalog import find
    from netauto_statsd.tooling.live_check import live_check

    metric = find("run.created")
    assert metric is not None
    result = live_check(exporter_binary, MAPPING, [metric], "acme", plain=False, timeout=3.0)
    assert [problem for problem, _, _ in result.problems] == [
        "[dogstatsd] `run.created` did not produce `netauto_runs_created_total`"
    ]
    assert live_check(exporter_binary, MAPPING, [metric], "netauto", plain=False).problems == []


@pytest.mark.exporter
def test_the_live_proof_proves_both_wires_unless_told_otherwise(exporter_binary: str) -> None:
    """`plain` defaults to on (both wire formats) and `version` to none named."""
    from netauto_statsd.catalog import find
    from netauto_statsd.tooling.live_check import live_check

    metric = find("run.created")
    assert metric is not None
    result = live_check(exporter_binary, MAPPING, [metric], "netauto")
    assert (result.problems, result.notes) == (
        [],
        [f"live proof against {exporter_binary}: 1 metrics x 2 wire format(s), 2 contexts compared sample for sample"],
    )


@pytest.mark.exporter
def test_an_exporter_older_than_v0_27_1_passes_with_the_compatibility_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NETAUTO_STATSD_EXPORTER_COMPAT=0.26 set here (as in the app): no version finding, one value per line."""
    binary = old_exporter()
    monkeypatch.setenv("NETAUTO_STATSD_EXPORTER_COMPAT", "0.26")
    options = CheckOptions(
        mapping=str(MAPPING), dashboards=str(ROOT / "grafana" / "dashboards"), rules=str(ROOT / "bridge" / "rules"),
        exporter=binary, plain=False,
    )  # fmt: skip
    capsys.readouterr()
    assert run_check(options) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [
        f"note: live proof against {binary} v0.26.1: {N} metrics x 1 wire format(s), {N} contexts compared sample "
        "for sample",
        "check OK: 0 problem(s), 0 warning(s)",
    ]
