"""check's contract half called in-process: each contract finding exactly, with the line and the declaring module."""

from __future__ import annotations

from pathlib import Path

from netauto_statsd.tooling.contract import DOGSTATSD, PLAIN, Encoding, check_contract, encodings, resolve, rules_for
from netauto_statsd.tooling.findings import Finding, Report
from tests.tooling.bridge.appmetrics import (
    APP,
    HITS,
    LATENCY,
    METRICS,
    NAMESPACE,
    SESSIONS,
    mapping_text,
    parsed,
    write,
)
from tests.tooling.bridge.edits import line_of

RESTORE = (
    f"restore this rule to the contract; the contract is declared in `{APP}` "
    "(change it there, and the dashboards, to change it)"
)


def contract(
    path: Path, plain: bool = True, buckets: frozenset[str] = frozenset(), args: str = ""
) -> tuple[list, Report]:  # type: ignore[type-arg]
    rules, report = parsed(path)
    produced = check_contract(str(path), rules, METRICS, report, NAMESPACE, plain, buckets, args)
    return produced, report


def test_the_rendered_mapping_produces_every_metric_as_declared(tmp_path: Path) -> None:
    produced, report = contract(write(tmp_path, mapping_text()))
    assert produced == list(METRICS)
    assert (report.errors, report.warnings) == ([], [])


def test_encodings_are_the_dogstatsd_name_and_the_plain_name_with_one_segment_per_tag() -> None:
    assert encodings(SESSIONS, NAMESPACE) == [
        Encoding(DOGSTATSD, "acme.app.sessions", ()),
        Encoding(PLAIN, "acme.app.sessions.v.v.v.v", ("view", "process", "env", "service")),
    ]
    assert encodings(HITS, NAMESPACE, plain=False) == [Encoding(DOGSTATSD, "acme.app.hits", ())]


def test_an_unmapped_metric_names_the_update_command_with_the_catalog_options(tmp_path: Path) -> None:
    text = mapping_text().replace('match: "acme.app.hits"', 'match: "acme.app.hit"')
    path = write(tmp_path, text)
    produced, report = contract(path, args=" --catalog tests.app.metrics")
    drop = line_of(path, '- match: "."')
    assert report.errors == [
        Finding(
            str(path), drop,
            "catalog metric `app.hits` (DogStatsD `acme.app.hits`) is not mapped (dropped by the rule at line "
            f"{drop})",
            f"run `netauto-statsd mapping --catalog tests.app.metrics --update {path}` (adds its rule before the "
            "final drop rule)",
        )
    ]  # fmt: skip
    assert HITS not in produced and len(produced) == len(METRICS) - 1


def test_a_metric_no_rule_catches_at_all_is_unmapped_at_line_0(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text(drop=False).replace('match: "acme.app.hits.*.*.*"', 'match: "acme.hits.*.*.*"'))
    produced, report = contract(path)
    assert report.errors == [
        Finding(
            str(path), 0, "catalog metric `app.hits` (plain StatsD `acme.app.hits.*.*.*`) is not mapped",
            f"run `netauto-statsd mapping --update {path}` (adds its rule before the final drop rule)",
        )
    ]  # fmt: skip
    assert HITS not in produced


def test_a_counter_rule_typed_as_gauge_leaves_the_counter_unmapped(tmp_path: Path) -> None:
    """The exporter applies a typed rule only to samples of that type: the counter falls to the drop rule."""
    old = '- match: "acme.app.hits"\n    match_metric_type: counter'
    path = write(tmp_path, mapping_text().replace(old, old.replace("counter", "gauge")))
    _, report = contract(path)
    drop = line_of(path, '- match: "."')
    assert [f.problem for f in report.errors] == [
        "`app_hits_total` is a counter here but a gauge at line 2",  # the lint: one series name, two types
        f"catalog metric `app.hits` (DogStatsD `acme.app.hits`) is not mapped (dropped by the rule at line {drop})",
    ]


def test_a_renamed_series_names_the_declaring_module(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text().replace('name: "app_hits_total"', 'name: "app_hit_total"', 1))
    produced, report = contract(path)
    assert report.errors == [
        Finding(
            str(path), line_of(path, '- match: "acme.app.hits"'),
            "`app.hits` (DogStatsD) becomes `app_hit_total`, the catalog declares `app_hits_total`", RESTORE,
        )
    ]  # fmt: skip
    assert HITS not in produced


