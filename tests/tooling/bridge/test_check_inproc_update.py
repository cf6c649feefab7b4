"""`mapping` rendering, `mapping --diff` and `mapping --update` in-process, on an app catalog built for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd.catalog import all_metrics
from netauto_statsd.tooling.contract import check_contract
from netauto_statsd.tooling.findings import Finding, Report
from netauto_statsd.tooling.knobs import lint_knobs
from netauto_statsd.tooling.mapping import (
    DROP_RULE,
    HEADER,
    PLAIN_HEADER,
    match_metric_type,
    plain_match,
    render_mapping,
    render_rule,
)
from netauto_statsd.tooling.mapping_lint import lint_mapping
from netauto_statsd.tooling.mapping_update import Missing, diff_mapping, missing_rules, update_mapping
from tests.tooling.bridge.appmetrics import (
    HITS,
    LATENCY,
    LEVEL,
    METRICS,
    NAMESPACE,
    SESSIONS,
    SIZE,
    mapping_text,
    parsed,
    write,
)
from tests.tooling.bridge.edits import line_of

HEADING = "  # --- tests.app.metrics (added by `netauto-statsd mapping --update`: review buckets, ttl, help) ---"


# ------------------------------------------------------------------ rendering
def test_the_rules_of_each_kind_of_metric() -> None:
    assert render_rule(HITS, NAMESPACE) == [
        '  - match: "acme.app.hits"',
        "    match_metric_type: counter",
        '    name: "app_hits_total"',
        '    help: "Hits."',
    ]
    assert render_rule(LATENCY, NAMESPACE, plain=True) == [
        '  - match: "acme.app.latency.*.*.*"', "    match_metric_type: observer", '    name: "app_latency_seconds"',
        '    help: "Latency."', "    labels:", '      view: "${1}"', '      env: "${2}"', '      service: "${3}"',
        "    observer_type: histogram", "    histogram_options:", "      buckets: [0.01, 0.1, 1.0]",
    ]  # fmt: skip
    assert render_rule(SESSIONS, NAMESPACE)[-1] == "    ttl: 2m"
    assert render_rule(LEVEL, NAMESPACE)[-1] == '    help: "Level."'
    assert (match_metric_type(LATENCY), match_metric_type(LEVEL)) == ("observer", "gauge")
    assert plain_match(SESSIONS, NAMESPACE) == "acme.app.sessions.*.*.*.*"
    assert plain_match(HITS) == "netauto.app.hits.*.*.*"


def test_the_rendered_mapping_is_header_defaults_both_wire_forms_by_area_and_the_drop_rule() -> None:
    text = render_mapping()
    assert text.startswith(HEADER + "\ndefaults:\n  observer_type: histogram\n  match_type: glob\n\nmappings:\n")
    assert text.endswith("\n".join(DROP_RULE) + "\n")
    assert text.count("\n".join(PLAIN_HEADER)) == 1
    areas = dict.fromkeys(m.area for m in all_metrics())
    for area in areas:
        assert text.count(f"  # --- {area} ---\n") == 1 and text.count(f"  # --- {area} (plain) ---\n") == 1
    assert text.count("  - match: ") == 2 * len(all_metrics()) + 1
    assert render_mapping("acme.netops").count('  - match: "acme.netops.') == 2 * len(all_metrics())


def test_the_rendered_mapping_satisfies_the_contract_and_every_knob(tmp_path: Path) -> None:
    path = write(tmp_path, render_mapping())
    rules, report = parsed(path)
    assert check_contract(str(path), rules, all_metrics(), report, "netauto") == list(all_metrics())
    lint_knobs(str(path), rules, all_metrics(), report, "netauto")
    assert (report.errors, report.warnings) == ([], []), report.render()


# ------------------------------------------------------------------ --diff
def test_missing_rules_are_each_metric_and_wire_form_no_rule_maps(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((LEVEL, SESSIONS)))
    rules, _ = parsed(path)
    assert missing_rules(rules, METRICS, NAMESPACE) == [
        Missing(HITS, False), Missing(HITS, True), Missing(LATENCY, False), Missing(LATENCY, True),
        Missing(SIZE, False), Missing(SIZE, True),
    ]  # fmt: skip
    assert missing_rules(rules, METRICS, NAMESPACE, plain=False) == [
        Missing(HITS, False), Missing(LATENCY, False), Missing(SIZE, False)
    ]  # fmt: skip
    assert missing_rules([], [LEVEL], NAMESPACE) == [Missing(LEVEL, False), Missing(LEVEL, True)]


def test_diff_lists_what_the_file_lacks_or_contradicts(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((HITS, LEVEL)).replace('name: "app_level"', 'name: "app_levels"', 1))
    report = diff_mapping(path, (HITS, LEVEL, SIZE), NAMESPACE, plain=False)
    assert [f.problem for f in report.errors] == [
        "`app.level` (DogStatsD) becomes `app_levels`, the catalog declares `app_level`",
        "catalog metric `app.size` (DogStatsD `acme.app.size`) is not mapped (dropped by the rule at line 28)",
    ]
    assert diff_mapping(write(tmp_path, mapping_text()), METRICS, NAMESPACE).errors == []


def test_diff_of_a_file_that_does_not_parse_is_the_parse_error(tmp_path: Path) -> None:
    path = write(tmp_path, "mappings:\n  - match: [\n")
    report = diff_mapping(path, METRICS, NAMESPACE)
    assert len(report.errors) == 1 and report.errors[0].problem.startswith("not valid YAML")


# ------------------------------------------------------------------ --update
def test_update_adds_the_missing_rules_before_the_drop_rule_and_keeps_the_rest(tmp_path: Path) -> None:
    before = "# ops comment\n" + mapping_text((LEVEL, SESSIONS)).replace(
        'help: "Level."', 'help: "Level (ops wording)."'
    )
    path = write(tmp_path, before)
    added = update_mapping(path, METRICS, NAMESPACE)
    assert added == [
        "acme.app.hits", "acme.app.hits.*.*.*", "acme.app.latency", "acme.app.latency.*.*.*", "acme.app.size",
        "acme.app.size.*.*",
    ]  # fmt: skip
    after = path.read_text()
    drop = "\n".join(DROP_RULE) + "\n"
    head = before[: before.index(drop)]
    assert after.startswith(head + HEADING + "\n")
    assert after.endswith(drop)
    inserted = after[len(head) + len(HEADING) + 1 : -len(drop)]
    assert [line for line in inserted.splitlines() if line.startswith("  - match: ")] == [
        f'  - match: "{m}"' for m in added
    ]
    assert "      buckets: [0.01, 0.1, 1.0]" in inserted and "      buckets: [256.0, 1024.0]" in inserted
    report = diff_mapping(path, METRICS, NAMESPACE)
    assert report.errors == [], report.render()
    assert update_mapping(path, METRICS, NAMESPACE) == [] and path.read_text() == after


def test_update_without_plain_adds_the_dogstatsd_rules_only(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((LEVEL,)))
    assert update_mapping(path, (LEVEL, HITS), NAMESPACE, plain=False) == ["acme.app.hits"]
    rules, report = parsed(path)
    assert report.errors == [] and [r.match for r in rules][-2:] == ["acme.app.hits", "."]


def test_update_appends_when_there_is_no_drop_rule(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((LEVEL,), drop=False))
    assert update_mapping(path, (LEVEL, HITS), NAMESPACE) == ["acme.app.hits", "acme.app.hits.*.*.*"]
    rules, report = parsed(path)
    assert report.errors == []
    assert [r.match for r in rules] == [
        "acme.app.level",
        "acme.app.level.*.*.*",
        "acme.app.hits",
        "acme.app.hits.*.*.*",
    ]
    assert HEADING in path.read_text()


def test_update_names_every_module_it_adds_metrics_of(tmp_path: Path) -> None:
    from dataclasses import replace

    other = replace(HITS, module="tests.other.metrics")
    path = write(tmp_path, mapping_text((LEVEL,)))
    update_mapping(path, (LEVEL, other, SIZE), NAMESPACE)
    assert (
        "  # --- tests.other.metrics, tests.app.metrics (added by `netauto-statsd mapping --update`: review buckets, "
        "ttl, help) ---" in path.read_text()
    )


def test_update_refuses_a_file_that_does_not_parse_and_leaves_it_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "mappings:\n  - match: [\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: not valid YAML: "):
        update_mapping(path, METRICS, NAMESPACE)
    assert path.read_text() == "mappings:\n  - match: [\n"


def test_update_refuses_a_file_without_mappings(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  match_type: glob\n")
    with pytest.raises(ValueError, match=rf"^{path}: no `mappings:` list$"):
        update_mapping(path, METRICS, NAMESPACE)


def test_update_refuses_mappings_that_are_not_a_list_and_leaves_the_file_alone(tmp_path: Path) -> None:
    """Before: an AttributeError traceback from the lint."""
    path = write(tmp_path, "mappings: 3\n")
    with pytest.raises(ValueError, match=rf"^{path}:1: `mappings:` is not a list of rules$"):
        update_mapping(path, METRICS, NAMESPACE)
    assert path.read_text() == "mappings: 3\n"


def test_update_of_an_empty_mappings_list_adds_everything(tmp_path: Path) -> None:
    path = write(tmp_path, "mappings: []\n")
    assert len(update_mapping(path, METRICS, NAMESPACE)) == 2 * len(METRICS)
    report = Report()
    rules = lint_mapping(path, report)
    assert report.errors == [] and len(rules) == 2 * len(METRICS)
    assert check_contract(str(path), rules, METRICS, report, NAMESPACE) == list(METRICS)
    assert report.errors == [] and report.warnings == []
    assert isinstance(Finding, type)


# ------------------------------------------------------------------ --update keeps the file's layout
def test_update_keeps_a_long_help_on_one_line(tmp_path: Path) -> None:
    """ruamel's default width (80) would fold a long help over two lines; --update writes the rule as rendered."""
    from dataclasses import replace

    long_help = replace(HITS, help="Hits of the application's views, counted once per request whatever its outcome.")
    path = write(tmp_path, mapping_text((LEVEL,)))
    update_mapping(path, (LEVEL, long_help), NAMESPACE, plain=False)
    assert f'    help: "{long_help.help}"\n' in path.read_text()


