"""check's knob lints called in-process: each lint's exact finding, line and severity.

These (and the other ``test_check_inproc_*`` files) are what the mutation run
of ``check`` measures: mutmut only sees code running inside pytest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd.tooling.findings import Finding, Report
from netauto_statsd.tooling.knobs import MAX_BUCKETS, MIN_TTL_SECONDS, is_catch_all, lint_knobs, ttl_seconds
from netauto_statsd.tooling.mapping_lint import Rule
from tests.tooling.bridge.appmetrics import (
    LATENCY,
    METRICS,
    NAMESPACE,
    SESSIONS,
    SIZE,
    mapping_text,
    parsed,
    write,
)
from tests.tooling.bridge.edits import line_of

DROP_FIX = 'end `mappings:` with `- match: "."`, `match_type: regex`, `action: drop`, `name: "dropped"`'
DROP_PROBLEM = "no final drop rule: unmapped names would reach Prometheus under mangled default names"
CATCH_ALL_FIX = "match only the names you mean (e.g. `myteam.*.*`), or make it `action: drop`"


def knobs(path: Path, metrics: tuple = METRICS) -> Report:  # type: ignore[type-arg]
    rules, report = parsed(path)
    assert report.errors == [], report.render()
    lint_knobs(str(path), rules, metrics, report, NAMESPACE)
    return report


def rule(match: str, **fields: object) -> Rule:
    """A rule as lint_mapping would make it (glob, any type, map) with ``fields`` changed."""
    base: dict[str, object] = dict(
        index=0, line=1, match=match, match_type="glob", metric_type="", name="x", action="map", labels={},
        observer_type="histogram", buckets=(), ttl="", help="",
    )  # fmt: skip
    base.update(fields)
    return Rule(**base)  # type: ignore[arg-type]


def test_the_rendered_mapping_has_no_knob_finding(tmp_path: Path) -> None:
    """The baseline every other test edits: what `mapping` renders passes every knob lint."""
    report = knobs(write(tmp_path, mapping_text()))
    assert (report.errors, report.warnings) == ([], [])


# ------------------------------------------------------------------ the final drop rule
def test_no_final_drop_rule_points_at_the_last_rule(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text(drop=False))
    report = knobs(path)
    last = line_of(path, '- match: "acme.app.sessions.*.*.*.*"')
    assert report.errors == [Finding(str(path), last, DROP_PROBLEM, DROP_FIX)]
    assert report.warnings == []


def test_a_final_drop_rule_that_drops_only_some_names_is_not_the_final_drop_rule(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text(drop=False) + '  - match: "legacy.*"\n    action: drop\n    name: "dropped"\n')
    report = knobs(path)
    assert report.errors == [Finding(str(path), line_of(path, '- match: "legacy.*"'), DROP_PROBLEM, DROP_FIX)]


def test_an_empty_mapping_has_no_drop_rule_at_line_0() -> None:
    report = Report()
    lint_knobs("m.yml", [], [], report, NAMESPACE)
    assert report.errors == [Finding("m.yml", 0, DROP_PROBLEM, DROP_FIX)]


def test_a_catch_all_glob_before_the_drop_rule_fails_and_a_catch_all_drop_does_not(tmp_path: Path) -> None:
    extra = '  - match: "*.*"\n    name: "two_segments"\n  - match: "*.*.*"\n    action: drop\n    name: "dropped"\n'
    path = write(tmp_path, mapping_text(before_drop=extra))
    report = knobs(path)
    problem = "catch-all rule `*.*` before the final drop rule maps every unknown name"
    assert report.errors == [Finding(str(path), line_of(path, '- match: "*.*"'), problem, CATCH_ALL_FIX)]
    assert report.warnings == []  # a catch-all is not also "a rule for no metric"


def test_a_catch_all_mapping_rule_at_the_end_is_no_drop_rule_and_a_catch_all(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text(drop=False) + '  - match: "*.*"\n    name: "anything"\n')
    report = knobs(path)
    line = line_of(path, '- match: "*.*"')
    assert report.errors == [
        Finding(str(path), line, DROP_PROBLEM, DROP_FIX),
        Finding(
            str(path), line, "catch-all rule `*.*` before the final drop rule maps every unknown name", CATCH_ALL_FIX
        ),
    ]


def test_a_catch_all_regex_before_the_drop_rule_fails(tmp_path: Path) -> None:
    extra = '  - match: "^(.+)$"\n    match_type: regex\n    name: "all_${1}"\n'
    path = write(tmp_path, mapping_text(before_drop=extra))
    report = knobs(path)
    problem = "catch-all rule `^(.+)$` before the final drop rule maps every unknown name"
    assert report.errors == [Finding(str(path), line_of(path, '- match: "^(.+)$"'), problem, CATCH_ALL_FIX)]


@pytest.mark.parametrize(
    ("candidate", "catch_all"),
    [
        (rule("*"), True),
        (rule("*.*.*.*"), True),
        (rule("acme.*"), False),
        (rule("*.acme"), False),
        (rule(".", match_type="regex"), True),
        (rule(".", match_type="regex", metric_type="counter"), True),  # every probe name, as counters
        (rule(".", match_type="regex", metric_type="gauge"), True),
        (rule(".", match_type="regex", metric_type="observer"), True),
        (rule("^(other-team|zz_probe)\\.", match_type="regex"), False),  # two probe names only (was judged catch-all)
        (rule("^(zz_probe|a\\.b\\.)", match_type="regex", metric_type="gauge"), False),  # 3 of the 4 names
        (rule("^acme\\.", match_type="regex"), False),
    ],
    ids=["star", "four-stars", "prefixed", "suffixed", "regex-dot", "regex-dot-counters", "regex-dot-gauges",
         "regex-dot-observers", "two-probes",
         "three-probes-one-type", "anchored"],
)  # fmt: skip
def test_what_counts_as_a_catch_all(candidate: Rule, catch_all: bool) -> None:
    assert is_catch_all(candidate) is catch_all


# ------------------------------------------------------------------ per-process gauges
def test_a_per_process_gauge_without_ttl_fails_on_both_rules(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text().replace("    ttl: 2m\n", ""))
    report = knobs(path)
    problem = "`app_sessions` is a per-process gauge without `ttl`: a dead process's value stays forever"
    fix = f"add `ttl: 2m` to this rule (any value >= {MIN_TTL_SECONDS:g}s)"
    assert fix == "add `ttl: 2m` to this rule (any value >= 30s)"
    assert report.errors == [
        Finding(str(path), line_of(path, '- match: "acme.app.sessions"'), problem, fix),
        Finding(str(path), line_of(path, '- match: "acme.app.sessions.'), problem, fix),
    ]
    assert report.warnings == []


@pytest.mark.parametrize("ttl", ["10s", "29s", "0.4m", "500ms", "soon"])
def test_a_per_process_ttl_shorter_than_two_scrapes_or_unreadable_fails(tmp_path: Path, ttl: str) -> None:
    path = write(tmp_path, mapping_text().replace("ttl: 2m", f"ttl: {ttl}"))
    report = knobs(path)
    problem = f"`app_sessions`: `ttl: {ttl}` is shorter than 30s (two scrapes): the series would flicker"
    lines = [line_of(path, '- match: "acme.app.sessions"'), line_of(path, '- match: "acme.app.sessions.')]
    assert report.errors == [Finding(str(path), n, problem, "use `ttl: 2m` or longer") for n in lines]


@pytest.mark.parametrize("ttl", ["30s", "0.5m", "1h", "30000ms"])
def test_a_per_process_ttl_of_two_scrapes_or_more_passes(tmp_path: Path, ttl: str) -> None:
    report = knobs(write(tmp_path, mapping_text().replace("ttl: 2m", f"ttl: {ttl}")))
    assert (report.errors, report.warnings) == ([], [])


def test_the_fix_suggests_2m_for_a_metric_that_declares_no_ttl(tmp_path: Path) -> None:
    from dataclasses import replace

    no_ttl = replace(SESSIONS, ttl="")
    path = write(tmp_path, mapping_text((no_ttl,)))
    report = knobs(path, (no_ttl,))
    assert [f.fix for f in report.errors] == ["add `ttl: 2m` to this rule (any value >= 30s)"] * 2
    short = write(
        tmp_path, mapping_text((no_ttl,)).replace('    help: "Sessions."\n', '    help: "Sessions."\n    ttl: 5s\n')
    )
    assert [f.fix for f in knobs(short, (no_ttl,)).errors] == ["use `ttl: 2m` or longer"] * 2


def test_a_ttl_in_the_defaults_covers_per_process_gauges(tmp_path: Path) -> None:
    """statsd_exporter gives every rule without its own ttl the `defaults:` ttl (was: a false "without `ttl`")."""
    text = "defaults:\n  ttl: 2m\n" + mapping_text().replace("    ttl: 2m\n", "")
    assert knobs(write(tmp_path, text)).errors == []
    short = "defaults:\n  ttl: 10s\n" + mapping_text().replace("    ttl: 2m\n", "")
    assert [f.problem for f in knobs(write(tmp_path, short)).errors] == [
        "`app_sessions`: `ttl: 10s` is shorter than 30s (two scrapes): the series would flicker"
    ] * 2


def test_a_gauge_that_is_not_per_process_needs_no_ttl(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text())
    assert "app_level" in path.read_text() and "ttl" not in path.read_text().split('name: "app_level"')[1][:40]
    assert knobs(path).errors == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2m", 120.0), ("30s", 30.0), ("1.5h", 5400.0), ("250ms", 0.25), (" 45s ", 45.0), ("2", None), ("m", None),
     ("1d", None), ("-5s", None)],
)  # fmt: skip
def test_ttl_seconds_reads_the_exporters_durations(text: str, seconds: float | None) -> None:
    assert ttl_seconds(text) == seconds


# ------------------------------------------------------------------ bucket warnings
def buckets(path_text: str, old: str, new: str) -> str:
    assert old in path_text
    return path_text.replace(old, new)


def test_millisecond_buckets_on_a_seconds_series_warn_on_both_rules(tmp_path: Path) -> None:
    path = write(tmp_path, buckets(mapping_text(), "[0.01, 0.1, 1.0]", "[1, 10, 100, 1000]"))
    report = knobs(path)
    assert report.errors == []
    lines = [line_of(path, '- match: "acme.app.latency"'), line_of(path, '- match: "acme.app.latency.')]
    assert report.warnings == [
        Finding(
            str(path), n, "buckets of `app_latency_seconds` (1 .. 1000) look like milliseconds",
            "the client sends seconds: divide the buckets by 1000", "warning",
        )
        for n in lines
    ]  # fmt: skip


@pytest.mark.parametrize("values", ["[0.5, 10, 100, 1000]", "[1, 10, 100, 999]", "[1, 2, 5]"])
def test_seconds_buckets_that_could_be_seconds_do_not_warn(tmp_path: Path, values: str) -> None:
    """A bucket below 1 s, or none reaching 1000, reads as seconds."""
    report = knobs(write(tmp_path, buckets(mapping_text(), "[0.01, 0.1, 1.0]", values)))
    assert report.warnings == []


def test_fractional_buckets_on_a_bytes_series_warn(tmp_path: Path) -> None:
    path = write(tmp_path, buckets(mapping_text(), "[256.0, 1024.0]", "[0, 0.25, 0.5, 1, 10]"))
    report = knobs(path)
    problem = "buckets of `app_size_bytes` include fractions of a byte (0.25): they look like seconds"
    fix = "use byte sizes such as [256, 1024, 4096, ...]"
    lines = [line_of(path, '- match: "acme.app.size"'), line_of(path, '- match: "acme.app.size.')]
    assert report.warnings == [Finding(str(path), n, problem, fix, "warning") for n in lines]


def test_whole_byte_buckets_and_zero_do_not_warn(tmp_path: Path) -> None:
    report = knobs(write(tmp_path, buckets(mapping_text(), "[256.0, 1024.0]", "[0, 1, 1024]")))
    assert report.warnings == []


def test_more_than_max_buckets_warns_and_max_does_not(tmp_path: Path) -> None:
    many = "[" + ", ".join(str(i) for i in range(1, MAX_BUCKETS + 2)) + "]"
    path = write(tmp_path, buckets(mapping_text(), "[256.0, 1024.0]", many))
    report = knobs(path)
    lines = [line_of(path, '- match: "acme.app.size"'), line_of(path, '- match: "acme.app.size.')]
    problem = f"`app_size_bytes` has {MAX_BUCKETS + 1} buckets (each is a series per label set)"
    assert problem == "`app_size_bytes` has 31 buckets (each is a series per label set)"
    assert report.warnings == [Finding(str(path), n, problem, "keep 30 or fewer", "warning") for n in lines]
    enough = "[" + ", ".join(str(i) for i in range(1, MAX_BUCKETS + 1)) + "]"
    assert knobs(write(tmp_path, buckets(mapping_text(), "[256.0, 1024.0]", enough))).warnings == []


def test_a_histogram_rule_without_buckets_uses_the_exporters_defaults_and_is_not_linted(tmp_path: Path) -> None:
    """No `histogram_options`: the exporter's default buckets apply; the unit lints have nothing to read (no crash)."""
    text = mapping_text().replace("    histogram_options:\n      buckets: [0.01, 0.1, 1.0]\n", "")
    assert "[0.01, 0.1, 1.0]" not in text
    report = knobs(write(tmp_path, text))
    assert (report.errors, report.warnings) == ([], [])


