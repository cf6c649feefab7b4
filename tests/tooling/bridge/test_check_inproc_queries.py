"""check's query half in-process: dashboard and alert-rule queries may only name series and labels that exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netauto_statsd.tooling.dashboard_check import (
    check_dashboards,
    check_query,
    check_rule_files,
    referenced_bucket_series,
    rule_queries,
)
from netauto_statsd.tooling.findings import Finding
from netauto_statsd.tooling.promql import Selector, references, unaggregated
from netauto_statsd.tooling.series import (
    EXPORTER_SERIES,
    SCRAPE_SERIES,
    catalog_series,
    known_series,
    rule_series,
)
from tests.tooling.bridge.appmetrics import HITS, LATENCY, SESSIONS

SERIES = known_series([HITS, LATENCY, SESSIONS])
DASH_FIX = "use a series and labels from `netauto-statsd catalog --json` (or fix the mapping)"
RULE_FIX = "use a series and labels the mapping produces (`netauto-statsd catalog --json`)"


# ------------------------------------------------------------------ the series that exist
def test_catalog_series_carry_the_declared_labels_and_le_on_buckets() -> None:
    assert catalog_series([HITS, LATENCY, SESSIONS]) == {
        "app_hits_total": ("env", "service", "view"),
        "app_latency_seconds_bucket": ("env", "service", "view", "le"),
        "app_latency_seconds_sum": ("env", "service", "view"),
        "app_latency_seconds_count": ("env", "service", "view"),
        "app_sessions": ("env", "process", "service", "view"),
    }


def test_known_series_add_the_exporters_own_and_the_scrape_series() -> None:
    known = known_series([HITS, LATENCY, SESSIONS])  # computed here: mutmut's mutants only act inside a test
    assert {**catalog_series([HITS, LATENCY, SESSIONS]), **EXPORTER_SERIES, **SCRAPE_SERIES} == known
    assert "netauto_runs_created_total" not in known  # only the metrics given
    assert known["up"] == () and known["statsd_exporter_events_actions_total"] == ("action",)
    assert "netauto_runs_created_total" in known_series()  # no argument: the live catalog
    assert "netauto_runs_created_total" in catalog_series()


def test_a_rule_for_another_sender_produces_its_series() -> None:
    assert rule_series("team_total", ["zone", "group"], observer=False) == {"team_total": ("group", "zone")}
    assert rule_series("team_seconds", ["zone", "group"], observer=True) == {
        "team_seconds_bucket": ("group", "zone", "le"),
        "team_seconds_sum": ("group", "zone"),
        "team_seconds_count": ("group", "zone"),
        "team_seconds": ("group", "zone"),
    }


# ------------------------------------------------------------------ one query
@pytest.mark.parametrize(
    ("query", "problems"),
    [
        ("sum by (view) (rate(app_hits_total[5m]))", []),
        ("sum by (job, instance) (rate(app_hits_total[5m]))", []),
        ("sum(rate(app_hit_total[5m]))", ["unknown series app_hit_total"]),
        ('sum(rate(app_hits_total{zone="a"}[5m]))', ["app_hits_total has no label 'zone'"]),
        ("label_values(app_hits_total, view)", []),
        ("label_values(app_hits_total, instance)", []),
        ("label_values(app_hits_total, job)", []),
        ("label_values(app_hits_total, zone)", ["variable reads label 'zone', which ['app_hits_total'] do not have"]),
        ("label_values(app_hit_total, view)", ["unknown series app_hit_total"]),
        ("label_values(zone)", []),  # no selector: any label of any series
        ('label_values({view="a"}, view)', ["selector without a metric name"]),
        ("label_values(app_sessions, process)", []),
    ],
)
def test_check_query(query: str, problems: list[str]) -> None:
    assert check_query(query, SERIES) == problems


def test_a_variable_label_any_selected_series_has_is_enough() -> None:
    series = {"a": ("x",), "b": ("y",)}
    assert check_query("label_values(a or b, y)", series) == []
    assert check_query("label_values(a or b, z)", series) == ["variable reads label 'z', which ['a', 'b'] do not have"]


# ------------------------------------------------------------------ dashboards
def write_dashboard(directory: Path, name: str, dashboard: object) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dashboard, indent=2))
    return path


def test_every_panel_target_and_query_variable_is_checked_at_its_line(tmp_path: Path) -> None:
    dashboard = {
        "title": "App",
        "templating": {
            "list": [
                {"name": "view", "type": "query", "query": "label_values(app_hits_total, zone)"},
                {"name": "view2", "type": "query", "query": {"query": "label_values(app_hit_total, view)"}},
                {"name": "custom", "type": "custom", "query": "label_values(nothing, x)"},
                {"name": "blank", "type": "query", "query": "  "},
            ]
        },
        "panels": [
            {"title": "Hits", "targets": [{"expr": "sum(rate(app_hits_total[5m]))"}]},
            {"title": "Row", "panels": [{"targets": [{"expr": "sum(rate(app_hit_total[5m]))"}]}]},
            {"name": "Named", "targets": [{"expr": 'sum(app_sessions{zone="a"})'}, {"expr": " "}]},
        ],
    }
    path = write_dashboard(tmp_path, "app.json", dashboard)
    text = path.read_text()

    def line(fragment: str) -> int:
        return text[: text.index(fragment)].count("\n") + 1

    assert check_dashboards(tmp_path, SERIES) == [
        Finding(
            str(path), line("label_values(app_hits_total, zone)"),
            "[variable view] variable reads label 'zone', which ['app_hits_total'] do not have", DASH_FIX,
        ),
        Finding(
            str(path), line("label_values(app_hit_total"), "[variable view2] unknown series app_hit_total", DASH_FIX
        ),
        Finding(str(path), line("sum(rate(app_hit_total"), "[Row] unknown series app_hit_total", DASH_FIX),
        Finding(
            str(path), line('sum(app_sessions{zone=\\"a\\"})'), "[Named] app_sessions has no label 'zone'", DASH_FIX
        ),
    ]  # fmt: skip


def test_dashboards_in_subfolders_are_read_in_order_and_bad_json_is_a_finding(tmp_path: Path) -> None:
    b = write_dashboard(tmp_path / "team", "b.json", {"panels": [{"title": "B", "targets": [{"expr": "nope_b"}]}]})
    a = write_dashboard(tmp_path, "a.json", {"panels": [{"title": "A", "targets": [{"expr": "nope_a"}]}]})
    broken = tmp_path / "c.json"
    broken.write_text('{\n  "panels": [\n    oops\n  ]\n}\n')
    (tmp_path / "notes.txt").write_text("nope_c")
    assert check_dashboards(tmp_path, SERIES) == [
        Finding(str(a), 7, "[A] unknown series nope_a", DASH_FIX),
        Finding(str(broken), 3, "not valid JSON: Expecting value", "fix the JSON"),
        Finding(str(b), 7, "[B] unknown series nope_b", DASH_FIX),
    ]


def test_a_query_whose_text_is_not_found_is_reported_at_line_0(tmp_path: Path) -> None:
    """JSON may escape a query differently from json.dumps (here: `\\u0041` for `A`); the finding still shows."""
    path = tmp_path / "d.json"
    path.write_text('{"panels": [{"title": "T", "targets": [{"expr": "nope_\\u0041"}]}]}')
    assert check_dashboards(tmp_path, SERIES) == [Finding(str(path), 0, "[T] unknown series nope_A", DASH_FIX)]


# ------------------------------------------------------------------ alert and recording rules
RULES = """\
groups:
  - name: app
    rules:
      - alert: HitsStopped
        expr: sum(rate(app_hits_total[5m])) == 0
      - record: app:hits:rate5m
        expr: |
          sum by (zone)
            (rate(app_hits_total[5m]))
      - alert: NoExpr
      - alert: Blank
        expr: "  "
  - name: unnamed
    rules:
      - expr: nope_total > 0
