"""`check` on its failing side: each class of finding, with the exact finding and the owner its fix names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netauto_statsd.catalog import find
from netauto_statsd.tooling.live_check import BURST
from tests.support import MAPPING
from tests.tooling.bridge.edits import (
    DROP_COMMENT,
    DROP_RULE,
    OUTPUT_BUCKETS,
    RUN_BUCKETS,
    Edit,
    edited,
    line_of,
    run_check,
)


def owner(name: str) -> str:
    """The fix of a contract finding names the module that declares the metric (``Metric.module``)."""
    metric = find(name)
    assert metric is not None
    return f"the contract is declared in `{metric.module}`"


def check(capsys: pytest.CaptureFixture[str], path: Path, exporter: str, *more: str) -> tuple[int, str]:
    return run_check(capsys, "--mapping", str(path), "--exporter", exporter, *more)


# ------------------------------------------------------------------ contract
def test_a_renamed_series_is_a_contract_finding_pointing_at_the_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit('name: "netauto_runs_created_total"', 'name: "netauto_runs_made_total"', 0))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: "netauto.run.created"')
    assert (
        f"{path}:{line}: `run.created` (DogStatsD) becomes `netauto_runs_made_total`, "
        "the catalog declares `netauto_runs_created_total`\n"
        f"    fix: restore this rule to the contract; {owner('run.created')}"
    ) in out
    # and the dashboards reading the declared series now name a series no rule produces
    assert "[Runs created per second by site and protocol] unknown series netauto_runs_created_total" in out


def test_a_renamed_label_in_the_plain_rule_is_a_contract_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    old = 'name: "netauto_runs_created_total"\n    help: "Runs created."\n    labels:\n      site: "${1}"'
    path = edited(tmp_path, Edit(old, old.replace("site:", "location:")))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: "netauto.run.created.*.*.*.*"')
    assert (
        f"{path}:{line}: `run.created` (plain StatsD) labels must be site: ${{1}}, protocol: ${{2}}, "
        f"env: ${{3}}, service: ${{4}}\n    fix: restore this rule to the contract; {owner('run.created')}"
    ) in out


def test_a_summary_where_dashboards_read_buckets_is_a_contract_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    old = f"    observer_type: histogram\n    histogram_options:\n{RUN_BUCKETS}"
    path = edited(tmp_path, Edit(old, old.replace("histogram\n", "summary\n", 1), 2))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: "netauto.runner.duration"')
    assert (
        f"{path}:{line}: `runner.duration` (DogStatsD) is a summary, but dashboards or alerts read "
        "`netauto_runner_duration_seconds_bucket`"
    ) in out


def test_twin_rules_disagreeing_on_buckets_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit(RUN_BUCKETS, RUN_BUCKETS.replace("[0.1, ", "[0.05, 0.1, "), 1))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    first, twin = (
        line_of(path, '- match: "netauto.runner.duration"'),
        line_of(path, '- match: "netauto.runner.duration.'),
    )
    assert (
        f"{path}:{twin}: `netauto_runner_duration_seconds`: this rule and its twin at line {first} disagree on "
        "buckets (the exporter refuses the second one's samples)\n"
        "    fix: give both rules for `netauto_runner_duration_seconds` the same help and buckets (edit them together)"
    ) in out


def test_twin_rules_disagreeing_on_help_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit('help: "Runs created."', 'help: "Runs created by anyone."', 1))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    first, twin = line_of(path, '- match: "netauto.run.created"'), line_of(path, '- match: "netauto.run.created.')
    assert (
        f"{path}:{twin}: `netauto_runs_created_total`: this rule and its twin at line {first} disagree on help" in out
    )


def test_an_unmapped_metric_names_the_update_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit('match: "netauto.runner.stop"', 'match: "netauto.runner.stopped"'))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    drop = line_of(path, '- match: "."')
    assert (
        f"{path}:{drop}: catalog metric `runner.stop` (DogStatsD `netauto.runner.stop`) is not mapped "
        f"(dropped by the rule at line {drop})\n"
        f"    fix: run `netauto-statsd mapping --update {path}` (adds its rule before the final drop rule)"
    ) in out


# ------------------------------------------------------------------ knobs that fail
def test_no_final_drop_rule_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str) -> None:
    path = edited(tmp_path, Edit(DROP_RULE, ""))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    assert "no final drop rule: unmapped names would reach Prometheus under mangled default names" in out
    assert '    fix: end `mappings:` with `- match: "."`, `match_type: regex`, `action: drop`' in out


def test_a_catch_all_before_the_drop_rule_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    rule = '  - match: ".+"\n    match_type: regex\n    name: "everything_else"\n'
    path = edited(tmp_path, Edit(DROP_COMMENT, rule + DROP_COMMENT))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: ".+"')
    assert (
        f"{path}:{line}: catch-all rule `.+` before the final drop rule maps every unknown name\n"
        "    fix: match only the names you mean (e.g. `myteam.*.*`), or make it `action: drop`"
    ) in out


def test_buckets_not_increasing_fail_at_the_bucket_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit(RUN_BUCKETS, RUN_BUCKETS.replace("0.25, 0.5", "0.5, 0.25"), 2))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, "buckets: [0.1, 0.5, 0.25")
    assert (
        f"{path}:{line}: buckets of `netauto.runner.duration` are not strictly increasing\n"
        "    fix: sort the buckets and remove duplicates (a knob: edit this line)"
    ) in out


def test_a_per_process_gauge_without_ttl_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    dogstatsd = 'help: "Connected live-view sessions (per process, summed)."\n    ttl: 2m\n'
    plain = '      view: "${1}"\n      process: "${2}"\n      env: "${3}"\n      service: "${4}"\n    ttl: 2m\n'
    path = edited(
        tmp_path,
        Edit(dogstatsd, dogstatsd.replace("    ttl: 2m\n", "")),
        Edit(plain, plain.replace("    ttl: 2m\n", "")),
    )
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    for line in (
        line_of(path, '- match: "netauto.liveview.sessions"'),
        line_of(path, '- match: "netauto.liveview.sessions.'),
    ):
        assert (
            f"{path}:{line}: `netauto_liveview_sessions` is a per-process gauge without `ttl`: "
            "a dead process's value stays forever\n    fix: add `ttl: 2m` to this rule (any value >= 30s)"
        ) in out


def test_a_ttl_shorter_than_two_scrapes_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit("ttl: 2m", "ttl: 10s", 0))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: "netauto.liveview.sessions"')
    assert (
        f"{path}:{line}: `netauto_liveview_sessions`: `ttl: 10s` is shorter than 30s (two scrapes): "
        "the series would flicker\n    fix: use `ttl: 2m` or longer"
    ) in out


# ------------------------------------------------------------------ knobs that warn
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            Edit(RUN_BUCKETS, "      buckets: [100, 250, 500, 1000, 2500, 5000, 10000, 30000]", 2),
            "warning: buckets of `netauto_runner_duration_seconds` (100 .. 30000) look like milliseconds",
        ),
        (
            Edit(OUTPUT_BUCKETS, "      buckets: [0.001, 0.01, 0.1, 1, 10]", 0),
            "warning: buckets of `netauto_runner_processed_bytes` include fractions of a byte (0.001): "
            "they look like seconds",
        ),
        (
            Edit(RUN_BUCKETS, "      buckets: [" + ", ".join(str(0.1 * i) for i in range(1, 41)) + "]", 2),
            "warning: `netauto_runner_duration_seconds` has 40 buckets (each is a series per label set)",
        ),
        (
            Edit(DROP_COMMENT, '  - match: "legacy.*.count"\n    name: "legacy_count"\n' + DROP_COMMENT),
            "warning: rule `legacy.*.count` matches no catalog metric",
        ),
        (
            Edit("ttl: 2m", "ttl: 3m", 1),
            "warning: `netauto_liveview_sessions`: ttl 2m here, 3m in its twin at line",
        ),
    ],
    ids=["ms-on-seconds", "seconds-on-bytes", "too-many-buckets", "rule-for-no-metric", "twin-ttl"],
)
def test_knob_warnings_pass_unless_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str, edit: Edit, expected: str
) -> None:
    path = edited(tmp_path, edit)
    code, out = check(capsys, path, exporter_binary)
    assert code == 0, out
    assert expected in out
    assert "check OK: 0 problem(s)" in out
    code, out = check(capsys, path, exporter_binary, "--strict")
    assert code == 1
    assert expected in out and "check FAILED" in out


# ------------------------------------------------------------------ the live proof
def test_the_live_proof_finds_a_series_the_exporter_produces_differently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    """`scale` passes every static check; only the real exporter shows the durations 1000x off."""
    name = 'name: "netauto_runner_duration_seconds"\n'
    path = edited(tmp_path, Edit(name, name + "    scale: 1000\n", 2))
    code, out = check(capsys, path, exporter_binary)
    assert code == 1
    line = line_of(path, '- match: "netauto.runner.duration"')
    # five ordinary observations (1.995 s) and the burst of BURST x 0.12 s, all scaled by the rule
    count, sent = 5 + BURST, 1.995 + 0.12 * BURST
    summary = f"counted {count} observation(s) summing to {sent * 1000:g}; sent {count} summing to {sent:g}"
    assert (
        f"{path}:{line}: [dogstatsd] `netauto_runner_duration_seconds` {summary}\n"
        "    fix: this rule makes the exporter differ from the contract declared in "
        f"`{owner('runner.duration').split('`')[1]}` "
        "(name, type, labels, unit): compare it with `netauto-statsd mapping`"
    ) in out
    assert f"[statsd] `netauto_runner_duration_seconds` {summary}" in out


# ------------------------------------------------------------------ dashboards and alert rules
def test_a_dashboard_query_naming_a_missing_series_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    panels = [
        {"title": "Runs", "targets": [{"expr": 'sum by (site) (rate(netauto_runs_create_total{site=~"$site"}[5m]))'}]},
        {"title": "Ok", "targets": [{"expr": "sum by (site) (rate(netauto_runs_created_total[5m]))"}]},
        {"title": "P", "targets": [{"expr": "sum by (sitez) (rate(netauto_runs_created_total[5m]))"}]},
    ]
    (tmp_path / "d.json").write_text(json.dumps({"panels": panels}, indent=2))
    code, out = run_check(capsys, "--exporter", exporter_binary, "--dashboards", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'd.json'}:7: [Runs] unknown series netauto_runs_create_total" in out
    assert "[P] grouping by 'sitez', which no selected series has" in out
    assert "[Ok]" not in out


def test_an_alert_rule_naming_a_series_no_rule_produces_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "team.yml").write_text(
        "groups:\n  - name: team\n    rules:\n      - alert: RunsStopped\n"
        "        expr: sum(rate(netauto_runs_created_total[5m])) == 0\n"
        "      - alert: Typo\n        expr: sum(rate(netauto_run_created_total[5m])) == 0\n"
    )
    code, out = run_check(capsys, "--exporter", exporter_binary, "--rules", str(rules), "--mapping", str(MAPPING))
    assert code == 1
    assert f"{rules / 'team.yml'}:7: [Typo] unknown series netauto_run_created_total" in out
    assert "[RunsStopped]" not in out
