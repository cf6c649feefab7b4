"""The strict mapping lint called in-process: each finding exactly, at its line, with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from netauto_statsd.tooling.findings import Finding
from netauto_statsd.tooling.mapping_lint import Rule
from tests.tooling.bridge.appmetrics import mapping_text, parsed, write

HEAD = "mappings:\n"


def lint(tmp_path: Path, text: str) -> tuple[list[Rule], list[Finding], list[Finding], str]:
    path = write(tmp_path, text)
    rules, report = parsed(path)
    return rules, report.errors, report.warnings, str(path)


def one_rule(body: str) -> str:
    return HEAD + "  - " + body.replace("\n", "\n    ") + "\n"


def test_the_rendered_mapping_is_clean_and_read_field_by_field(tmp_path: Path) -> None:
    rules, errors, warnings, _ = lint(tmp_path, mapping_text())
    assert (errors, warnings) == ([], [])
    plain = rules[5 + 4]  # the plain rule of app.sessions
    assert plain == Rule(
        index=9, line=plain.line, match="acme.app.sessions.*.*.*.*", match_type="glob", metric_type="gauge",
        name="app_sessions", action="map",
        labels={"view": "${1}", "process": "${2}", "env": "${3}", "service": "${4}"},
        observer_type="histogram", buckets=(), ttl="2m", help="Sessions.",
    )  # fmt: skip
    latency = rules[1]
    assert (latency.metric_type, latency.buckets, latency.observer_type) == ("observer", (0.01, 0.1, 1.0), "histogram")
    assert (rules[-1].match, rules[-1].match_type, rules[-1].action, rules[-1].name) == (
        ".",
        "regex",
        "drop",
        "dropped",
    )


def test_defaults_set_match_type_and_observer_type(tmp_path: Path) -> None:
    text = "defaults:\n  match_type: regex\n  observer_type: summary\n  ttl: 5m\n" + one_rule('match: "^a$"\nname: "a"')
    rules, errors, _, _ = lint(tmp_path, text)
    assert errors == []
    assert (rules[0].match_type, rules[0].observer_type, rules[0].ttl, rules[0].line) == ("regex", "summary", "5m", 6)


def test_a_yaml_error_names_its_line(tmp_path: Path) -> None:
    rules, errors, _, where = lint(tmp_path, HEAD + '  - match: "a\n    name: b\n')
    assert rules == [] and len(errors) == 1
    assert (errors[0].path, errors[0].line, errors[0].fix) == (where, 4, "fix the YAML syntax at that line")
    assert errors[0].problem.startswith("not valid YAML: ")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", ""])
def test_a_file_that_is_not_a_mapping_is_one_finding(tmp_path: Path, text: str) -> None:
    rules, errors, _, where = lint(tmp_path, text)
    assert rules == []
    assert errors == [
        Finding(where, 1, "the file is not a mapping with `mappings:`", "start from `netauto-statsd mapping`")
    ]


@pytest.mark.parametrize(("text", "line"), [("mappings: 3\n", 1), ("defaults: {}\nmappings:\n  match: a\n", 3)])
def test_mappings_that_are_not_a_list_are_one_finding_not_a_crash(tmp_path: Path, text: str, line: int) -> None:
    """Before: a traceback (`'str' object has no attribute 'start_mark'`) from `check` and `mapping --update`."""
    rules, errors, _, where = lint(tmp_path, text)
    assert rules == []
    assert errors == [
        Finding(where, line, "`mappings:` is not a list of rules",
                "write each rule as a `- match: ...` item under `mappings:`")
    ]  # fmt: skip


def test_mappings_left_empty_is_an_empty_list(tmp_path: Path) -> None:
    assert lint(tmp_path, "mappings:\n")[:3] == ([], [], [])


def test_unknown_keys_are_errors_with_the_closest_key(tmp_path: Path) -> None:
    text = (
        "default:\n  observer_type: histogram\n"  # line 1
        "defaults:\n  match_typ: glob\n  ttl: 2m\n"  # line 3
        "mappings:\n"  # line 6
        '  - match: "a.*"\n    name: "a_${1}"\n    label:\n      x: y\n'  # line 7
        "    histogram_options:\n      bucket: [1]\n"  # line 11
        "    summary_options:\n      max_age: 1m\n      quantile: [0.5]\n"  # line 13
        '  - match: "b"\n    name: "b"\n    zzzzz: 1\n'  # line 16
    )
    _, errors, _, where = lint(tmp_path, text)
    ignored = "(statsd_exporter v0.30.0 silently ignores it)"
    assert errors == [
        Finding(where, 1, "unknown top-level key `default`", "did you mean `defaults`?"),
        Finding(
            where, 4, "unknown key `match_typ` in defaults (ignored by the exporter)", "did you mean `match_type`?"
        ),
        Finding(where, 9, f"unknown key `label` {ignored}", "did you mean `labels`?"),
        Finding(where, 12, "unknown key `bucket` in histogram_options", "did you mean `buckets`?"),
        Finding(where, 15, "unknown key `quantile` in summary_options", "did you mean `quantiles`?"),
        Finding(
            where, 18, f"unknown key `zzzzz` {ignored}",
            "allowed keys: action, buckets, help, histogram_options, honor_labels, labels, match, "
            "match_metric_type, match_type, name, observer_type, quantiles, scale, summary_options, timer_type, ttl",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("match_type", "regexp", "glob, regex"),
        ("match_metric_type", "histogram", "counter, gauge, observer"),
        ("observer_type", "hist", "histogram, summary"),
        ("action", "keep", "drop, map"),
    ],
)
def test_enum_values_are_checked(tmp_path: Path, key: str, value: str, allowed: str) -> None:
    _, errors, _, where = lint(tmp_path, one_rule(f'match: "a"\nname: "a"\n{key}: {value}'))
    assert errors[0] == Finding(where, 4, f"`{key}: {value}` is not valid", f"use one of {allowed}")


def test_a_rule_without_match_or_name_and_a_rule_that_is_not_a_block(tmp_path: Path) -> None:
    text = HEAD + '  - help: "nothing"\n  - just a string\n  - match: "a"\n'
    rules, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(where, 2, "rule has no `match`", 'add `match: "netauto.some.metric"`'),
        Finding(where, 2, "rule has no `name` (required even for `action: drop`)", 'add `name: "netauto_..."`'),
        Finding(where, 3, "mapping #2 is not a key/value block", "each rule is `- match: ...` with keys below it"),
        Finding(where, 4, "rule has no `name` (required even for `action: drop`)", 'add `name: "netauto_..."`'),
    ]
    assert [(r.index, r.line, r.match) for r in rules] == [(0, 2, ""), (2, 4, "a")]


@pytest.mark.parametrize("name", ["1abc", "a-b", "a.b", "a b"])
def test_an_invalid_series_name_is_an_error_at_its_line(tmp_path: Path, name: str) -> None:
    _, errors, _, where = lint(tmp_path, one_rule(f'match: "a"\nhelp: "h"\nname: "{name}"'))
    assert errors == [
        Finding(where, 4, f"`{name}` is not a valid Prometheus metric name", "use letters, digits and _ only")
    ]


@pytest.mark.parametrize("name", ["a", "_a", "a_${1}_b", "${1}", "$1", "a:b_9"])
def test_valid_series_names_pass(tmp_path: Path, name: str) -> None:
    _, errors, _, _ = lint(tmp_path, one_rule(f'match: "x.*"\nname: "{name}"'))
    assert errors == [] or (
        name == "a:b_9" and [e.problem for e in errors] == [f"`{name}` is not a valid Prometheus metric name"]
    )


@pytest.mark.parametrize(
    ("match", "bad"),
    [("prefix_*.x", "prefix_*"), ("a.b_*", "b_*"), ("1a.b", "1a"), ("a..b", ""), ("a.b c", "b c")],
)
def test_an_invalid_glob_names_the_segment(tmp_path: Path, match: str, bad: str) -> None:
    _, errors, _, where = lint(tmp_path, one_rule(f'name: "n"\nmatch: "{match}"'))
    assert errors == [
        Finding(
            where, 3, f"invalid glob `{match}`: segment `{bad}`",
            "`*` must be a whole dot segment (no `prefix_*`); segments use letters, digits, _ and -",
        )
    ]  # fmt: skip


@pytest.mark.parametrize("match", ["*", "a-b.*", "_a.9b", "a.*.c-d", "A.B"])
def test_valid_globs_pass(tmp_path: Path, match: str) -> None:
    _, errors, _, _ = lint(tmp_path, one_rule(f'name: "n"\nmatch: "{match}"'))
    assert errors == []


def test_an_invalid_regex_is_an_error_at_the_match_line(tmp_path: Path) -> None:
    _, errors, _, _ = lint(tmp_path, one_rule('name: "n"\nmatch_type: regex\nmatch: "a(b"'))
    assert len(errors) == 1
    assert (errors[0].line, errors[0].fix) == (4, "fix the regular expression")
    assert errors[0].problem == "invalid regex `a(b`: missing ), unterminated subpattern at position 1"


def test_captures_are_counted_per_match_type(tmp_path: Path) -> None:
    text = (
        HEAD
        + '  - match: "a.*.*"\n    name: "a_${2}"\n    labels:\n      xx: "$1"\n'
        + '  - match: "^b\\\\.(.+)\\\\.(.+)$"\n    match_type: regex\n    name: "b_${2}"\n'
        + '  - match: "c.*"\n    name: "c_${2}"\n    labels:\n      yy: "${3}"\n'
        + '  - match: "^d$"\n    match_type: regex\n    name: "d_$1"\n'
    )
    _, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(where, 10, "`$2` refers to capture 2 but `c.*` has 1", "use a capture the match defines"),
        Finding(where, 9, "`$3` refers to capture 3 but `c.*` has 1", "use a capture the match defines"),
        Finding(where, 15, "`$1` refers to capture 1 but `^d$` has 0", "use a capture the match defines"),
    ]


def test_a_substitution_glued_to_text_expands_to_nothing(tmp_path: Path) -> None:
    text = HEAD + '  - match: "a.*"\n    name: "a_$1_total"\n    labels:\n      xx: "$1x"\n'
    _, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(where, 3, "`$1_` expands to nothing (`$1_...` is read as one variable)", "write `${1}_...`"),
        Finding(where, 2, "`$1x` expands to nothing (`$1x...` is read as one variable)", "write `${1}x...`"),
    ]


@pytest.mark.parametrize(
    ("label", "problems"),
    [
        ("x", ["label name `x` is invalid (2+ chars, letters/digits/_)"]),
        ("9ab", ["label name `9ab` is invalid (2+ chars, letters/digits/_)"]),
        ("a-b", ["label name `a-b` is invalid (2+ chars, letters/digits/_)"]),
        ("le", ["label name `le` is reserved and breaks the exporter or Prometheus"]),
        ("quantile", ["label name `quantile` is reserved and breaks the exporter or Prometheus"]),
        ("job", ["label name `job` is reserved and breaks the exporter or Prometheus"]),
        ("instance", ["label name `instance` is reserved and breaks the exporter or Prometheus"]),
        ("__meta", ["label name `__meta` is reserved and breaks the exporter or Prometheus"]),
        ("_ok", []),
        ("site_2", []),
    ],
)
def test_label_names(tmp_path: Path, label: str, problems: list[str]) -> None:
    _, errors, _, where = lint(tmp_path, one_rule(f'match: "a.*"\nname: "a"\nlabels:\n  {label}: "${{1}}"'))
    assert errors == [Finding(where, 5, p, "rename the label") for p in problems]


@pytest.mark.parametrize("values", ["[1, 0.5]", "[0.5, 1, 1]", "[2, 1, 3]"])
def test_buckets_not_strictly_increasing_fail_at_the_bucket_line(tmp_path: Path, values: str) -> None:
    text = one_rule(f'match: "a"\nname: "a"\nhistogram_options:\n  buckets: {values}')
    _, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(
            where, 5, "buckets of `a` are not strictly increasing",
            "sort the buckets and remove duplicates (a knob: edit this line)",
        )
    ]  # fmt: skip


@pytest.mark.parametrize("values", ['[0.1, "x"]', "[[1]]", "5"])
def test_buckets_that_are_not_numbers(tmp_path: Path, values: str) -> None:
    rules, errors, _, where = lint(
        tmp_path, one_rule(f'match: "a"\nname: "a"\nhistogram_options:\n  buckets: {values}')
    )
    if values == "5":  # not a list: no buckets at all
        assert errors == [] and rules[0].buckets == ()
        return
    assert errors == [Finding(where, 5, "buckets must be a list of numbers", "write `[0.1, 0.5, 1.0]`")]
    assert rules[0].buckets == ()


def test_one_series_name_with_two_types_is_an_error_at_the_second(tmp_path: Path) -> None:
    text = (
        HEAD
        + '  - match: "a"\n    match_metric_type: counter\n    name: "x_total"\n'
        + '  - match: "b"\n    match_metric_type: gauge\n    name: "x_total"\n'
        + '  - match: "c"\n    name: "y"\n    histogram_options:\n      buckets: [1]\n'
        + '  - match: "d"\n    match_metric_type: observer\n    observer_type: summary\n    name: "y"\n'
        + '  - match: "e"\n    name: "z_${1}"\n  - match: "f"\n    match_metric_type: gauge\n    name: "z_${1}"\n'
        + '  - match: "g"\n    action: drop\n    name: "x_total"\n'
    )
    _, errors, _, _ = lint(tmp_path, text)
    fix = "one Prometheus name must have one type: rename one of them"
    assert [(e.line, e.problem, e.fix) for e in errors if "refers to capture" not in e.problem] == [
        (5, "`x_total` is a gauge here but a counter at line 2", fix),
        (12, "`y` is a summary here but a histogram at line 8", fix),
    ]


def test_an_untyped_rule_is_of_any_type(tmp_path: Path) -> None:
    """Without `match_metric_type` or buckets a rule maps any type; a typed twin of its series conflicts with it."""
    text = HEAD + '  - match: "a"\n    name: "x"\n  - match: "b"\n    match_metric_type: gauge\n    name: "x"\n'
    _, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(
            where,
            4,
            "`x` is a gauge here but a any at line 2",
            "one Prometheus name must have one type: rename one of them",
        )
    ]


def test_twins_must_agree_on_help_and_buckets_and_should_on_ttl(tmp_path: Path) -> None:
    text = (
        HEAD
        + '  - match: "a"\n    name: "s"\n    help: "one"\n'
        + '  - match: "b"\n    name: "s"\n    help: "two"\n'
        + '  - match: "c"\n    name: "h"\n    histogram_options:\n      buckets: [1, 2]\n'
        + '  - match: "d"\n    name: "h"\n    histogram_options:\n      buckets: [1, 3]\n'
        + '  - match: "e"\n    name: "t"\n    ttl: 1m\n'
        + '  - match: "f"\n    name: "t"\n'
        + '  - match: "g"\n    name: "t"\n    ttl: 1m\n'
    )
    _, errors, warnings, where = lint(tmp_path, text)
    assert errors == [
        Finding(
            where, 5,
            "`s`: this rule and its twin at line 2 disagree on help (the exporter refuses the second one's samples)",
            "give both rules for `s` the same help and buckets (edit them together)",
        ),
        Finding(
            where, 12,
            "`h`: this rule and its twin at line 8 disagree on buckets (the exporter refuses the second one's samples)",
            "give both rules for `h` the same help and buckets (edit them together)",
        ),
    ]  # fmt: skip
    assert warnings == [
        Finding(
            where, 19, "`t`: ttl none here, 1m in its twin at line 16", "give both rules for one series the same ttl",
            "warning",
        )
    ]  # fmt: skip
    text2 = HEAD + '  - match: "e"\n    name: "t"\n  - match: "f"\n    name: "t"\n    ttl: 1m\n'
    _, _, warnings, where = lint(tmp_path, text2)
    assert [w.problem for w in warnings] == ["`t`: ttl 1m here, none in its twin at line 2"]


@pytest.mark.parametrize(
    ("rule", "name", "metric_type", "hit"),
    [
        ({"match": "a.*.c"}, "a.b.c", "counter", True),
        ({"match": "a.*.c"}, "a.b.c.d", "counter", False),
        ({"match": "a.*.c"}, "a.b.d", "counter", False),
        ({"match": "a.*.c", "metric_type": "gauge"}, "a.b.c", "counter", False),
        ({"match": "a.*.c", "metric_type": "gauge"}, "a.b.c", "gauge", True),
        ({"match": "^a\\.", "match_type": "regex"}, "a.b", "counter", True),
        ({"match": "^a\\.", "match_type": "regex"}, "ba.b", "counter", False),
        ({"match": "b\\.", "match_type": "regex"}, "ab.c", "counter", True),  # search, not match
        ({"match": "a(", "match_type": "regex"}, "a(", "counter", False),
    ],
)
def test_rule_matches_like_the_exporter(rule: dict[str, str], name: str, metric_type: str, hit: bool) -> None:
    fields: dict[str, object] = dict(
        index=0, line=1, match="", match_type="glob", metric_type="", name="n", action="map", labels={},
        observer_type="histogram", buckets=(), ttl="", help="",
    )  # fmt: skip
    fields.update(rule)
    assert Rule(**fields).matches(name, metric_type) is hit  # type: ignore[arg-type]


# ------------------------------------------------------------------ malformed values (mutation survivors)
def test_a_match_or_name_that_is_not_text_is_missing(tmp_path: Path) -> None:
    rules, errors, _, where = lint(tmp_path, one_rule("match: [a, b]\nname: {x: 1}"))
    assert errors == [
        Finding(where, 2, "rule has no `match`", 'add `match: "netauto.some.metric"`'),
        Finding(where, 2, "rule has no `name` (required even for `action: drop`)", 'add `name: "netauto_..."`'),
    ]
    assert (rules[0].match, rules[0].name, rules[0].help) == ("", "", "")


def test_labels_or_options_that_are_not_blocks_are_ignored_without_a_crash(tmp_path: Path) -> None:
    rules, errors, _, _ = lint(tmp_path, one_rule('match: "a.*"\nname: "a"\nlabels: [xx, yy]\nhistogram_options: 5'))
    assert errors == [] and rules[0].labels == {} and rules[0].buckets == ()
    rules, errors, _, _ = lint(tmp_path, "defaults: 5\n" + one_rule('match: "a"\nname: "a"'))
    assert errors == [] and rules[0].match_type == "glob"


def test_a_mapping_the_yaml_reader_refuses_is_reported_at_line_0(tmp_path: Path) -> None:
    """A control character is a reader error: it has no `problem_mark`, so no line is known."""
    rules, errors, _, where = lint(tmp_path, "mappings:\n  - match: a\x01\n")
    assert rules == []
    assert [(e.path, e.line, e.fix) for e in errors] == [(where, 0, "fix the YAML syntax at that line")]


def test_a_rule_with_an_invalid_match_type_has_no_captures(tmp_path: Path) -> None:
    _, errors, _, where = lint(tmp_path, one_rule('match: "a("\nmatch_type: regexp\nname: "x_${1}"'))
    assert errors == [
        Finding(where, 3, "`match_type: regexp` is not valid", "use one of glob, regex"),
        Finding(where, 4, "`$1` refers to capture 1 but `a(` has 0", "use a capture the match defines"),
    ]


def test_an_invalid_regex_finding_names_the_file(tmp_path: Path) -> None:
    _, errors, _, where = lint(tmp_path, one_rule('name: "n"\nmatch_type: regex\nmatch: "a(b"'))
    assert [e.path for e in errors] == [where]


def test_type_conflicts_are_found_after_drop_and_templated_rules(tmp_path: Path) -> None:
    text = (
        HEAD
        + '  - match: "t.*"\n    name: "t_${1}"\n'
        + '  - match: "d"\n    action: drop\n    name: "dropped"\n'
        + '  - match: "a"\n    match_metric_type: counter\n    name: "x_total"\n'
        + '  - match: "b"\n    match_metric_type: gauge\n    name: "x_total"\n'
    )
    _, errors, _, where = lint(tmp_path, text)
    assert errors == [
        Finding(
            where, 10, "`x_total` is a gauge here but a counter at line 7",
            "one Prometheus name must have one type: rename one of them",
        )
    ]  # fmt: skip