"""


def test_every_rule_expression_is_checked_at_its_first_line(tmp_path: Path) -> None:
    (tmp_path / "app.yml").write_text(RULES)
    (tmp_path / "more.yaml").write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: nope_more\n")
    (tmp_path / "empty.yml").write_text("")
    (tmp_path / "list.yml").write_text("- 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: T\n        expr: x\n")
    app = str(tmp_path / "app.yml")
    assert check_rule_files(tmp_path, SERIES) == [
        Finding(app, 8, "[app:hits:rate5m] grouping by 'zone', which no selected series has", RULE_FIX),
        Finding(app, 15, "[unnamed] unknown series nope_total", RULE_FIX),
        Finding(str(tmp_path / "more.yaml"), 5, "[A] unknown series nope_more", RULE_FIX),
    ]
    assert [name for name, _ in rule_queries(tmp_path / "app.yml")] == ["HitsStopped", "app:hits:rate5m", "unnamed"]


def test_a_rule_file_that_is_not_yaml_is_a_finding_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("groups:\n  - name: g\n    rules: [\n")
    findings = check_rule_files(tmp_path, SERIES)
    assert [(f.path, f.line, f.fix) for f in findings] == [(str(tmp_path / "bad.yml"), 4, "fix the YAML")]
    assert findings[0].problem.startswith("not valid YAML: ")


def test_the_bucket_series_dashboards_and_rules_read(tmp_path: Path) -> None:
    dashboards, rules = tmp_path / "d", tmp_path / "r"
    write_dashboard(
        dashboards / "sub", "a.json",
        {"panels": [{"targets": [{"expr": "histogram_quantile(0.9, sum by (le) (rate(a_seconds_bucket[5m])))"},
                                 {"expr": "sum(rate(a_seconds_count[5m]))"}]}]},
    )  # fmt: skip
    (dashboards / "broken.json").write_text("{")
    rules.mkdir()
    (rules / "r.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: B\n        expr: rate(b_bucket[5m]) > 0\n"
    )
    (rules / "bad.yml").write_text("groups: [\n")
    (rules / "other.yaml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: C\n        expr: c_bucket > 0\n"
    )
    assert referenced_bucket_series(dashboards, rules) == frozenset({"a_seconds_bucket", "b_bucket"})
    assert referenced_bucket_series(None, rules) == frozenset({"b_bucket"})
    assert referenced_bucket_series(dashboards, None) == frozenset({"a_seconds_bucket"})
    assert referenced_bucket_series(tmp_path / "none", tmp_path / "none") == frozenset()


# ------------------------------------------------------------------ the PromQL reader's corners (mutation survivors)
def test_unknown_characters_are_skipped_one_at_a_time() -> None:
    assert references("a §b").metrics == frozenset({"a", "b"})
    assert references("a ;; b").metrics == frozenset({"a", "b"})


def test_an_unbalanced_closing_parenthesis_is_skipped() -> None:
    assert references("sum(x)) + y").metrics == frozenset({"x", "y"})


def test_a_nameless_selector_keeps_its_matcher_labels() -> None:
    assert references('{job="a", env="b"}').selectors == (Selector("", ("job", "env"), False),)


def test_a_name_matcher_belongs_to_its_own_braces() -> None:
    selectors = references('{__name__="a"} + {job="x",}').selectors
    assert selectors == (Selector("a", ("__name__",), False), Selector("", ("job",), False))


def test_a_vector_matching_list_does_not_aggregate_what_follows() -> None:
    assert unaggregated("x / on(site) (y)") == ["x", "y"]
    assert unaggregated("sum by (site) (x)") == []


def test_group_left_without_labels_leaves_the_next_parenthesis_a_group() -> None:
    assert references("x * on(site) group_left y + (z)").metrics == frozenset({"x", "y", "z"})


# ------------------------------------------------------------------ finding lines and names (mutation survivors)
def test_a_panel_without_any_title_is_named_by_an_empty_tag(tmp_path: Path) -> None:
    path = write_dashboard(tmp_path, "d.json", {"panels": [{"targets": [{"expr": "nope"}]}]})
    assert [f.problem for f in check_dashboards(tmp_path, SERIES)] == ["[] unknown series nope"]
    assert path.exists()


def test_a_query_is_reported_at_its_first_occurrence_and_lines_count_a_leading_newline(tmp_path: Path) -> None:
    panels = [
        {"title": "Rope_xyz", "targets": [{"expr": "rope_xyz"}]},
        {"title": "B", "targets": [{"expr": "rope_xyz"}]},
    ]
    path = tmp_path / "d.json"
    path.write_text("\n" + json.dumps({"panels": panels}, indent=2))
    text = path.read_text()
    first = text[: text.index('"rope_xyz"')].count("\n") + 1
    assert first == 8  # the leading newline counts
    assert check_dashboards(tmp_path, SERIES) == [
        Finding(str(path), first, "[Rope_xyz] unknown series rope_xyz", DASH_FIX),
        Finding(str(path), first, "[B] unknown series rope_xyz", DASH_FIX),
    ]


def test_rule_files_after_a_broken_one_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "a_broken.yml").write_text("groups: [\n")
    (tmp_path / "b.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: B\n        expr: nope_b\n")
    findings = check_rule_files(tmp_path, SERIES)
    assert [(Path(f.path).name, f.line) for f in findings] == [("a_broken.yml", 2), ("b.yml", 5)]


def test_a_rule_file_the_yaml_reader_refuses_is_reported_at_line_0(tmp_path: Path) -> None:
    """A control character is a reader error: it carries no `problem_mark`, so no line is known."""
    (tmp_path / "r.yml").write_text("groups:\n  - name: g\x01\n")
    findings = check_rule_files(tmp_path, SERIES)
    assert [(f.line, f.fix) for f in findings] == [(0, "fix the YAML")]


def test_rule_expression_lines(tmp_path: Path) -> None:
    """The line of an expression's first line: its first occurrence, 0 when YAML quoting hides it."""
    (tmp_path / "r.yml").write_text(
        "\ngroups:\n  - rules:\n      - alert: A\n        expr: nope_a > 0\n"
        "      - alert: B\n        expr: nope_a > 0\n"
        '      - record: c\n        expr: "nope_c{job=\\"x\\"}"\n      - expr: nope_d\n'
    )
    findings = check_rule_files(tmp_path, SERIES)
    assert [(f.line, f.problem) for f in findings] == [
        (5, "[A] unknown series nope_a"),
        (5, "[B] unknown series nope_a"),
        (0, "[c] unknown series nope_c"),
        (10, "[] unknown series nope_d"),  # no alert, record or group name
    ]


def test_an_unterminated_selector_is_read_best_effort() -> None:
    assert references('x{a="b"').labels == frozenset({"a"})
    assert references("x{a=").labels == frozenset({"a"})
    assert references("x{a").metrics == frozenset({"x"})


def test_a_grafana_variable_is_no_label_name() -> None:
    assert references('x{$lbl="v"}').labels == frozenset()
