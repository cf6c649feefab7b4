"""`netauto-statsd check`: exit 0 on the repo, 1 with a readable report on broken inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netauto_statsd.tooling.mapping import render_mapping
from tests.support import MAPPING, ROOT


def run_check(*args: str, exporter: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", "check", *args]
    if exporter:
        command += ["--exporter", exporter]
    env = {**os.environ, "PATH": os.environ.get("PATH", "")}
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = MAPPING.read_text()
    assert old in text, f"fixture text not found: {old!r}"
    path = tmp_path / "mapping.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_repo_mapping_is_what_the_catalog_implies() -> None:
    assert MAPPING.read_text() == render_mapping(), "bridge/statsd_mapping.yml drifted: run `netauto-statsd mapping`"


def test_check_passes_on_the_repo_with_the_live_proof(exporter_binary: str) -> None:
    done = run_check(exporter=exporter_binary)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "live proof against" in done.stdout
    assert "check OK" in done.stdout


def test_check_says_plainly_when_the_live_proof_is_skipped(tmp_path: Path) -> None:
    env_path = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "netauto_statsd.tooling.cli", "check", "--dashboards", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert "SKIPPED" in done.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('    labels:\n      site: "${1}"', '    label:\n      site: "${1}"', "unknown key `label`"),
        ('match: "netauto.run.created.*.*.*.*"', 'match: "netauto.run.created.*.*.*.prefix_*"', "invalid glob"),
        ('match: "netauto.runner.stop"', 'match: "netauto.runner.stopped"', "`runner.stop` (DogStatsD"),
        ('name: "netauto_chunks_appended_total"\n    help: "Output chunks appended to runs."\n    labels:',
         'name: "$1_chunks"\n    help: "Output chunks appended to runs."\n    labels:', "expands to nothing"),
        ("      site: \"${1}\"", "      s: \"${1}\"", "label name `s` is invalid"),
        ('match: "netauto.runner.duration"\n    match_metric_type: observer',
         'match: "netauto.runner.duration"\n    match_metric_type: counter',
         "is a histogram here but a counter at line"),
    ],
    ids=["typo-key", "bad-glob", "unmatched-metric", "dollar-substitution", "short-label", "type-conflict"],
)  # fmt: skip
def test_check_fails_with_file_line_and_fix(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = broken(tmp_path, old, new)
    done = run_check("--mapping", str(path), "--dashboards", str(tmp_path))
    assert done.returncode == 1, done.stdout
    assert expected in done.stdout, done.stdout
    assert f"{path}:" in done.stdout and "fix:" in done.stdout
    assert "check FAILED" in done.stdout


def test_check_fails_on_a_dashboard_query_naming_a_missing_series(tmp_path: Path) -> None:
    dashboard = {
        "panels": [
            {
                "title": "Runs",
                "targets": [{"expr": 'sum by (site) (rate(netauto_runs_create_total{site=~"$site"}[5m]))'}],
            },
            {"title": "Ok", "targets": [{"expr": "sum by (site) (rate(netauto_runs_created_total[5m]))"}]},
        ]
    }
    (tmp_path / "d.json").write_text(json.dumps(dashboard, indent=2))
    done = run_check("--dashboards", str(tmp_path), "--no-plain")
    assert done.returncode == 1, done.stdout
    assert "netauto_runs_create_total" in done.stdout
    assert "[Runs]" in done.stdout and "[Ok]" not in done.stdout


def test_check_fails_on_a_dashboard_label_that_does_not_exist(tmp_path: Path) -> None:
    dashboard = {
        "panels": [{"title": "P", "targets": [{"expr": "sum by (sitez) (rate(netauto_runs_created_total[5m]))"}]}]
    }
    (tmp_path / "d.json").write_text(json.dumps(dashboard))
    done = run_check("--dashboards", str(tmp_path))
    assert done.returncode == 1
    assert "grouping by 'sitez'" in done.stdout
