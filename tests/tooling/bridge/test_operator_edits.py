"""Operators own the mapping's knobs: their everyday edits pass `check`; contract breaks do not (issue 11.5/11.6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netauto_statsd.catalog import find
from tests.tooling.bridge.edits import DROP_COMMENT, RUN_BUCKETS, TEAM_RULE, Edit, edited, line_of, run_check

RETUNED = "      buckets: [0.5, 1, 2, 5, 10, 20, 45, 90, 180, 300, 600, 900, 1800]"

#: The five edits ops make every week, each in both twin rules where a series has two.
OPERATOR_EDITS = {
    "buckets retuned in both twins": Edit(RUN_BUCKETS, RETUNED, 2),
    "ttl 2m -> 5m": Edit("ttl: 2m", "ttl: 5m", 0),
    "help reworded in both twins": Edit('help: "Runs created."', 'help: "Runs created, by operators or schedules."', 2),
    "a team rule before the drop rule": Edit(DROP_COMMENT, TEAM_RULE + DROP_COMMENT),
    "a comment added": Edit(
        "mappings:\n", "mappings:\n  # Reviewed by network ops, 2026-12: buckets follow the Paris rollout.\n"
    ),
}


@pytest.mark.parametrize("name", [*OPERATOR_EDITS, "all five together"])
def test_everyday_operator_edits_pass_check(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    edits = list(OPERATOR_EDITS.values()) if name == "all five together" else [OPERATOR_EDITS[name]]
    path = edited(tmp_path, *edits)
    code, out = run_check(capsys, "--mapping", str(path), "--exporter", exporter_binary)
    assert code == 0, out
    assert "compared sample for sample" in out  # the live proof ran on the edited file
    team_rule = OPERATOR_EDITS["a team rule before the drop rule"] in edits
    warnings = 1 if team_rule else 0
    assert out.rstrip().endswith(f"check OK: 0 problem(s), {warnings} warning(s)")
    if team_rule:  # visible, not failing: another sender's metrics are the operators' business
        line = line_of(path, '- match: "netops.backup.*.done"')
        assert f"{path}:{line}: warning: rule `netops.backup.*.done` matches no catalog metric" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            Edit('name: "netauto_liveview_sessions"', 'name: "netauto_liveview_session_count"', 0),
            "`liveview.sessions` (DogStatsD) becomes `netauto_liveview_session_count`, "
            "the catalog declares `netauto_liveview_sessions`",
        ),
        (
            Edit('    help: "Runs created."\n    labels:\n      site: "${1}"\n      protocol: "${2}"',
                 '    help: "Runs created."\n    labels:\n      site: "${1}"\n      proto: "${2}"'),
            "`run.created` (plain StatsD) labels must be site: ${1}, protocol: ${2}, env: ${3}, service: ${4}",
        ),
        (
            Edit('match: "netauto.runner.start"\n    match_metric_type: counter\n',
                 'match: "netauto.runner.start"\n    match_metric_type: counter\n    labels:\n      team: "netops"\n'),
            "`runner.start` (DogStatsD) adds labels ['team'] that the catalog does not declare",
        ),
    ],
    ids=["series-renamed", "label-renamed", "label-added"],
)  # fmt: skip
def test_contract_breaking_edits_fail_and_point_at_the_catalog(
    edit: Edit, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, edit)
    code, out = run_check(capsys, "--mapping", str(path), "--exporter", exporter_binary)
    assert code == 1
    finding = next((line for line in out.splitlines() if expected in line), None)
    assert finding is not None, out
    assert finding.startswith(f"{path}:")
    fix = out.splitlines()[out.splitlines().index(finding) + 1]
    declared = find(expected.split("`")[1])
    assert declared is not None
    assert fix == (
        f"    fix: restore this rule to the contract; the contract is declared in `{declared.module}` "
        "(change it there, and the dashboards, to change it)"
    )


def test_a_dashboard_may_read_the_series_of_a_team_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exporter_binary: str
) -> None:
    path = edited(tmp_path, OPERATOR_EDITS["a team rule before the drop rule"])
    boards = tmp_path / "dashboards"
    boards.mkdir()
    for name in ("group", "sitez"):
        expr = f"sum by ({name}) (rate(netops_backups_done_total[5m]))"
        (boards / f"{name}.json").write_text(json.dumps({"panels": [{"title": name, "targets": [{"expr": expr}]}]}))
    code, out = run_check(capsys, "--mapping", str(path), "--exporter", exporter_binary, "--dashboards", str(boards))
    assert code == 1
    assert "[group]" not in out
    assert "[sitez] grouping by 'sitez', which no selected series has" in out