def test_update_works_without_a_comment_before_the_drop_rule(tmp_path: Path) -> None:
    text = mapping_text((LEVEL,)).replace("\n".join(DROP_RULE[:2]) + "\n", "")
    assert "# Anything not declared" not in text
    path = write(tmp_path, text)
    assert update_mapping(path, (LEVEL, HITS), NAMESPACE) == ["acme.app.hits", "acme.app.hits.*.*.*"]
    assert path.read_text().endswith('      service: "${3}"\n' + "\n".join(DROP_RULE[2:]) + "\n")


def test_the_comment_above_the_drop_rule_stays_there_after_one_rule(tmp_path: Path) -> None:
    text = 'mappings:\n  - match: "acme.app.level"\n    name: "app_level"\n  # drop the rest\n' + "\n".join(
        DROP_RULE[2:]
    )
    path = write(tmp_path, text + "\n")
    update_mapping(path, (HITS,), NAMESPACE, plain=False)
    after = path.read_text()
    assert after.endswith('    help: "Hits."\n  # drop the rest\n' + "\n".join(DROP_RULE[2:]) + "\n"), after


def test_an_empty_rule_before_the_drop_rule_does_not_stop_update(tmp_path: Path) -> None:
    path = write(tmp_path, "mappings:\n  - {}\n" + "\n".join(DROP_RULE) + "\n")
    assert update_mapping(path, (HITS,), NAMESPACE, plain=False) == ["acme.app.hits"]
    rules, _ = parsed(path)
    assert [r.match for r in rules] == ["", "acme.app.hits", "."]