def test_bucket_lints_apply_to_histogram_metrics_only(tmp_path: Path) -> None:
    """Buckets on a counter's rule mean nothing to the exporter; no unit warning is made up for them."""
    text = mapping_text().replace('name: "app_hits_total"\n', 'name: "app_hits_total"\n    buckets: [1, 1000]\n')
    rules, report = parsed(write(tmp_path, text))
    lint_knobs("m.yml", rules, METRICS, report, NAMESPACE)
    assert [w.problem for w in report.warnings] == []
    assert LATENCY.type == SIZE.type == "histogram"


# ------------------------------------------------------------------ rules for no catalog metric
def test_a_rule_for_no_catalog_metric_warns_and_drop_rules_do_not(tmp_path: Path) -> None:
    extra = (
        '  - match: "legacy.*.count"\n    name: "legacy_count"\n'
        '  - match: "noise.*"\n    action: drop\n    name: "dropped"\n'
    )
    path = write(tmp_path, mapping_text(before_drop=extra))
    report = knobs(path)
    assert report.errors == []
    assert report.warnings == [
        Finding(
            str(path), line_of(path, '- match: "legacy.*.count"'), "rule `legacy.*.count` matches no catalog metric",
            "fine for another sender's metrics; otherwise declare the metric in a catalog module (--catalog) "
            "or remove the rule",
            "warning",
        )
    ]  # fmt: skip


def test_plain_rules_are_claimed_even_when_only_dogstatsd_is_proved(tmp_path: Path) -> None:
    """lint_knobs always claims both wire forms: the plain rules of catalog metrics never warn."""
    report = knobs(write(tmp_path, mapping_text()))
    assert report.warnings == []


def test_a_rule_of_a_metric_missing_from_the_catalog_given_warns(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text())
    others = tuple(m for m in METRICS if m is not SIZE)
    report = knobs(path, others)
    assert [(w.line, w.problem) for w in report.warnings] == [
        (line_of(path, '- match: "acme.app.size"'), "rule `acme.app.size` matches no catalog metric"),
        (line_of(path, '- match: "acme.app.size.'), "rule `acme.app.size.*.*` matches no catalog metric"),
    ]