def test_wrong_plain_labels_list_the_labels_the_contract_needs(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text().replace('      process: "${2}"', '      proc: "${2}"'))
    _, report = contract(path)
    assert report.errors == [
        Finding(
            str(path), line_of(path, '- match: "acme.app.sessions.'),
            "`app.sessions` (plain StatsD) labels must be view: ${1}, process: ${2}, env: ${3}, service: ${4}",
            RESTORE,
        )
    ]  # fmt: skip


def test_labels_on_a_dogstatsd_rule_are_labels_the_catalog_does_not_declare(tmp_path: Path) -> None:
    old = 'name: "app_level"\n    help: "Level."\n'
    path = write(tmp_path, mapping_text().replace(old, old + '    labels:\n      zone: "eu"\n      area: "x"\n', 1))
    produced, report = contract(path)
    assert report.errors == [
        Finding(
            str(path), line_of(path, '- match: "acme.app.level"'),
            "`app.level` (DogStatsD) adds labels ['area', 'zone'] that the catalog does not declare (tags become "
            "labels)",
            RESTORE,
        )
    ]  # fmt: skip
    assert [m.name for m in produced] == ["app.hits", "app.latency", "app.size", "app.sessions"]


def test_a_summary_is_a_finding_only_where_dashboards_read_its_buckets(tmp_path: Path) -> None:
    text = mapping_text().replace(
        "observer_type: histogram\n    histogram_options:\n      buckets: [0.01,",
        "observer_type: summary\n    histogram_options:\n      buckets: [0.01,",
    )
    path = write(tmp_path, text)
    produced, report = contract(path)
    assert report.errors == [] and LATENCY in produced
    produced, report = contract(path, buckets=frozenset({"app_latency_seconds_bucket"}))
    problem = "is a summary, but dashboards or alerts read `app_latency_seconds_bucket`"
    assert report.errors == [
        Finding(str(path), line_of(path, '- match: "acme.app.latency"'), f"`app.latency` (DogStatsD) {problem}",
                RESTORE),
        Finding(str(path), line_of(path, '- match: "acme.app.latency.'), f"`app.latency` (plain StatsD) {problem}",
                RESTORE),
    ]  # fmt: skip
    assert LATENCY not in produced


def test_several_problems_of_one_rule_are_each_a_finding(tmp_path: Path) -> None:
    old = 'name: "app_sessions"\n    help: "Sessions."\n    labels:\n      view: "${1}"'
    path = write(
        tmp_path,
        mapping_text().replace(old, old.replace('"app_sessions"', '"app_session"').replace("view:", "screen:")),
    )
    _, report = contract(path)
    line = line_of(path, '- match: "acme.app.sessions.')
    assert [(f.line, f.problem) for f in report.errors] == [
        (line, "`app.sessions` (plain StatsD) becomes `app_session`, the catalog declares `app_sessions`"),
        (line, "`app.sessions` (plain StatsD) labels must be view: ${1}, process: ${2}, env: ${3}, service: ${4}"),
    ]


def test_without_plain_only_the_dogstatsd_form_is_judged(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text().replace('match: "acme.app.hits.*.*.*"', 'match: "acme.hits.*.*.*"'))
    produced, report = contract(path, plain=False)
    assert report.errors == [] and produced == list(METRICS)


def test_globs_resolve_before_regexes_whatever_the_order(tmp_path: Path) -> None:
    regex = '  - match: "^acme\\\\.app\\\\.hits$"\n    match_type: regex\n    name: "by_regex"\n'
    path = write(tmp_path, "mappings:\n" + regex + "\n".join(mapping_text().splitlines()[1:]) + "\n")
    rules, _ = parsed(path)
    assert resolve(rules, "acme.app.hits", "counter") is rules[1]
    assert resolve(rules[:1], "acme.app.hits", "counter") is rules[0]
    assert resolve(rules[:1], "acme.app.hit", "counter") is None
    assert resolve(rules, "acme.app.hits", "gauge") is rules[0]  # the glob is typed `counter`
    assert rules_for(rules, HITS, NAMESPACE) == [rules[1], rules[6]]
    assert rules_for(rules, HITS, NAMESPACE, plain=False) == [rules[1]]


def test_rules_for_leaves_out_drop_rules_and_repeats(tmp_path: Path) -> None:
    text = (
        "mappings:\n"
        + '  - match: "acme.app.*"\n    name: "any_${1}"\n'
        + '  - match: "acme.*.*.*.*.*"\n    action: drop\n    name: "dropped"\n'
    )
    rules, _ = parsed(write(tmp_path, text))
    assert rules_for(rules, HITS, NAMESPACE) == [rules[0]]  # the plain form is dropped
    assert rules_for(rules, SESSIONS, NAMESPACE) == [rules[0]]  # both forms... the plain one has 8 segments