def test_the_defaults_of_diff_and_check_contract_prove_both_wire_forms(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((HITS,)).replace('match: "acme.app.hits.*.*.*"', 'match: "acme.hits.*.*.*"'))
    drop = line_of(path, '- match: "."')
    expected = Finding(
        str(path), drop,
        "catalog metric `app.hits` (plain StatsD `acme.app.hits.*.*.*`) is not mapped "
        f"(dropped by the rule at line {drop})",
        f"run `netauto-statsd mapping --update {path}` (adds its rule before the final drop rule)",
    )  # fmt: skip
    assert diff_mapping(path, (HITS,), NAMESPACE).errors == [expected]
    rules, report = parsed(path)
    assert check_contract(str(path), rules, (HITS,), report, NAMESPACE) == []
    assert report.errors == [expected]


def test_a_comment_after_a_lone_drop_rule_stays_at_the_end(tmp_path: Path) -> None:
    text = "mappings:\n" + "\n".join(DROP_RULE[2:]) + "\n# end of the operators' file\n"
    path = write(tmp_path, text)
    assert update_mapping(path, (HITS,), NAMESPACE, plain=False) == ["acme.app.hits"]
    assert path.read_text().endswith('    name: "dropped"\n# end of the operators\' file\n')


def test_without_a_drop_rule_a_comment_after_the_last_rule_stays_above_the_added_rules(tmp_path: Path) -> None:
    path = write(tmp_path, mapping_text((LEVEL,), drop=False) + "  # end of the team's rules\n")
    update_mapping(path, (LEVEL, HITS), NAMESPACE, plain=False)
    after = path.read_text()
    assert after.index("  # end of the team's rules\n") < after.index(HEADING) < after.index('"acme.app.hits"')
